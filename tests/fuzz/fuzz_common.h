/* fuzz_common.h — what the fuzz harnesses share: turning the fuzzer's bytes
 * into a file some parsers insist on opening by path, a private scratch
 * directory, and a loud stop when an oracle (an invariant the parser
 * promises) does not hold.
 *
 * Harnesses are C11, built by clang with libFuzzer (APFSIM_FUZZ=ON) and by
 * any compiler into the corpus replay driver (fuzz_replay.c), so nothing here
 * depends on libFuzzer. docs/fuzzing.md explains the whole set-up.
 *
 * Not for: anything the simulator itself uses.
 */
#ifndef APFSIM_FUZZ_COMMON_H
#define APFSIM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"

/* The libFuzzer entry point every harness defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An in-memory file (memfd) holding exactly `size` bytes; `path` receives a
 * name that opens it ("/proc/self/fd/N"). Returns the descriptor, which the
 * caller closes with fuzz_file_close; aborts if the kernel refuses (the
 * harness cannot test anything then). Nothing touches the disk. */
int fuzz_file(const uint8_t *data, size_t size, char path[64]);
void fuzz_file_close(int fd);

/* A directory of this process's own, created on first use (under $TMPDIR,
 * else /dev/shm when it exists, so atomic writes with fsync stay cheap, else
 * /tmp) and removed at exit with the files registered in it. */
const char *fuzz_tmpdir(void);

/* Writes `text` to fuzz_tmpdir()/name, remembered for removal at exit. */
void fuzz_tmpdir_put(const char *name, const char *text);

/* Builds "<tmpdir>/<name>" into buf (aborts if it does not fit). */
void fuzz_tmpdir_path(const char *name, char *buf, size_t len);

/* A bad-input message must be one printable line naming where the problem
 * is (DESIGN.md §4): non-empty, no control characters. Aborts otherwise. */
void fuzz_check_message(const char *harness, const struct diag *d);

/* With APFSIM_FUZZ_VERBOSE=1 in the environment, prints what became of an
 * input (accepted, or the parser's message) on stderr; silent otherwise, so
 * fuzzing output stays readable. For looking at a corpus with the replay
 * driver (docs/fuzzing.md). */
void fuzz_note(const char *harness, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a broken invariant on stderr and aborts, so the fuzzer keeps the
 * input as a crash. */
void fuzz_fail(const char *harness, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#endif
