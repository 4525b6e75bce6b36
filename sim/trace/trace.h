/* trace.h — the event trace: writer, reader and differ.
 *
 * The trace is the determinism contract (DESIGN.md §4, §6): the same config
 * and seed give a byte-identical trace. It is text, one event per line, in
 * (simulated time, vCPU, emission) order, with a header that carries
 * everything a replay needs. docs/trace-format.md specifies the format.
 *
 * Not for: wall-clock values (never), metrics summaries (sim/report), or
 * deciding which header fields a replay requires to match (the caller's
 * policy; the differ only applies the list it is given). */
#ifndef APFSIM_TRACE_H
#define APFSIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/diag.h"

#define TRACE_FORMAT_VERSION 1
#define TRACE_SHA256_HEX_LEN 64

/* Event sources that are not vCPUs. At equal times events sort by this id, so
 * a device completion comes before the host's reaction to it, which comes
 * before the vCPU's: the causal order at one instant. */
enum {
  TRACE_CPU_DEV = -2,  /* printed "dev": storage and other devices */
  TRACE_CPU_HOST = -1, /* printed "host": the KVM side (APF engine) */
  /* 0..TRACE_CPU_MAX: vCPU index, printed "cpuN" */
  TRACE_CPU_MAX = 9999,
};

/* A header field (key, value), or when reading, with the line it was on. */
struct trace_kv {
  const char *key;
  const char *value;
  long line; /* reader only; ignored by the writer */
};

/* A named block of text inlined in the header: the effective config, and
 * every input file it refers to (e.g. "config", "input:ssd-latency.csv").
 * When reading, text has every line newline-terminated. */
struct trace_block {
  const char *name;
  const char *text;
  long line; /* reader: line of "# begin NAME"; ignored by the writer */
};

/* ---- writer --------------------------------------------------------------- */

struct trace_writer;

/* Starts a trace. path NULL: no file, but everything is still hashed (a run
 * that only needs trace_sha256). Otherwise the trace goes to a temporary
 * file beside path, renamed onto path by trace_close; nothing ever appears
 * half-written under path. The "# apfsim-trace 1" line is the writer's own;
 * header fields follow in the order given, then the blocks.
 * Keys: [a-z0-9][a-z0-9._-]*, not reserved (apfsim-trace, begin, end,
 * header-end, trace-end), no duplicates; values: no control characters, no
 * leading/trailing space. Block names: [A-Za-z0-9._:/-]+, distinct from keys
 * and from each other; block text: no NUL or CR. NULL + diag on bad input or
 * I/O failure. */
struct trace_writer *trace_writer_open(const char *path, const struct trace_kv *header,
                                       size_t n_header, const struct trace_block *blocks,
                                       size_t n_blocks, struct diag *d);

/* Buffers one event. cpu: a vCPU index, TRACE_CPU_HOST or TRACE_CPU_DEV.
 * name: [a-z0-9_]+ (the tracepoint's name). fmt may be NULL (no fields);
 * the formatted fields must not contain control characters (newline, tab...).
 * An event earlier than the last flush bound cannot be placed any more: it
 * is dropped and counted as a violation, and trace_close will then fail
 * (the file would no longer be the run's true order). Returns false for a
 * violation or invalid arguments (also counted). */
bool trace_event(struct trace_writer *w, uint64_t time_ns, int cpu, const char *name,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Writes, in (time, cpu, emission) order, every buffered event with
 * time < bound_ns. After it, events before bound_ns are violations. Calls
 * with a lower bound than before change nothing. False on I/O failure. */
bool trace_flush_until(struct trace_writer *w, uint64_t bound_ns, struct diag *d);

/* SHA-256 (lowercase hex) of exactly the bytes written so far. After a
 * successful trace_close the digest it returned covers the whole file. */
void trace_sha256_hex(const struct trace_writer *w, char out[TRACE_SHA256_HEX_LEN + 1]);

/* Host memory (allocated bytes) of the buffer holding events not yet written: what
 * limits/max-host-memory charges to the trace. It grows when events arrive faster
 * than the bound advances and never shrinks. Deterministic for a deterministic run. */
uint64_t trace_buffer_bytes(const struct trace_writer *w);

/* Events written so far / events rejected (late or invalid). */
uint64_t trace_events_written(const struct trace_writer *w);
uint64_t trace_violations(const struct trace_writer *w);

/* Flushes everything, writes the "# trace-end N" line, and commits the file
 * (fsync + rename). sha256_hex (may be NULL) receives the digest of the
 * whole trace. Fails, leaving nothing under path, on I/O errors or if any
 * event was rejected (the diag names the first). Frees w either way. */
bool trace_close(struct trace_writer *w, char sha256_hex[TRACE_SHA256_HEX_LEN + 1],
                 struct diag *d);

/* Discards the trace: removes the temporary file, frees w. NULL is a no-op. */
void trace_abort(struct trace_writer *w);

/* ---- reader --------------------------------------------------------------- */

struct trace_reader;

/* Opens path and parses the whole header (through "# header-end"). A corrupt
 * header gives NULL and "FILE:LINE: field: problem". */
struct trace_reader *trace_reader_open(const char *path, struct diag *d);

const char *trace_reader_path(const struct trace_reader *r);
size_t trace_reader_header_count(const struct trace_reader *r);
const struct trace_kv *trace_reader_header_at(const struct trace_reader *r, size_t i);
/* The field with this key, or NULL. */
const struct trace_kv *trace_reader_header(const struct trace_reader *r, const char *key);
size_t trace_reader_block_count(const struct trace_reader *r);
const struct trace_block *trace_reader_block_at(const struct trace_reader *r, size_t i);
const struct trace_block *trace_reader_block(const struct trace_reader *r, const char *name);

/* One event line. The pointers stay valid until the next trace_reader_next
 * or trace_reader_close. */
struct trace_record {
  uint64_t time_ns;
  int cpu;
  const char *name;
  const char *fields; /* "" when the event has none */
  const char *line;   /* the whole line as in the file, without its newline */
  long line_no;
};

enum trace_read_status {
  TRACE_READ_ERROR = -1,
  TRACE_READ_END = 0, /* the "# trace-end N" line was read and N matched */
  TRACE_READ_EVENT = 1,
};

/* The next event. A bad line, an event out of order, a missing or wrong
 * "# trace-end" (a truncated file) is TRACE_READ_ERROR with a diag. At
 * TRACE_READ_END, rec->line / line_no describe the trace-end line. */
enum trace_read_status trace_reader_next(struct trace_reader *r, struct trace_record *rec,
                                         struct diag *d);

void trace_reader_close(struct trace_reader *r);

/* ---- differ --------------------------------------------------------------- */

enum trace_diff_result {
  TRACE_DIFF_IDENTICAL = 0,
  TRACE_DIFF_DIVERGED = 1,
  TRACE_DIFF_ERROR = 2, /* a trace could not be read; see the diag */
};

/* Where two traces first differ (line numbers 0 when not applicable). */
struct trace_divergence {
  long line_a, line_b;
  uint64_t event_index; /* 0-based index of the first differing event */
  bool in_header;       /* a required header field or block differs */
  char what[128];       /* e.g. "header field seed", "event 41" */
};

/* Compares two traces: first each required header field or block (a name in
 * `required` matches a key or a block name; absent on both sides counts as
 * equal), then every event line byte for byte. At the first divergence,
 * writes to out (if not NULL) a unified-diff-style excerpt: a summary line,
 * the ---/+++ file names, a hunk header, up to 3 preceding lines common to
 * both, then the line of each side ("-" = a, "+" = b). A trace that ends
 * early shows its "# trace-end" line. `where` (may be NULL) gets the
 * position. */
enum trace_diff_result trace_diff(const char *path_a, const char *path_b,
                                  const char *const *required, size_t n_required, FILE *out,
                                  struct trace_divergence *where, struct diag *d);

#endif
