# chargeguard: top-level build.  `make help` lists the targets.
#
# Two build variants share one source list:
#   build/            release (-O2), the binaries users run: build/bin/charger ...
#   build/asan/       AddressSanitizer + UndefinedBehaviorSanitizer, used by `make test`
# Every target that compiles or runs anything depends on `deps`, which is a
# no-op once the Debian packages are installed.

SHELL       := /bin/bash
CC          ?= gcc
PREFIX      ?= /usr/local
DESTDIR     ?=
VERSION     := $(shell cat VERSION)

PKGS        := libpq inih libcurl libcjson libmicrohttpd libsystemd
PKG_CFLAGS   = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lm
CMOCKA_LIBS  = $(shell pkg-config --libs cmocka 2>/dev/null)

WARN        := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
               -Wmissing-prototypes -Wpointer-arith -Wvla -Wundef
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -DCG_VERSION='"$(VERSION)"' -g $(WARN) \
               -Ilibcommon -Irelay -MMD -MP
REL_CFLAGS  := -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2
ASAN_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all

COMMON_SRC  := $(wildcard libcommon/*.c)
CHARGER_SRC := $(wildcard charger/*.c)
# the relay's code minus main.c is a library, so unit tests can link it
RELAY_LIB_SRC := $(filter-out relay/main.c,$(wildcard relay/*.c))
GATEWAYSIM_SRC := $(wildcard tests/sim/gatewaysim/*.c)
SMTPSINK_SRC   := $(wildcard tests/sim/smtpsink/*.c)
CHECKER_SRC    := $(wildcard tests/checker/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
INTEG_SRC   := $(wildcard tests/integration/test_*.c)
TOOL_SRC    := $(wildcard tests/tools/*.c)

.PHONY: all deps test install demo bench chaos clean help asan check-format
.DEFAULT_GOAL := all

PROGRAMS    := bin/charger bin/relay sim/gatewaysim sim/smtpsink tools/checker

all: deps $(PROGRAMS:%=build/%) tools build/bench/naive_loop

help:
	@echo "make            build build/bin/charger, build/bin/relay and the test programs"
	@echo "make deps       install the Debian packages (apt-get, as root) and the npm test peers (npm ci)"
	@echo "make test       build everything and run every test suite against a throwaway PostgreSQL"
	@echo "make install    install binaries, migrations, man pages, example configs, systemd units, docs (PREFIX=$(PREFIX) DESTDIR=)"
	@echo "make demo       end-to-end demonstration on a private cluster (DEMO_INVOICES, DEMO_LATENCY_MS)"
	@echo "make bench      benchmark, ends with the bench: line (BENCH_INVOICES, BENCH_LATENCY_MS, ...: docs/performance.md)"
	@echo "make fuzz       libFuzzer (clang) on every parser of outside input: FUZZ_SECONDS (600) each, FUZZ_ONLY, FUZZ_PARALLEL (1); docs/fuzzing.md"
	@echo "make chaos      long fault suite: CHAOS_ITERATIONS (20), CHAOS_SEED, CHAOS_ONLY (see the README)"
	@echo "make clean      remove build/"

deps:
	@scripts/deps

# ---- variant template: $(1) = output dir, $(2) = extra CFLAGS/LDFLAGS -------
define variant
$(1)/obj/%.o: %.c | deps
	@mkdir -p $$(dir $$@)
	$$(CC) $$(BASE_CFLAGS) $(2) $$(PKG_CFLAGS) -c $$< -o $$@

$(1)/lib/libcommon.a: $$(COMMON_SRC:%.c=$(1)/obj/%.o)
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^

$(1)/lib/librelay.a: $$(RELAY_LIB_SRC:%.c=$(1)/obj/%.o)
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^

$(1)/bin/charger: $$(CHARGER_SRC:%.c=$(1)/obj/%.o) $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS)

$(1)/bin/relay: $(1)/obj/relay/main.o $(1)/lib/librelay.a $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS)

$(1)/sim/gatewaysim: $$(GATEWAYSIM_SRC:%.c=$(1)/obj/%.o) $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS) -lpthread

$(1)/sim/smtpsink: $$(SMTPSINK_SRC:%.c=$(1)/obj/%.o) $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS) -lpthread

$(1)/tools/checker: $$(CHECKER_SRC:%.c=$(1)/obj/%.o) $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS)

$(1)/tests/%: $(1)/obj/tests/unit/%.o $(1)/lib/librelay.a $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS) $$(CMOCKA_LIBS)

$(1)/tests/%: $(1)/obj/tests/integration/%.o $(1)/lib/librelay.a $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS) $$(CMOCKA_LIBS)

$(1)/tools/%: $(1)/obj/tests/tools/%.o $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$^ -o $$@ $$(PKG_LIBS)

-include $$(shell find $(1)/obj -name '*.d' 2>/dev/null)
endef

$(eval $(call variant,build,$(REL_CFLAGS)))
$(eval $(call variant,build/asan,$(ASAN_CFLAGS)))

# fuzz harnesses: replay builds for `make test`, libFuzzer builds for `make fuzz`
include tests/fuzz/fuzz.mk

UNIT_NAMES  := $(notdir $(UNIT_SRC:.c=)) $(notdir $(INTEG_SRC:.c=))
TOOL_NAMES  := $(filter-out checker,$(notdir $(TOOL_SRC:.c=)))
TEST_BINS   := $(UNIT_NAMES:%=build/tests/%) $(UNIT_NAMES:%=build/asan/tests/%)

tools: $(TOOL_NAMES:%=build/tools/%)

# The benchmark's naive baseline (tests/bench/naive_loop.c), release flags
# only: it links libpq, libcurl and cJSON and nothing of ours. It applies
# tests/bench/baseline_schema.sql from this tree at start.
BENCH_PKGS := libpq libcurl libcjson
build/bench/naive_loop: tests/bench/naive_loop.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -g $(WARN) $(REL_CFLAGS) $(shell pkg-config --cflags $(BENCH_PKGS)) \
	  -DBASELINE_SCHEMA_SQL='"$(CURDIR)/tests/bench/baseline_schema.sql"' $< -o $@ \
	  $(shell pkg-config --libs $(BENCH_PKGS))

asan: deps $(PROGRAMS:%=build/asan/%) $(UNIT_NAMES:%=build/asan/tests/%) \
      $(FUZZ_NAMES:%=build/asan/fuzz-replay/%)

# The whole suite: unit tests (release, sanitizers, valgrind), pgTAP, system
# tests. tests/run prints one line per suite and ends with the total.
test: deps $(PROGRAMS:%=build/%) $(PROGRAMS:%=build/asan/%) $(TEST_BINS) tools build/bench/naive_loop \
      $(FUZZ_REPLAY_BINS)
	@tests/run

# Installs what runs in production; builds only the two daemons (so an
# install from a built tree compiles nothing). Directories, all overridable:
#   BINDIR (PREFIX/bin: charger, relay, chargeguard-migrate, chargeguard-archive), MANDIR (PREFIX/share/man),
#   DATADIR (PREFIX/share/chargeguard: migrate and migrations/), DOCDIR (PREFIX/share/doc/chargeguard, examples/ in it),
#   SYSTEMDUNITDIR (PREFIX/lib/systemd/system, searched by systemd for /usr and
#   /usr/local), SYSCONFDIR (/etc: the units read /etc/chargeguard/*.conf).
# The example configs are copied to SYSCONFDIR/chargeguard only when absent:
# an administrator's file is never overwritten. No step needs root when
# DESTDIR is set (no chown; modes only).
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DATADIR        ?= $(PREFIX)/share/chargeguard
DOCDIR         ?= $(PREFIX)/share/doc/chargeguard
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR     ?= /etc
UNITS          := chargeguard-charger.service chargeguard-relay.service \
                  chargeguard-charger-once.service chargeguard-charger-once.timer \
                  chargeguard-archive.service chargeguard-archive.timer

install: build/bin/charger build/bin/relay
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/migrations \
	           $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	           $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/chargeguard
	install -m 0755 build/bin/charger build/bin/relay $(DESTDIR)$(BINDIR)/
	install -m 0755 db/migrate $(DESTDIR)$(DATADIR)/migrate
	sed -e 's|^installed_migrations=""$$|installed_migrations="$(DATADIR)/migrations"|' db/migrate \
	  >$(DESTDIR)$(BINDIR)/chargeguard-migrate.tmp && \
	  chmod 0755 $(DESTDIR)$(BINDIR)/chargeguard-migrate.tmp && \
	  mv $(DESTDIR)$(BINDIR)/chargeguard-migrate.tmp $(DESTDIR)$(BINDIR)/chargeguard-migrate
	install -m 0755 db/archive $(DESTDIR)$(BINDIR)/chargeguard-archive
	install -m 0644 db/migrations/*.sql $(DESTDIR)$(DATADIR)/migrations/
	install -m 0644 man/charger.8 man/relay.8 man/chargeguard-archive.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/chargeguard.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 conf/charger.conf conf/relay.conf $(DESTDIR)$(DOCDIR)/examples/
	for f in charger.conf relay.conf; do \
	  [ -e $(DESTDIR)$(SYSCONFDIR)/chargeguard/$$f ] || \
	    install -m 0644 conf/$$f $(DESTDIR)$(SYSCONFDIR)/chargeguard/$$f || exit 1; \
	done
	for u in $(UNITS); do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	      -e '/^@CHARGER_SANDBOX@$$/{r systemd/charger-sandbox.inc' -e 'd;}' systemd/$$u.in \
	    >$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
	  mv $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	@echo "installed under $(DESTDIR)$(PREFIX); next: man relay, man chargeguard.conf," \
	     "docs/operations.md (\"Running under systemd\")"

demo: all
	@scripts/demo

# The long fault suite: every crash point, gateway fault and outage of
# PROTOCOL.md, CHAOS_ITERATIONS times each (20 by default), each iteration
# seeded from CHAOS_SEED (printed; default from the clock); CHAOS_ONLY picks
# scenarios. Replay a failing iteration: CHAOS_SEED=N CHAOS_ONLY=name make chaos
chaos: deps $(PROGRAMS:%=build/%) $(PROGRAMS:%=build/asan/%) $(TEST_BINS) tools \
       $(FUZZ_REPLAY_BINS)
	@CG_SUITES=chaos CHAOS_ITERATIONS=$${CHAOS_ITERATIONS:-20} tests/run

# The benchmark (issue 7): release builds (`all`: the daemons, the
# simulators, the checker, the tools and any build/bench/ baseline) on a
# private cluster; settings from BENCH_* variables (docs/performance.md).
# Its last line is the `bench:` line of CONTRACT.md.
bench: all
	@tests/bench/bench.sh

clean:
	rm -rf build
