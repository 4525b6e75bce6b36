/* fuzz_trace.c — libFuzzer harness: reading an event trace (sim/trace:
 * trace_reader_open / _next, what `apfsim replay` and `export` read) and
 * comparing traces (trace_diff, `apfsim diff`).
 *
 * The input is a trace file's bytes, opened by path from a memfd. It is read
 * to the end with every accessor, then diffed against itself and, both ways
 * round, against a small valid trace (so header-field, block and event
 * divergences are all reachable from mutated seeds).
 *
 * Oracles besides the sanitizers:
 *  - every failure is a one-line message;
 *  - header lookups agree with the header list, and a trace that ended reports
 *    its end again on the next call;
 *  - a trace diffed against itself is identical when the reader accepts all
 *    of it, and an error when it does not (trace.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "trace/trace.h"

static const char reference[] =
    "# apfsim-trace 1\n"
    "# apfsim-version 0.1.0\n"
    "# unicorn-version 2.0.1\n"
    "# guest-image-sha256 none\n"
    "# seed 42\n"
    "# begin config\n"
    "#| <apfsim>\n"
    "#|   <seed>42</seed>\n"
    "#|\n"
    "#| </apfsim>\n"
    "# end config\n"
    "# begin input:my-device.hist\n"
    "#| 10us 1\n"
    "# end input:my-device.hist\n"
    "# header-end\n"
    "           1000 dev   swap_read_done req 7 gpa 0x7f001000 latency_ns 1000\n"
    "           1000 host  kvm_async_pf_completed gva 0x7f001000 address 0x7f001000\n"
    "           1000 cpu0  kvm_async_pf_ready token 0x1001 gva 0x7f001000\n"
    "           2000 cpu1  kvm_exit\n"
    "# trace-end 4\n";

/* What `apfsim replay` requires to match, plus the inlined input. */
static const char *const required[] = {"apfsim-version", "unicorn-version", "guest-image-sha256",
                                       "seed",           "config",          "input:my-device.hist"};
#define N_REQUIRED (sizeof required / sizeof required[0])

/* Reads the whole trace; true when it is accepted to its "# trace-end". */
static bool read_all(const char *path) {
  struct diag d = {{0}};
  struct trace_reader *r = trace_reader_open(path, &d);
  if (!r) {
    fuzz_check_message("trace", &d);
    return false;
  }
  if (strcmp(trace_reader_path(r), path) != 0) fuzz_fail("trace", "trace_reader_path changed");
  for (size_t i = 0; i < trace_reader_header_count(r); i++) {
    const struct trace_kv *kv = trace_reader_header_at(r, i);
    if (!kv || !kv->key || !kv->value) fuzz_fail("trace", "header field %zu missing", i);
    if (trace_reader_header(r, kv->key) != kv) fuzz_fail("trace", "header key %s not unique", kv->key);
    if (trace_reader_block(r, kv->key)) fuzz_fail("trace", "%s is both a field and a block", kv->key);
  }
  if (trace_reader_header_at(r, trace_reader_header_count(r))) fuzz_fail("trace", "header_at past the end");
  for (size_t i = 0; i < trace_reader_block_count(r); i++) {
    const struct trace_block *b = trace_reader_block_at(r, i);
    if (!b || !b->name || !b->text) fuzz_fail("trace", "block %zu missing", i);
    if (trace_reader_block(r, b->name) != b) fuzz_fail("trace", "block %s not unique", b->name);
    size_t len = strlen(b->text);
    if (len && b->text[len - 1] != '\n') fuzz_fail("trace", "block %s text not newline-terminated", b->name);
  }
  if (trace_reader_block_at(r, trace_reader_block_count(r))) fuzz_fail("trace", "block_at past the end");

  struct trace_record rec;
  enum trace_read_status st;
  uint64_t events = 0;
  while ((st = trace_reader_next(r, &rec, &d)) == TRACE_READ_EVENT) {
    if (!rec.name || !rec.fields || !rec.line) fuzz_fail("trace", "event without its strings");
    events++;
  }
  bool ok = st == TRACE_READ_END;
  if (ok) {
    fuzz_note("trace", "accepted: %llu events", (unsigned long long)events);
    struct trace_record again;
    if (trace_reader_next(r, &again, &d) != TRACE_READ_END) fuzz_fail("trace", "end not sticky");
  } else {
    fuzz_check_message("trace", &d);
  }
  trace_reader_close(r);
  return ok;
}

static enum trace_diff_result diff(const char *a, const char *b) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (!out) fuzz_fail("trace", "open_memstream failed");
  struct trace_divergence where;
  struct diag d = {{0}};
  enum trace_diff_result res = trace_diff(a, b, required, N_REQUIRED, out, &where, &d);
  fclose(out);
  if (res == TRACE_DIFF_ERROR) fuzz_check_message("trace", &d);
  if (res == TRACE_DIFF_DIVERGED && (!text || !len)) fuzz_fail("trace", "diverged without an excerpt");
  free(text);
  return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64], ref_path[64];
  int fd = fuzz_file(data, size, path);
  bool ok = read_all(path);
  enum trace_diff_result self = diff(path, path);
  if (ok && self != TRACE_DIFF_IDENTICAL) fuzz_fail("trace", "an accepted trace differs from itself (%d)", self);
  if (!ok && self != TRACE_DIFF_ERROR) fuzz_fail("trace", "a rejected trace diffs as %d, not an error", self);
  int ref = fuzz_file((const uint8_t *)reference, sizeof reference - 1, ref_path);
  enum trace_diff_result ab = diff(ref_path, path), ba = diff(path, ref_path);
  /* Both readers are strict: an accepted trace diffs cleanly either way; a
   * rejected one can still diverge in the header before its bad line. */
  if (ok && (ab == TRACE_DIFF_ERROR || ba == TRACE_DIFF_ERROR)) fuzz_fail("trace", "diff of an accepted trace failed");
  if (ok && ab != ba) fuzz_fail("trace", "diff is not symmetric (%d vs %d)", ab, ba);
  fuzz_file_close(ref);
  fuzz_file_close(fd);
  return 0;
}
