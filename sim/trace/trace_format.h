/* trace_format.h — the pieces of the trace syntax that the writer and the
 * reader must agree on (docs/trace-format.md). Internal to sim/trace. */
#ifndef APFSIM_TRACE_FORMAT_H
#define APFSIM_TRACE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Width the time column is right-aligned to: 15 digits of ns is 11.5 days of
 * simulated time; longer times just widen the column. */
#define TRACE_TIME_WIDTH 15
/* Width the source column ("cpu0", "host", "dev") is left-aligned to. */
#define TRACE_CPU_WIDTH 5

#define TRACE_CPU_LABEL_MAX 16

#define TRACE_MAGIC_KEY "apfsim-trace"
#define TRACE_BLOCK_LINE_PREFIX "#| "

/* "cpu3", "host", "dev"; false for an id outside the scheme. */
bool trace_cpu_label(int cpu, char out[TRACE_CPU_LABEL_MAX]);
/* Inverse of trace_cpu_label for a token of length len. */
bool trace_cpu_parse(const char *tok, size_t len, int *cpu);

bool trace_valid_key(const char *key);
bool trace_reserved_key(const char *key);
bool trace_valid_block_name(const char *name, size_t len);
bool trace_valid_event_name(const char *name, size_t len);

/* Lowercase hex of a 32-byte digest. */
void trace_hex32(const unsigned char digest[32], char out[65]);

#endif
