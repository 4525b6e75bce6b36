/* report.h — the machine-readable summary of one run (`apfsim run --json`,
 * DESIGN.md §6): what happened (outcome, verdict), how long it took in
 * simulated time, and the APF and race counters.
 *
 * Every value is an integer computed by the simulator, so the JSON is the
 * same for the same run on any machine — except host_seconds, the one
 * wall-clock figure, which is allowed to vary (and never enters the trace).
 *
 * Not for: the event trace (sim/trace), sweep CSVs, or printing the verdict
 * for a person (the CLI does that). */
#ifndef APFSIM_REPORT_H
#define APFSIM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"

/* How a run ended. The names (outcome_name) are the contract: the CLI's
 * --expect, the JSON and the sweep CSV all use them. */
enum run_outcome {
  OUTCOME_OK,           /* ok: workload finished */
  OUTCOME_HUNG_TASK,    /* hung_task: a guest task waits forever (e.g. a lost token) */
  OUTCOME_HUNG_VCPU,    /* hung_vcpu: a vCPU makes no progress (e.g. waiting in NMI context) */
  OUTCOME_GUEST_PANIC,  /* guest_panic: the guest kernel panicked */
  OUTCOME_EFAULT_EXIT,  /* efault_exit: KVM_RUN failed with EFAULT, VM stopped */
  OUTCOME_LIVELOCK,     /* livelock: the guest retries the same fault for ever */
  OUTCOME_SIGBUS,       /* sigbus: a guest task was killed by SIGBUS */
  OUTCOME_TRIPLE_FAULT, /* triple_fault: the vCPU shut down */
  OUTCOME_TIMEOUT,      /* timeout: an end condition (time/instructions) hit first */
  OUTCOME_COUNT
};

/* "ok", "hung_task", ...; NULL for a value outside the enum. */
const char *outcome_name(enum run_outcome o);
/* Exact, case-sensitive match of a name; false if none. */
bool outcome_parse(const char *name, enum run_outcome *out);

/* Per-vCPU counters. */
struct vcpu_summary {
  uint64_t instructions;      /* retired guest instructions */
  uint64_t vm_exits;
  uint64_t ept_violations;    /* accesses to pages not resident on the host */
  uint64_t guest_page_faults; /* #PF delivered to the guest, APF ones included */
  uint64_t apf_not_present;   /* "page not present" APFs injected on this vCPU */
  uint64_t apf_page_ready;    /* page-ready notifications delivered to it */
  uint64_t sync_faults;       /* host faults it waited for synchronously */
  uint64_t synthetic_halts;
  uint64_t nmis;
  uint64_t interrupts;
  uint64_t halted_ns;         /* simulated time spent halted */
};

/* Whole-machine APF counters (DESIGN.md §6). */
struct apf_summary {
  uint64_t not_present;
  uint64_t page_ready;
  uint64_t sync_faults;
  uint64_t synthetic_halts;
  uint64_t wake_all;
  uint64_t dummy_nodes;
  uint64_t outstanding; /* APFs still in flight when the run ended */
};

struct race_summary {
  uint64_t nmi_injected;
  uint64_t cr2_clobbered;
  uint64_t lost_tokens;
};

struct workload_summary {
  uint64_t ops; /* ops_per_sec is derived: report_ops_per_sec() */
};

/* The host swap device (sim/storage). */
struct storage_summary {
  uint64_t requests;  /* submitted */
  uint64_t completed;
  uint64_t mean_latency_ns;
  uint64_t max_latency_ns;
};

/* An extra section, so that later statistics (storage, per-process, ...)
 * need no change here: `keys` name the columns, `values` holds n_rows rows
 * of n_keys counters, row-major. as_list: a JSON array of n_rows objects;
 * otherwise one object (n_rows must be 1). Written after the fixed keys, in
 * the order given. */
struct report_section {
  const char *name;
  const char *const *keys;
  size_t n_keys;
  const uint64_t *values;
  size_t n_rows;
  bool as_list;
};

#define REPORT_VERDICT_MAX 1024

/* Self-contained except for the vcpus and sections arrays it points to, so a
 * zeroed (calloc'd) summary is a valid start. */
struct run_summary {
  enum run_outcome outcome;
  char verdict[REPORT_VERDICT_MAX]; /* one sentence, UTF-8; required (non-empty) */
  uint64_t seed;
  uint64_t sim_time_ns;
  uint64_t guest_instructions;
  uint64_t host_ns; /* wall-clock run time; printed as host_seconds (ms precision) */
  const struct vcpu_summary *vcpus; /* vcpus[i] is vCPU i */
  size_t n_vcpus;
  struct apf_summary apf;
  struct race_summary race;
  struct workload_summary workload;
  struct storage_summary storage;
  char trace_sha256[65]; /* lowercase hex; "" = no trace (printed as null) */
  char guest_image_sha256[65]; /* lowercase hex of the guest kernel image; "" = no guest (null) */
  const struct report_section *sections;
  size_t n_sections;
};

/* JSON integers are signed 64-bit in jansson and in most consumers: every
 * counter (and the seed) must be at most this, or writing fails with a diag
 * naming the field. The config should bound the seed accordingly. */
#define REPORT_MAX_INTEGER INT64_MAX

/* Operations per simulated second, rounded to the nearest integer, computed
 * in integers (ops * 10^9 / sim_time_ns); 0 when sim_time_ns is 0. The exact
 * rate is recoverable from workload.ops and sim_time_ns. Saturates at
 * UINT64_MAX. */
uint64_t report_ops_per_sec(uint64_t ops, uint64_t sim_time_ns);

/* The summary as JSON text (2-space indent, keys in a fixed order, final
 * newline); malloc'd, the caller frees. NULL + diag "field: problem" if a
 * value cannot be represented (see REPORT_MAX_INTEGER, verdict empty or not UTF-8,
 * trace_sha256 or guest_image_sha256 not 64 hex digits, a section name clashing with a key). */
char *report_format_json(const struct run_summary *s, struct diag *d);

/* Writes report_format_json's text to path, or to stdout for "-". A file is
 * written to a temporary name beside it and renamed into place, so a reader
 * never sees half a summary. */
bool report_write_json(const struct run_summary *s, const char *path_or_dash, struct diag *d);

#endif
