# tests/lib/options.sh: a daemon's options as its --help lists them (sourced).
#
#   help_options BINARY   one line per option: "FLAG|KEY|ENV|DEFAULT|RESTART"
#                         (empty fields when the option has none; RESTART is
#                         "restart" when a reload cannot change it), --help
#                         and --version included
#   man_entry PAGE FLAG   the text of FLAG's entry in a man page source
#                         (from its .TP item to the next), roff removed
#   man_flags PAGE        the flags a man page source has entries (.TP) for
#   conf_paragraph FILE KEY  the commented "#KEY = value" line of an example
#                         config and the comment lines above it
# --help prints each option on a line "  --flag META  doc" followed, when it
# has any, by a line of "[bounds] default X; file key K; env E; ...".
help_options() {
  "$1" --help | awk '
    function out() { if (flag != "") print flag "|" key "|" env "|" def "|" restart }
    /^  --/ { out(); flag = $1; key = env = def = restart = ""; next }
    /^                           / && flag != "" {
      n = split($0, parts, "; ")
      for (i = 1; i <= n; i++) {
        p = parts[i]; sub(/^ +/, "", p); sub(/^\[[^]]*\] /, "", p)
        if (p ~ /^default /) def = substr(p, 9)
        else if (p ~ /^file key /) key = substr(p, 10)
        else if (p ~ /^env /) env = substr(p, 5)
        else if (p ~ /^reload needs a restart/) restart = "restart"
      }
    }
    END { out() }'
}

man_entry() {
  local roff=${2//-/\\-}
  awk -v flag="$roff" '
    /^\.(TP|SH)/ { if (on) exit; item = ($0 == ".TP"); next }
    item && !on && (index($0, ".B " flag) == 1 || index($0, ".BI " flag) == 1) {
      rest = substr($0, index($0, flag) + length(flag), 1)
      if (rest == "" || rest == " " || rest == "\"") { on = 1 }
    }
    { item = 0 }
    on { line = $0; sub(/^\.[A-Z]+ /, "", line); gsub(/\\-/, "-", line); gsub(/"/, "", line)
         printf "%s ", line }' "$1"
}

conf_paragraph() {
  awk -v key="$2" '
    /^$/ { para = ""; next }
    { para = para $0 "\n" }
    $0 ~ "^#" key " =" { printf "%s", para; exit }' "$1"
}

man_flags() {
  awk 'prev == ".TP" && /^\.BI? \\-\\-/ { f = $2; gsub(/\\-/, "-", f); print f } { prev = $0 }' "$1" | sort -u
}
