# tests/fuzz/fuzz.mk: the fuzz harnesses (included by the Makefile).
#
# Each tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput for one parser
# of outside input. It builds twice:
#   build/fuzz-replay/<name>, build/asan/fuzz-replay/<name>
#       gcc, linked with tests/fuzz/replay_main.c: replays the committed
#       corpus tests/fuzz/corpus/<name>/ (the "fuzz" suite of `make test`:
#       ASan+UBSan, and the release build under valgrind);
#   build/fuzz/<name>
#       clang -fsanitize=fuzzer,address,undefined: `make fuzz` runs it for
#       FUZZ_SECONDS (600) with its dictionary tests/fuzz/<name>.dict;
#       FUZZ_ONLY="a b" picks harnesses, FUZZ_PARALLEL (1) how many run at
#       once; new inputs go to build/fuzz/corpus/<name>/, crashes to
#       build/fuzz/findings/<name>/ (tests/fuzz/run_fuzzers).

FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(notdir $(FUZZ_SRC:.c=))
FUZZ_REPLAY_BINS := $(FUZZ_NAMES:%=build/fuzz-replay/%) $(FUZZ_NAMES:%=build/asan/fuzz-replay/%)

# What a harness links besides librelay and libcommon (the simulators'
# code without their main.c; the charger's option table).
FUZZ_EXTRA_fuzz_config     := charger/charger_config.c
FUZZ_EXTRA_fuzz_gatewaysim := $(filter-out tests/sim/gatewaysim/main.c,$(GATEWAYSIM_SRC))
FUZZ_EXTRA_fuzz_smtpsink   := $(filter-out tests/sim/smtpsink/main.c,$(SMTPSINK_SRC))

# ---- gcc replay binaries, in the release and ASan variants ----------------
define fuzz_replay
$(1)/fuzz-replay/%: $(1)/obj/tests/fuzz/%.o $(1)/obj/tests/fuzz/replay_main.o \
		    $(1)/lib/librelay.a $(1)/lib/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$(filter %.o,$$^) $$(filter %.a,$$^) -o $$@ $$(PKG_LIBS) -lpthread
endef
$(eval $(call fuzz_replay,build,$(REL_CFLAGS)))
$(eval $(call fuzz_replay,build/asan,$(ASAN_CFLAGS)))

# ---- clang libFuzzer binaries ----------------------------------------------
FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
# clang alone warns of vsnprintf(fmt) in a function without a format
# attribute (libcommon/httpd.c); gcc, which builds what ships, does not.
FUZZ_CFLAGS := $(BASE_CFLAGS) -Wno-format-nonliteral -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
               -fsanitize=fuzzer-no-link
FUZZ_LIBOBJ := $(COMMON_SRC:%.c=build/fuzz/obj/%.o) $(RELAY_LIB_SRC:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -c $< -o $@

build/fuzz/lib/libfuzzcg.a: $(FUZZ_LIBOBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

build/fuzz/fuzz_%: build/fuzz/obj/tests/fuzz/fuzz_%.o build/fuzz/lib/libfuzzcg.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $(filter %.o,$^) $(filter %.a,$^) -o $@ \
		$(PKG_LIBS) -lpthread

# the extra objects of each harness, in all three builds
define fuzz_extra
build/fuzz-replay/$(1): $(FUZZ_EXTRA_$(1):%.c=build/obj/%.o)
build/asan/fuzz-replay/$(1): $(FUZZ_EXTRA_$(1):%.c=build/asan/obj/%.o)
build/fuzz/$(1): $(FUZZ_EXTRA_$(1):%.c=build/fuzz/obj/%.o)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_extra,$(n))))

-include $(shell find build/fuzz/obj -name '*.d' 2>/dev/null)

.PHONY: fuzz fuzz-replay
fuzz-replay: deps $(FUZZ_REPLAY_BINS)

fuzz: deps $(FUZZ_NAMES:%=build/fuzz/%)
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-600} tests/fuzz/run_fuzzers $(FUZZ_ONLY)
