/* ftrace.h — KVM async-page-fault tracepoints read from real ftrace text,
 * turned into fault-to-completion latencies for the simulator.
 *
 * Input: the text `trace-cmd report` prints, or the tracing `trace` file
 * (the same line with the irqs-off/need-resched/hardirq/preempt flags column):
 *   qemu-kvm-4023 [003] d..1 12345.678901: kvm_async_pf_not_present: token 0x1001 gva 0x7f00
 *   qemu-kvm-4023 [003] 12345.678901: kvm_async_pf_not_present: token 0x1001 gva 0x7f00
 * Events read: kvm_try_async_get_page, kvm_async_pf_repeated_fault (older
 * kvm_async_pf_doublefault), kvm_async_pf_not_present, kvm_async_pf_ready,
 * kvm_async_pf_completed, kvm_page_fault, kvm_exit, in every field format
 * Linux has printed them in (docs/ftrace-import.md lists the formats and
 * the kernel versions). Timestamps become integer ns exactly, without
 * floating point.
 *
 * Output: an empirical latency histogram in the file format of
 * docs/config.md ("Histogram files"), which plugs into
 * swap-device/latency dist="empirical", or a replay schedule of
 * (time offset, gva, latency) lines (docs/ftrace-import.md).
 *
 * Not for: binary trace.dat files (convert with `trace-cmd report`), the
 * `latency-format` trace option, or separating several VMs in one trace
 * (filter by pid first). */
#ifndef APFSIM_FTRACE_H
#define APFSIM_FTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/diag.h"

enum ftrace_event {
  FTRACE_EV_OTHER,              /* a well-formed line of an event we do not read */
  FTRACE_EV_TRY_ASYNC_GET_PAGE, /* gva, gfn */
  FTRACE_EV_REPEATED_FAULT,     /* gva, gfn (also the older name kvm_async_pf_doublefault) */
  FTRACE_EV_NOT_PRESENT,        /* token, gva */
  FTRACE_EV_READY,              /* token, gva */
  FTRACE_EV_COMPLETED,          /* gva, address [, pfn] */
  FTRACE_EV_PAGE_FAULT,         /* [vcpu, rip,] address, error_code */
  FTRACE_EV_EXIT,               /* [vcpu,] reason, rip, info1, info2 [, intr_info, error_code] */
  FTRACE_EV_COUNT
};

/* Tracepoint name of a kind ("other" for FTRACE_EV_OTHER). */
const char *ftrace_event_name(enum ftrace_event kind);

/* One parsed line. Only the fields the event's format has are set; the
 * has_* flags say which optional ones were there. */
struct ftrace_record {
  uint64_t time_ns;
  int cpu; /* host CPU, the [NNN] column */
  int pid;
  char comm[64]; /* may contain spaces ("CPU 0/KVM") */
  bool has_flags;
  char flags[8]; /* e.g. "d..1" or "d..1." (trace file only) */
  char event[64];
  enum ftrace_event kind;
  uint64_t gva, gfn, token, address, pfn, rip, error_code, info1, info2;
  uint32_t vcpu, intr_info, exit_error_code;
  bool has_vcpu, has_rip, has_pfn, has_intr_info;
  char reason[64]; /* kvm_exit: e.g. "EPT_VIOLATION", or "EXTERNAL_INTERRUPT" */
};

enum ftrace_line_status {
  FTRACE_LINE_EVENT, /* *rec is filled */
  FTRACE_LINE_SKIP,  /* blank, comment, trace-cmd header or a lost-events note */
  FTRACE_LINE_BAD,   /* why: "field: problem" */
};

/* Parses one line (without or with its newline). A line of an event we read
 * whose fields do not match any known format is FTRACE_LINE_BAD. */
enum ftrace_line_status ftrace_parse_line(const char *line, struct ftrace_record *rec, char *why,
                                          size_t why_len);

/* ---- import: pairing starts with their completions ---------------------- */

enum ftrace_pairing {
  FTRACE_PAIR_AUTO,     /* whichever of the two below gives more pairs (get-page on a tie) */
  FTRACE_PAIR_GET_PAGE, /* kvm_try_async_get_page -> kvm_async_pf_completed, same gva */
  FTRACE_PAIR_TOKEN,    /* kvm_async_pf_not_present -> kvm_async_pf_ready, same token */
};

const char *ftrace_pairing_name(enum ftrace_pairing p); /* "auto", "get-page", "token" */
bool ftrace_pairing_parse(const char *s, enum ftrace_pairing *p);

struct ftrace_pair {
  uint64_t start_ns;
  uint64_t latency_ns; /* at least 1: a pair within one timestamp tick counts as 1 ns */
  uint64_t gva;
  long start_line;
};

#define FTRACE_REPORTED_LINES 5

struct ftrace_bad_line {
  long line;
  char why[192];
};

struct ftrace_import {
  long lines;
  uint64_t events;                     /* well-formed event lines, of any event */
  uint64_t by_kind[FTRACE_EV_COUNT];
  uint64_t skipped;                    /* blank lines, comments, trace-cmd headers */
  uint64_t lost_notes;                 /* "[LOST n EVENTS]" lines: pairs may be missing */
  uint64_t unparseable;
  struct ftrace_bad_line bad[FTRACE_REPORTED_LINES]; /* the first few */
  size_t n_bad;
  enum ftrace_pairing pairing;         /* the one used (never AUTO) */
  uint64_t wake_all;                   /* page-ready for token 0xffffffff (wake all) */
  uint64_t unpaired_starts, unpaired_ends;
  uint64_t zero_latency;               /* pairs within one timestamp, counted as 1 ns */
  uint64_t too_long;                   /* pairs above 1000000 s (a config's limit), left out */
  struct ftrace_pair *pairs;           /* by start time, then line */
  size_t n_pairs;
};

/* Reads and pairs a whole file. False (with a diag) when it cannot be read,
 * is a binary trace.dat, or no line at all parses as an ftrace event; *out
 * still holds the counts and the first bad lines then, for the report.
 * Unparseable lines are counted, never fatal otherwise. Free with
 * ftrace_import_free either way. */
bool ftrace_import_file(const char *path, enum ftrace_pairing pairing, struct ftrace_import *out,
                        struct diag *d);
void ftrace_import_free(struct ftrace_import *im);

/* ---- output ---------------------------------------------------------------- */

#define FTRACE_MAX_BINS 255 /* + one empty bin fixing the lower edge = CONFIG_MAX_HISTOGRAM_BINS */
#define FTRACE_DEFAULT_BINS 64

struct ftrace_hist_bin {
  uint64_t upper_ns, count;
};

/* Equal-count bins over the pair latencies: at most `bins` (1..255) bins,
 * each covering (previous upper, upper] as docs/config.md defines them,
 * with bounds at observed latencies, preceded by an empty bin ending just
 * below the smallest latency so samples never fall below it. Writes at
 * most bins + 1 entries to out; returns how many (0 if there are no pairs). */
size_t ftrace_histogram(const struct ftrace_import *im, unsigned bins, struct ftrace_hist_bin *out);

/* The histogram file, with '#' comments saying where it came from. `source`
 * names the input in the comments. False on a write error or no pairs. */
bool ftrace_write_histogram(FILE *f, const struct ftrace_import *im, unsigned bins,
                            const char *source);

/* The replay schedule ("# apfsim-ftrace-schedule 1", then one
 * "OFFSET_NS GVA LATENCY_NS" line per pair, offsets from the first start).
 * False on a write error or no pairs. */
bool ftrace_write_schedule(FILE *f, const struct ftrace_import *im, const char *source);

#endif
