/* fuzz.h: what every harness in tests/fuzz shares: libFuzzer's entry point
 * (the same under clang's -fsanitize=fuzzer and under replay_main.c with
 * gcc) and the check that turns a violated property into a crash, which
 * both libFuzzer and the replay suite report. */
#ifndef CG_FUZZ_H
#define CG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the parser under test: when it does not hold, say which
 * one and trap (abort with a stack, never return a wrong answer quietly). */
#define FUZZ_CHECK(cond, what)                                                               \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "fuzz property violated at %s:%d: %s\n", __FILE__,   \
				__LINE__, what);                                             \
			__builtin_trap();                                                    \
		}                                                                            \
	} while (0)

/* A char array the parser filled is a terminated string. */
#define FUZZ_CHECK_STRING(a) FUZZ_CHECK(memchr((a), '\0', sizeof(a)), #a " is not terminated")

#endif
