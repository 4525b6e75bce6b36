/* config.h — the simulated machine's configuration, as loaded from XML.
 *
 * One struct describes the whole run: machine, guest kernel variant, cycle costs,
 * host memory and reclaim, swap device, DAX window, APF, race plans, workload,
 * limits and seed. It is loaded from an XML file validated against
 * configs/apfsim.xsd, with `--set path=value` overrides applied before
 * validation, and can be written back out as canonical XML (the "effective
 * config" every trace header carries, so a replay needs nothing else).
 *
 * Units are fixed by field name suffix: _ns nanoseconds, _bytes bytes,
 * _cycles CPU cycles, _mhz megahertz, _milli thousandths. Nothing here is a
 * floating-point number: determinism must not depend on libm or FPU rounding.
 * docs/config.md documents every field: XML path, unit, default, range.
 *
 * Two structs with the same values compare equal with memcmp: the loader and
 * config_defaults() zero the whole struct (padding included) before filling
 * it, so copy configs with memcpy, never by assigning from a compound literal.
 *
 * Not for: running anything. Modules read the fields they own.
 */
#ifndef APFSIM_CONFIG_H
#define APFSIM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"

#define CONFIG_MAX_PROCESSES 64
#define CONFIG_MAX_EVICTIONS 64
#define CONFIG_MAX_NMI_PLANS 16
#define CONFIG_MAX_HISTOGRAM_BINS 256
#define CONFIG_PATH_MAX 4096

/* ---- latency distributions (swap device, DAX page cache) ---- */
enum latency_dist {
  LATENCY_FIXED,
  LATENCY_UNIFORM,     /* min_ns..max_ns */
  LATENCY_EXPONENTIAL, /* mean_ns */
  LATENCY_LOGNORMAL,   /* median_ns, sigma_milli (sigma of ln, x1000) */
  LATENCY_EMPIRICAL,   /* histogram: bins inlined from a file */
};

struct latency_histogram_bin {
  uint64_t upper_ns; /* bin covers (previous upper, upper_ns] */
  uint64_t count;
};

struct latency_config {
  enum latency_dist dist;
  uint64_t fixed_ns;
  uint64_t min_ns, max_ns;
  uint64_t mean_ns;
  uint64_t median_ns;
  uint32_t sigma_milli;
  char histogram_path[CONFIG_PATH_MAX]; /* as written in the config, for provenance */
  uint32_t n_bins;
  struct latency_histogram_bin bins[CONFIG_MAX_HISTOGRAM_BINS];
};

enum device_preset {
  DEVICE_PRESET_CUSTOM,
  DEVICE_PRESET_HDD,
  DEVICE_PRESET_SATA_SSD,
  DEVICE_PRESET_NVME_SSD,
  DEVICE_PRESET_ZSWAP,
  DEVICE_PRESET_RDMA,
};

struct swap_device_config {
  enum device_preset preset;
  struct latency_config latency;
  uint32_t channels;              /* requests served in parallel (queue depth) */
  uint64_t bandwidth_bytes_per_s; /* 0 = unlimited */
};

/* ---- host memory (EPT backing) ---- */
enum reclaim_policy { RECLAIM_FIFO, RECLAIM_CLOCK, RECLAIM_RANDOM };

struct scripted_eviction {
  uint64_t at_ns;
  uint64_t gpa;   /* page aligned */
  uint64_t bytes; /* multiple of 4 KiB */
};

struct host_config {
  uint64_t memory_limit_bytes; /* 0 = unlimited */
  enum reclaim_policy reclaim;
  bool writeback_dirty;
  uint32_t n_evictions;
  struct scripted_eviction evictions[CONFIG_MAX_EVICTIONS];
  bool enforce_pv_cpuid; /* KVM_CAP_ENFORCE_PV_FEATURE_CPUID; off by default as in KVM */
  bool host_pre_5_8;     /* model a pre-5.8 host (2010 page-ready as #PF, no INT bit) */
};

/* ---- APF (host side offers, guest side uses) ---- */
enum apf_protocol {
  APF_OFF,  /* guest never enables APF: every host fault synchronous unless halt */
  APF_HALT, /* guest does not enable APF: async I/O + synthetic halt (KVM default for non-PV) */
  APF_2010, /* pre-5.8 host and guest: page-ready as #PF, reason word, token in CR2 */
  APF_2020, /* 5.8+ host, 5.9+ guest: page-ready as interrupt, token slot, ACK */
};

enum apf_error_reporting {
  APF_ERR_NONE,       /* mainline: errors ignored, page-ready always sent */
  APF_ERR_PAGE_READY, /* 2020 proposal: ready_flags PAGE_ERROR (opt-in; CPUID bit 15, EN bit 4) */
  APF_ERR_FORCE_SYNC, /* a gfn that failed before faults synchronously -> EFAULT exit */
  APF_ERR_SYNC_EXCEPTION, /* #VE/#MC-style synchronous error exception, exception-table fixup */
};

struct apf_config {
  enum apf_protocol protocol;
  bool send_always;
  uint8_t page_ready_vector; /* MSR_KVM_ASYNC_PF_INT; Linux uses 0xf3 */
  uint32_t max_outstanding;  /* ASYNC_PF_PER_VCPU, 64 in KVM */
  enum apf_error_reporting error_reporting;
  /* Failed async faults on one gfn, none of them reported, before the run is a livelock
   * (the 2020 truncation loop); 0 = never. */
  uint32_t livelock_faults;
  bool cpuid_async_pf;        /* CPUID 0x40000001 EAX bit 4 offered */
  bool cpuid_async_pf_int;    /* bit 14 */
  bool cpuid_async_pf_vmexit; /* bit 10 */
};

/* ---- guest kernel and its variants ---- */
enum pf_entry_order { PF_ENTRY_CR2_FIRST /* Linux 5.3+ */, PF_ENTRY_REASON_FIRST /* 2.6.38-5.2 */ };
enum nmi_cr2_policy {
  NMI_CR2_NONE,         /* NMI does not save CR2 */
  NMI_CR2_SAVE_RESTORE, /* Linux since ~2012 */
  NMI_CR2_STASH_REASON, /* also stash and clear the APF reason (2020 proposal) */
};
enum not_present_delivery { NOT_PRESENT_PF, NOT_PRESENT_VE };

struct guest_config {
  /* ELF image; empty = the one built with apfsim. Kept as written: a relative
   * path is relative to the directory of source_path. */
  char kernel_path[CONFIG_PATH_MAX];
  enum pf_entry_order pf_entry_order;
  enum nmi_cr2_policy nmi_cr2;
  enum not_present_delivery not_present_delivery;
  bool nmi_reads_user_stack; /* perf-like call-chain sampling in the NMI handler */
  uint64_t timer_period_ns;  /* scheduler tick */
  uint64_t hung_task_timeout_ns;
};

/* ---- workload ---- */
enum workload_kind {
  WORKLOAD_COMPUTE,
  WORKLOAD_MEMORY,
  WORKLOAD_MIXED,
  WORKLOAD_DAX_READ,
  WORKLOAD_DAX_COPY
};
enum access_pattern { ACCESS_SEQUENTIAL, ACCESS_RANDOM, ACCESS_ZIPF };

struct process_config {
  enum workload_kind kind;
  enum access_pattern pattern;
  uint32_t count; /* identical processes */
  uint64_t working_set_bytes;
  uint32_t zipf_s_milli;   /* zipf exponent x1000 */
  uint64_t ops;            /* 0 = run until the end of the run */
  uint32_t compute_per_op; /* loop iterations per compute op */
};

struct workload_config {
  uint32_t n_processes;
  struct process_config processes[CONFIG_MAX_PROCESSES];
};

/* ---- race plans ---- */
enum nmi_trigger {
  NMI_AT_INSTRUCTION, /* vcpu's retired-instruction count == at */
  NMI_AFTER_EVENT,    /* offset instructions after the n-th `event` on vcpu */
  NMI_AT_SYMBOL,      /* at symbol+offset on its n-th execution */
  NMI_PERIODIC,       /* seeded Poisson process, mean period_ns */
};

struct nmi_plan {
  enum nmi_trigger trigger;
  uint32_t vcpu;
  uint64_t at_instruction;
  char event[64];
  char symbol[128];
  uint64_t offset;
  uint32_t nth;
  uint64_t period_ns;
};

struct race_config {
  uint64_t stuck_timeout_ns; /* an APF wait on a token no page-ready can answer: hung after this */
  uint32_t n_nmi_plans;
  struct nmi_plan nmi[CONFIG_MAX_NMI_PLANS];
};

/* ---- virtiofs DAX window ---- */
struct dax_config {
  bool enabled;
  uint64_t window_gpa;
  uint64_t window_bytes;
  uint64_t file_bytes;
  bool truncate;
  uint64_t truncate_at_ns;
  uint64_t truncate_to_bytes;
  struct latency_config page_cache_latency;
};

/* ---- timing ---- */
struct cost_config {
  uint32_t cpu_mhz;
  uint32_t cpi_milli; /* cycles per guest instruction x1000 */
  uint64_t vm_exit_cycles;
  uint64_t vm_entry_cycles;
  uint64_t ept_violation_cycles;
  uint64_t event_injection_cycles;
  uint64_t apic_access_cycles;
  uint64_t msr_access_cycles;
  uint64_t cpuid_cycles;
};

struct machine_config {
  uint32_t vcpus;
  uint64_t guest_memory_bytes;
  uint64_t quantum_instructions; /* max guest instructions a vCPU runs before yielding */
};

struct limits_config {
  uint64_t max_sim_time_ns;
  uint64_t max_guest_instructions; /* 0 = no limit */
  uint64_t max_host_seconds;       /* 0 = no limit; the one wall-clock read */
  uint64_t max_host_memory_bytes;  /* 0 = no limit: guest RAM + DAX window + trace buffer */
  uint64_t measure_from_ns;        /* start of the summary's measurement window (warm-up before it) */
};

/* Platform smoke scenario (issue 2): no guest; a timer and the device skeleton
 * advance SystemC time. Enabled when <smoke> is present. */
struct smoke_config {
  bool enabled;
  uint64_t timer_period_ns;
  uint32_t device_requests;
  uint64_t request_interval_ns;
};

struct sim_config {
  char source_path[CONFIG_PATH_MAX]; /* file it was loaded from */
  uint64_t seed;
  struct limits_config limits;
  struct machine_config machine;
  struct cost_config costs;
  struct guest_config guest;
  struct host_config host;
  struct swap_device_config swap;
  struct dax_config dax;
  struct apf_config apf;
  struct race_config race;
  struct workload_config workload;
  struct smoke_config smoke;
};

/* Sets every field to its documented default (docs/config.md). */
void config_defaults(struct sim_config *cfg);

/* Loads `path`, applies `n_overrides` "PATH=VALUE" strings (`--set`: a slash
 * path below the root, `@attr` last for an attribute, `name[k]` for the k-th
 * repeated element, e.g. "workload/process[2]/count=3"; docs/config.md),
 * validates against the schema (`schema_path`, or NULL for the embedded one),
 * checks semantics, and fills *cfg. On failure returns false, leaves *cfg
 * untouched, and fills *err (may be NULL) with "FILE:LINE: field: problem"
 * (diag.h) — or "FILE: --set PATH: problem" when an override caused it. The
 * struct is heap-sized; callers usually allocate it with config_new().
 * Never prints; leaves libxml2's error handlers as it found them. */
bool config_load(const char *path, const char *const *overrides, size_t n_overrides,
                 const char *schema_path, struct sim_config *cfg, struct diag *err);

/* Same, from a buffer (replay reads the config inlined in a trace header).
 * `name` is used in messages in place of a file name and becomes source_path;
 * relative histogram files are looked up next to it. */
bool config_load_buffer(const char *name, const char *xml, size_t len, const char *const *overrides,
                        size_t n_overrides, const char *schema_path, struct sim_config *cfg,
                        struct diag *err);

/* Canonical XML of the effective configuration: every field written in a
 * fixed order and format, histogram bins inlined. Loading it back gives an
 * identical struct (source_path aside). Caller frees; NULL when out of memory. */
char *config_to_xml(const struct sim_config *cfg);

struct sim_config *config_new(void); /* zeroed + defaults; free with free() */

/* configs/apfsim.xsd, embedded into the library at build time so the binary
 * validates the same way wherever it runs. */
extern const char config_schema_xsd[];

#endif
