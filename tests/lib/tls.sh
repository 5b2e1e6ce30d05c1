# tests/lib/tls.sh: a test CA made at test time, and fronts in front of the
# simulator (sourced by system tests after peers.sh). Every front listens on
# 127.0.0.1 only, on a port the kernel picks, and is stopped by
# peers_stop_all.
#
#   tls_make_ca DIR                  DIR/ca.pem, DIR/ca.key
#   tls_make_cert DIR NAME SAN       DIR/NAME.pem, DIR/NAME.key signed by the CA
#                                    (SAN e.g. "IP:127.0.0.1,DNS:localhost")
#   tls_front CERT KEY PORT          TLS on a new port, forwarded to 127.0.0.1:PORT;
#                                    sets FRONT_PORT
#   redirect_front LOCATION          plain HTTP on a new port answering every
#                                    request 302 Location: LOCATION; sets FRONT_PORT

tls_make_ca() { # DIR
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=chargeguard test CA" -keyout "$1/ca.key" -out "$1/ca.pem" 2>/dev/null
}

tls_make_cert() { # DIR NAME SAN
  local dir=$1 name=$2 san=$3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=${san#*:}" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null &&
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -out "$dir/$name.pem" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
}

# The TCP port a process of ours listens on (it asked for port 0): its
# sockets' inodes, looked up in /proc/net/tcp (state 0A: LISTEN).
_listen_port() { # PID
  local deadline=$((SECONDS + 10)) inodes port
  while [ $SECONDS -lt $deadline ]; do
    inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n')
    if [ -n "$inodes" ]; then
      port=$(awk -v want="$(echo $inodes)" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) ok[w[i]] = 1 }
               $4 == "0A" && ($10 in ok) { split($2, a, ":"); print a[2]; exit }' /proc/net/tcp)
      [ -n "$port" ] && { echo $((16#$port)); return 0; }
    fi
    sleep 0.02
  done
  return 1
}

_front() { # SOCAT ADDRESSES...
  socat "$@" 2>>"$PEERS_TMP/front.log" &
  local pid=$!
  PEER_PIDS+=("$pid")
  FRONT_PORT=$(_listen_port "$pid") || { echo "# socat did not listen: $(tail -3 "$PEERS_TMP/front.log")"; return 1; }
}

tls_front() { # CERT KEY PORT
  _front "OPENSSL-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,cert=$1,key=$2,verify=0" \
    "TCP:127.0.0.1:$3"
}

redirect_front() { # LOCATION
  local script="$PEERS_TMP/redirect.$RANDOM.sh"
  # read the request (headers, then Content-Length bytes of body), then answer
  cat >"$script" <<EOF
len=0
while IFS= read -r line; do
  line=\${line%\$'\r'}
  [ -z "\$line" ] && break
  case "\${line,,}" in content-length:*) len=\${line#*:}; len=\${len//[^0-9]/} ;; esac
done
[ "\$len" -gt 0 ] && head -c "\$len" >/dev/null
printf 'HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' '$1'
EOF
  _front "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork" "SYSTEM:bash $script"
}
