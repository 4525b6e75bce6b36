/* fields.c — the config format as data: every element and attribute of
 * configs/apfsim.xsd, the struct sim_config field it fills, its range, its
 * default, and the semantic rules that span several fields.
 *
 * The defaults and their sources are documented in docs/config.md; a test
 * compares that document with what config_defaults() produces.
 *
 * Not for: XML mechanics (load.c, write.c) or value syntax (units.c).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
#include "storage/presets.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)
#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull
#define MAXDUR CONFIG_MAX_DURATION_NS
/* x86-64 physical addresses are at most 52 bits wide. */
#define MAX_GPA ((1ull << 52) - 1)

/* ---------------------------------------------------------------- enums */

static const struct enum_name dist_names[] = {{"fixed", LATENCY_FIXED},
                                              {"uniform", LATENCY_UNIFORM},
                                              {"exponential", LATENCY_EXPONENTIAL},
                                              {"lognormal", LATENCY_LOGNORMAL},
                                              {"empirical", LATENCY_EMPIRICAL},
                                              {NULL, 0}};
static const struct enum_name preset_names[] = {{"custom", DEVICE_PRESET_CUSTOM},
                                                {"hdd", DEVICE_PRESET_HDD},
                                                {"sata-ssd", DEVICE_PRESET_SATA_SSD},
                                                {"nvme-ssd", DEVICE_PRESET_NVME_SSD},
                                                {"zswap", DEVICE_PRESET_ZSWAP},
                                                {"rdma", DEVICE_PRESET_RDMA},
                                                {NULL, 0}};
static const struct enum_name reclaim_names[] = {
    {"fifo", RECLAIM_FIFO}, {"clock", RECLAIM_CLOCK}, {"random", RECLAIM_RANDOM}, {NULL, 0}};
static const struct enum_name protocol_names[] = {
    {"off", APF_OFF}, {"halt", APF_HALT}, {"2010", APF_2010}, {"2020", APF_2020}, {NULL, 0}};
static const struct enum_name error_names[] = {{"none", APF_ERR_NONE},
                                               {"page-ready", APF_ERR_PAGE_READY},
                                               {"force-sync", APF_ERR_FORCE_SYNC},
                                               {"sync-exception", APF_ERR_SYNC_EXCEPTION},
                                               {NULL, 0}};
static const struct enum_name entry_order_names[] = {
    {"cr2-first", PF_ENTRY_CR2_FIRST}, {"reason-first", PF_ENTRY_REASON_FIRST}, {NULL, 0}};
static const struct enum_name nmi_cr2_names[] = {{"none", NMI_CR2_NONE},
                                                 {"save-restore", NMI_CR2_SAVE_RESTORE},
                                                 {"stash-reason", NMI_CR2_STASH_REASON},
                                                 {NULL, 0}};
static const struct enum_name delivery_names[] = {
    {"pf", NOT_PRESENT_PF}, {"ve", NOT_PRESENT_VE}, {NULL, 0}};
static const struct enum_name kind_names[] = {
    {"compute", WORKLOAD_COMPUTE},   {"memory", WORKLOAD_MEMORY},     {"mixed", WORKLOAD_MIXED},
    {"dax-read", WORKLOAD_DAX_READ}, {"dax-copy", WORKLOAD_DAX_COPY}, {NULL, 0}};
static const struct enum_name pattern_names[] = {
    {"sequential", ACCESS_SEQUENTIAL}, {"random", ACCESS_RANDOM}, {"zipf", ACCESS_ZIPF}, {NULL, 0}};
static const struct enum_name trigger_names[] = {{"at-instruction", NMI_AT_INSTRUCTION},
                                                 {"after-event", NMI_AFTER_EVENT},
                                                 {"at-symbol", NMI_AT_SYMBOL},
                                                 {"periodic", NMI_PERIODIC},
                                                 {NULL, 0}};

/* ------------------------------------------------------------- defaults */

static void latency_defaults(struct latency_config *lat) {
  lat->dist = LATENCY_FIXED;
  lat->fixed_ns = 100 * US;
  lat->min_ns = 50 * US;
  lat->max_ns = 150 * US;
  lat->mean_ns = 100 * US;
  lat->median_ns = 100 * US;
  lat->sigma_milli = 250;
  lat->histogram_path[0] = '\0';
  lat->n_bins = 0;
}

/* Device classes: the figures and their sources live with the device model
 * (sim/storage/presets.c, docs/storage.md); a preset sets the latency
 * distribution, channels and bandwidth, and leaves other fields alone. */
static void apply_device_preset(struct swap_device_config *swap) {
  storage_preset_apply(swap->preset, swap);
}

static void preset_after(void *base) {
  apply_device_preset(base);
}

static void process_defaults(void *entry) {
  struct process_config *p = entry;
  p->kind = WORKLOAD_MEMORY;
  p->pattern = ACCESS_SEQUENTIAL;
  p->count = 1;
  p->working_set_bytes = 16 * MiB;
  p->zipf_s_milli = 990;
  p->ops = 0;
  p->compute_per_op = 100;
}

static void nmi_defaults(void *entry) {
  struct nmi_plan *n = entry;
  n->trigger = NMI_AT_INSTRUCTION;
  n->vcpu = 0;
  n->at_instruction = 0;
  n->offset = 0;
  n->nth = 1;
  n->period_ns = 0;
}

void config_defaults(struct sim_config *cfg) {
  /* Zero everything first, padding included, so two configs with the same
   * values compare equal with memcmp. */
  memset(cfg, 0, sizeof *cfg);
  cfg->seed = 1;

  cfg->limits.max_sim_time_ns = 1 * SEC;
  cfg->limits.max_guest_instructions = 0;
  cfg->limits.max_host_seconds = 0;
  cfg->limits.max_host_memory_bytes = 0;

  cfg->machine.vcpus = 1;
  cfg->machine.guest_memory_bytes = 64 * MiB;
  cfg->machine.quantum_instructions = 10000;

  cfg->costs.cpu_mhz = 2000;
  cfg->costs.cpi_milli = 1000;
  cfg->costs.vm_exit_cycles = 700;
  cfg->costs.vm_entry_cycles = 650;
  cfg->costs.ept_violation_cycles = 2000;
  cfg->costs.event_injection_cycles = 100;
  cfg->costs.apic_access_cycles = 300;
  cfg->costs.msr_access_cycles = 300;
  cfg->costs.cpuid_cycles = 100;

  cfg->guest.pf_entry_order = PF_ENTRY_CR2_FIRST;
  cfg->guest.nmi_cr2 = NMI_CR2_SAVE_RESTORE;
  cfg->guest.not_present_delivery = NOT_PRESENT_PF;
  cfg->guest.nmi_reads_user_stack = false;
  cfg->guest.timer_period_ns = 4 * MS;
  cfg->guest.hung_task_timeout_ns = 120 * SEC;

  cfg->host.memory_limit_bytes = 0;
  cfg->host.reclaim = RECLAIM_CLOCK;
  cfg->host.writeback_dirty = true;
  cfg->host.enforce_pv_cpuid = false;
  cfg->host.host_pre_5_8 = false;

  latency_defaults(&cfg->swap.latency);
  cfg->swap.preset = DEVICE_PRESET_NVME_SSD;
  apply_device_preset(&cfg->swap);

  cfg->dax.enabled = false;
  cfg->dax.window_gpa = 0x100000000ull;
  cfg->dax.window_bytes = 64 * MiB;
  cfg->dax.file_bytes = 16 * MiB;
  cfg->dax.truncate = false;
  cfg->dax.truncate_at_ns = 1 * MS;
  cfg->dax.truncate_to_bytes = 0;
  latency_defaults(&cfg->dax.page_cache_latency);
  cfg->dax.page_cache_latency.fixed_ns = 2 * US;

  cfg->apf.protocol = APF_2020;
  cfg->apf.send_always = false;
  cfg->apf.page_ready_vector = 0xf3;
  cfg->apf.max_outstanding = 64;
  cfg->apf.error_reporting = APF_ERR_NONE;
  cfg->apf.livelock_faults = 100;
  cfg->apf.cpuid_async_pf = true;
  cfg->apf.cpuid_async_pf_int = true;
  cfg->apf.cpuid_async_pf_vmexit = true;

  cfg->race.stuck_timeout_ns = 10 * MS;

  cfg->smoke.enabled = false;
  cfg->smoke.timer_period_ns = 100 * US;
  cfg->smoke.device_requests = 20;
  cfg->smoke.request_interval_ns = 37 * US;
}

struct sim_config *config_new(void) {
  struct sim_config *cfg = calloc(1, sizeof *cfg);
  if (cfg) config_defaults(cfg);
  return cfg;
}

/* --------------------------------------------------------------- checks */

static void join(char *buf, size_t len, const char *path, const char *name) {
  snprintf(buf, len, "%s%s%s", path, *path ? "/" : "", name);
}

/* Reports at child `name` of `elem` when it is written, else at `elem`. */
__attribute__((format(printf, 5, 6))) static bool fail_child(struct load_ctx *c, xmlNode *elem,
                                                             const char *path, const char *name,
                                                             const char *fmt, ...) {
  char field[512], msg[DIAG_MAX];
  join(field, sizeof field, path, name);
  xmlNode *node = NULL;
  if (elem) {
    node = name[0] == '@' ? (xmlNode *)xmlHasProp(elem, (const xmlChar *)name + 1)
                          : config_child(elem, name);
    if (!node) node = elem;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return config_fail(c, node, field, "%s", msg);
}

static const char *fmt_dur(uint64_t ns, char *buf, size_t len) {
  value_format(T_DURATION, 0, NULL, ns, buf, len);
  return buf;
}

static const char *fmt_size(uint64_t bytes, char *buf, size_t len) {
  value_format(T_SIZE, 0, NULL, bytes, buf, len);
  return buf;
}

static bool check_latency(struct load_ctx *c, xmlNode *elem, const char *path, void *base) {
  const struct latency_config *lat = base;
  char a[32], b[32];
  switch (lat->dist) {
  case LATENCY_FIXED: return true;
  case LATENCY_UNIFORM:
    if (lat->min_ns > lat->max_ns)
      return fail_child(c, elem, path, config_child(elem, "max") ? "max" : "min",
                        "min %s is greater than max %s", fmt_dur(lat->min_ns, a, sizeof a),
                        fmt_dur(lat->max_ns, b, sizeof b));
    return true;
  case LATENCY_EXPONENTIAL:
    if (lat->mean_ns == 0)
      return fail_child(c, elem, path, "mean",
                        "an exponential distribution needs a mean above 0ns");
    return true;
  case LATENCY_LOGNORMAL:
    if (lat->median_ns == 0)
      return fail_child(c, elem, path, "median",
                        "a lognormal distribution needs a median above 0ns");
    return true;
  case LATENCY_EMPIRICAL:
    if (lat->n_bins == 0)
      return fail_child(c, elem, path, "histogram",
                        "dist 'empirical' needs a histogram (histogram/@file or <bin> elements)");
    return true;
  }
  return true;
}

static bool check_histogram(struct load_ctx *c, xmlNode *elem, const char *path, void *base) {
  const struct latency_config *lat = base;
  if (xmlHasProp(elem, (const xmlChar *)"file")) return true; /* checked while reading it */
  if (lat->n_bins == 0)
    return config_fail(c, elem, path, "histogram has no bins (give @file or <bin> elements)");
  uint32_t bad;
  char why[256], field[512];
  if (!histogram_check_bins(lat, &bad, why, sizeof why)) {
    if (bad == HISTOGRAM_WHOLE) return config_fail(c, elem, path, "%s", why);
    snprintf(field, sizeof field, "%s/bin[%" PRIu32 "]", path, bad + 1);
    return config_fail(c, config_nth_child(elem, "bin", bad), field, "%s", why);
  }
  return true;
}

static bool check_limits(struct load_ctx *c, xmlNode *elem, const char *path, void *base) {
  const struct limits_config *lim = base;
  if (lim->measure_from_ns >= lim->max_sim_time_ns)
    return fail_child(c, elem, path, "measure-from",
                      "the measurement window must start before limits/max-sim-time (%" PRIu64 " ns >= %" PRIu64
                      " ns)", lim->measure_from_ns, lim->max_sim_time_ns);
  return true;
}

static bool check_dax(struct load_ctx *c, xmlNode *elem, const char *path, void *base) {
  const struct dax_config *dax = base;
  char a[32], b[32];
  if (dax->file_bytes > dax->window_bytes)
    return fail_child(c, elem, path, "file-size", "file-size %s does not fit in window-size %s",
                      fmt_size(dax->file_bytes, a, sizeof a),
                      fmt_size(dax->window_bytes, b, sizeof b));
  if (dax->truncate_to_bytes > dax->file_bytes)
    return fail_child(c, elem, path, "truncate-to", "truncate-to %s is beyond file-size %s",
                      fmt_size(dax->truncate_to_bytes, a, sizeof a),
                      fmt_size(dax->file_bytes, b, sizeof b));
  return true;
}

static bool check_nmi(struct load_ctx *c, xmlNode *elem, const char *path, void *base) {
  const struct nmi_plan *n = base;
  switch (n->trigger) {
  case NMI_AT_INSTRUCTION: return true;
  case NMI_AFTER_EVENT:
    if (!n->event[0])
      return fail_child(c, elem, path, "event", "trigger 'after-event' needs an <event>");
    return true;
  case NMI_AT_SYMBOL:
    if (!n->symbol[0])
      return fail_child(c, elem, path, "symbol", "trigger 'at-symbol' needs a <symbol>");
    return true;
  case NMI_PERIODIC:
    if (n->period_ns == 0)
      return fail_child(c, elem, path, "period", "trigger 'periodic' needs a period above 0ns");
    return true;
  }
  return true;
}

/* Rules between sections, once everything is read. Nodes are looked up again
 * so a message points at the line that holds the offending value. */
static bool check_root(struct load_ctx *c, xmlNode *root, const char *path, void *base) {
  (void)path;
  const struct sim_config *cfg = base;
  char a[32], b[32], field[512];
  uint64_t mem = cfg->machine.guest_memory_bytes;
  xmlNode *host = config_child(root, "host");
  xmlNode *evictions = host ? config_child(host, "evictions") : NULL;
  for (uint32_t i = 0; i < cfg->host.n_evictions; i++) {
    const struct scripted_eviction *ev = &cfg->host.evictions[i];
    xmlNode *node = evictions ? config_nth_child(evictions, "evict", i) : NULL;
    snprintf(field, sizeof field, "host/evictions/evict[%" PRIu32 "]", i + 1);
    if (ev->gpa >= mem || ev->bytes > mem - ev->gpa)
      return fail_child(c, node, field, "@size",
                        "range 0x%" PRIx64 " + %s ends beyond guest memory (%s)", ev->gpa,
                        fmt_size(ev->bytes, a, sizeof a), fmt_size(mem, b, sizeof b));
  }
  xmlNode *race = config_child(root, "race");
  for (uint32_t i = 0; i < cfg->race.n_nmi_plans; i++) {
    xmlNode *node = race ? config_nth_child(race, "nmi", i) : NULL;
    snprintf(field, sizeof field, "race/nmi[%" PRIu32 "]", i + 1);
    if (cfg->race.nmi[i].vcpu >= cfg->machine.vcpus)
      return fail_child(c, node, field, "vcpu",
                        "vCPU %" PRIu32 " does not exist (machine/vcpus is %" PRIu32 ")",
                        cfg->race.nmi[i].vcpu, cfg->machine.vcpus);
  }
  xmlNode *workload = config_child(root, "workload");
  for (uint32_t i = 0; i < cfg->workload.n_processes; i++) {
    xmlNode *node = workload ? config_nth_child(workload, "process", i) : NULL;
    snprintf(field, sizeof field, "workload/process[%" PRIu32 "]", i + 1);
    if (cfg->workload.processes[i].working_set_bytes > mem)
      return fail_child(c, node, field, "working-set",
                        "working set %s is larger than guest memory (%s)",
                        fmt_size(cfg->workload.processes[i].working_set_bytes, a, sizeof a),
                        fmt_size(mem, b, sizeof b));
  }
  if (cfg->dax.enabled) {
    xmlNode *dax = config_child(root, "dax");
    if (cfg->dax.window_gpa < mem)
      return fail_child(c, dax, "dax", "window-gpa",
                        "window at 0x%" PRIx64 " overlaps guest memory (0x0..%s)",
                        cfg->dax.window_gpa, fmt_size(mem, a, sizeof a));
    if (cfg->dax.window_bytes > MAX_GPA + 1 - cfg->dax.window_gpa)
      return fail_child(c, dax, "dax", "window-size",
                        "window ends beyond the 52-bit physical address space");
  }
  if (cfg->apf.error_reporting == APF_ERR_PAGE_READY && cfg->apf.protocol != APF_2020)
    return fail_child(c, config_child(root, "apf"), "apf", "error-reporting",
                      "'page-ready' error reporting needs apf/protocol 2020");
  if (cfg->apf.error_reporting == APF_ERR_PAGE_READY && cfg->host.host_pre_5_8)
    return fail_child(c, config_child(root, "apf"), "apf", "error-reporting",
                      "'page-ready' error reporting needs a 5.8+ host (host/pre-5.8 is true: page-ready "
                      "comes as #PF, with no ready_flags word)");
  /* The host memory a run may use: guest RAM and the DAX window must fit, what is left
   * is the trace buffer's share (checked while running: a limit, then, not an error). */
  uint64_t need = mem + (cfg->dax.enabled ? cfg->dax.window_bytes : 0);
  if (cfg->limits.max_host_memory_bytes && need > cfg->limits.max_host_memory_bytes) {
    char c3[32];
    xmlNode *limits = config_child(root, "limits");
    return fail_child(c, limits, "limits", "max-host-memory",
                      "guest memory %s%s%s needs more than the limit %s", fmt_size(mem, a, sizeof a),
                      cfg->dax.enabled ? " + DAX window " : "",
                      cfg->dax.enabled ? fmt_size(cfg->dax.window_bytes, b, sizeof b) : "",
                      fmt_size(cfg->limits.max_host_memory_bytes, c3, sizeof c3));
  }
  return true;
}

/* Trace event names as apfsim's trace prints them (after the kvm tracepoints). */
static bool valid_event(const char *s, char *why, size_t len) {
  bool ok = *s >= 'a' && *s <= 'z';
  for (const char *p = s; ok && *p; p++)
    ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
  if (!ok)
    snprintf(why, len,
             "'%s' is not an event name (lower-case letters, digits and '_', e.g. "
             "kvm_async_pf_not_present)",
             s);
  return ok;
}

/* Guest kernel symbols: C identifiers, plus '.' as in local labels. */
static bool valid_symbol(const char *s, char *why, size_t len) {
  bool ok = !(*s >= '0' && *s <= '9') && *s;
  for (const char *p = s; ok && *p; p++)
    ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
         *p == '_' || *p == '.';
  if (!ok)
    snprintf(why, len,
             "'%s' is not a symbol name (letters, digits, '_' and '.', not starting "
             "with a digit)",
             s);
  return ok;
}

/* ---------------------------------------------------------------- table */

#define LEAF_(nm, ty, fl, st, fld, lo, hi, en, af)                                                 \
  {                                                                                                \
    .name = nm, .node = N_LEAF, .type = ty, .flags = fl, .offset = offsetof(st, fld),              \
    .size = sizeof(((st *)0)->fld), .min = lo, .max = hi, .enums = en, .after = af                 \
  }
#define LEAF(nm, ty, fl, st, fld, lo, hi) LEAF_(nm, ty, fl, st, fld, lo, hi, NULL, NULL)
#define ENUMF(nm, fl, st, fld, en) LEAF_(nm, T_ENUM, fl, st, fld, 0, 0, en, NULL)
#define BOOLF(nm, fl, st, fld) LEAF_(nm, T_BOOL, fl, st, fld, 0, 1, NULL, NULL)
#define STRF(nm, ty, st, fld) LEAF_(nm, ty, 0, st, fld, 0, 0, NULL, NULL)
#define GROUP(nm, off, kids, chk)                                                                  \
  { .name = nm, .node = N_GROUP, .offset = off, .children = kids, .check = chk }
#define LIST(nm, st, arr, cnt, kids, defs, chk)                                                    \
  {                                                                                                \
    .name = nm, .node = N_LIST, .offset = offsetof(st, arr), .count_offset = offsetof(st, cnt),    \
    .entry_size = sizeof(((st *)0)->arr[0]),                                                       \
    .max_entries = sizeof(((st *)0)->arr) / sizeof(((st *)0)->arr[0]), .children = kids,           \
    .entry_defaults = defs, .check = chk                                                           \
  }
#define END                                                                                        \
  { .name = NULL }

typedef struct latency_config LAT;
typedef struct latency_histogram_bin BIN;

static const struct field bin_fields[] = {
    LEAF("@upper", T_DURATION, F_REQUIRED, BIN, upper_ns, 1, MAXDUR),
    LEAF("@count", T_UINT, F_REQUIRED, BIN, count, 0, UINT64_MAX),
    END,
};

static const struct field histogram_fields[] = {
    STRF("@file", T_HIST_FILE, LAT, histogram_path),
    STRF("@inlined-from", T_STRING, LAT, histogram_path),
    LIST("bin", LAT, bins, n_bins, bin_fields, NULL, NULL),
    END,
};

static const struct field latency_fields[] = {
    ENUMF("@dist", 0, LAT, dist, dist_names),
    LEAF("value", T_DURATION, 0, LAT, fixed_ns, 0, MAXDUR),
    LEAF("min", T_DURATION, 0, LAT, min_ns, 0, MAXDUR),
    LEAF("max", T_DURATION, 0, LAT, max_ns, 0, MAXDUR),
    LEAF("mean", T_DURATION, 0, LAT, mean_ns, 0, MAXDUR),
    LEAF("median", T_DURATION, 0, LAT, median_ns, 0, MAXDUR),
    LEAF("sigma", T_MILLI, 0, LAT, sigma_milli, 0, 10000),
    GROUP("histogram", 0, histogram_fields, check_histogram),
    END,
};

typedef struct limits_config LIM;
static const struct field limits_fields[] = {
    LEAF("max-sim-time", T_DURATION, 0, LIM, max_sim_time_ns, 1, MAXDUR),
    LEAF("max-guest-instructions", T_UINT, F_UNLIMITED, LIM, max_guest_instructions, 0, UINT64_MAX),
    LEAF("max-host-seconds", T_UINT, F_UNLIMITED, LIM, max_host_seconds, 0, UINT64_MAX),
    LEAF("max-host-memory", T_SIZE, F_UNLIMITED, LIM, max_host_memory_bytes, 0, UINT64_MAX),
    LEAF("measure-from", T_DURATION, 0, LIM, measure_from_ns, 0, MAXDUR),
    END,
};

typedef struct machine_config MACH;
static const struct field machine_fields[] = {
    LEAF("vcpus", T_UINT, 0, MACH, vcpus, 1, 64),
    LEAF("guest-memory", T_SIZE, F_PAGE, MACH, guest_memory_bytes, 1 * MiB, 64 * GiB),
    LEAF("quantum-instructions", T_UINT, 0, MACH, quantum_instructions, 1, 1000000000),
    END,
};

typedef struct cost_config COST;
static const struct field cost_fields[] = {
    LEAF("cpu-frequency", T_FREQ, 0, COST, cpu_mhz, 1, 100000),
    LEAF("cycles-per-instruction", T_MILLI, 0, COST, cpi_milli, 1, 1000000),
    LEAF("vm-exit-cycles", T_UINT, 0, COST, vm_exit_cycles, 0, 1000000000),
    LEAF("vm-entry-cycles", T_UINT, 0, COST, vm_entry_cycles, 0, 1000000000),
    LEAF("ept-violation-cycles", T_UINT, 0, COST, ept_violation_cycles, 0, 1000000000),
    LEAF("event-injection-cycles", T_UINT, 0, COST, event_injection_cycles, 0, 1000000000),
    LEAF("apic-access-cycles", T_UINT, 0, COST, apic_access_cycles, 0, 1000000000),
    LEAF("msr-access-cycles", T_UINT, 0, COST, msr_access_cycles, 0, 1000000000),
    LEAF("cpuid-cycles", T_UINT, 0, COST, cpuid_cycles, 0, 1000000000),
    END,
};

typedef struct guest_config GUEST;
static const struct field guest_fields[] = {
    STRF("kernel", T_STRING, GUEST, kernel_path),
    ENUMF("pf-entry-order", 0, GUEST, pf_entry_order, entry_order_names),
    ENUMF("nmi-cr2", 0, GUEST, nmi_cr2, nmi_cr2_names),
    ENUMF("not-present-delivery", 0, GUEST, not_present_delivery, delivery_names),
    BOOLF("nmi-reads-user-stack", 0, GUEST, nmi_reads_user_stack),
    LEAF("timer-period", T_DURATION, 0, GUEST, timer_period_ns, 1 * US, 10 * SEC),
    LEAF("hung-task-timeout", T_DURATION, 0, GUEST, hung_task_timeout_ns, 1 * MS, MAXDUR),
    END,
};

typedef struct scripted_eviction EVICT;
static const struct field evict_fields[] = {
    LEAF("@at", T_DURATION, F_REQUIRED, EVICT, at_ns, 0, MAXDUR),
    LEAF("@gpa", T_UINT, F_REQUIRED | F_HEX | F_PAGE, EVICT, gpa, 0, MAX_GPA),
    LEAF("@size", T_SIZE, F_REQUIRED | F_PAGE, EVICT, bytes, CONFIG_PAGE_SIZE, MAX_GPA + 1),
    END,
};

typedef struct host_config HOST;
static const struct field evictions_fields[] = {
    LIST("evict", HOST, evictions, n_evictions, evict_fields, NULL, NULL),
    END,
};

static const struct field host_fields[] = {
    LEAF("memory-limit", T_SIZE, F_UNLIMITED | F_PAGE, HOST, memory_limit_bytes, 0, MAX_GPA + 1),
    ENUMF("reclaim", 0, HOST, reclaim, reclaim_names),
    BOOLF("writeback-dirty", 0, HOST, writeback_dirty),
    BOOLF("enforce-pv-cpuid", 0, HOST, enforce_pv_cpuid),
    BOOLF("pre-5.8", 0, HOST, host_pre_5_8),
    GROUP("evictions", 0, evictions_fields, NULL),
    END,
};

typedef struct swap_device_config SWAP;
static const struct field swap_fields[] = {
    LEAF_("@preset", T_ENUM, 0, SWAP, preset, 0, 0, preset_names, preset_after),
    GROUP("latency", offsetof(SWAP, latency), latency_fields, check_latency),
    LEAF("channels", T_UINT, 0, SWAP, channels, 1, 1024),
    LEAF("bandwidth", T_BANDWIDTH, F_UNLIMITED, SWAP, bandwidth_bytes_per_s, 0, UINT64_MAX),
    END,
};

typedef struct dax_config DAX;
static const struct field dax_fields[] = {
    BOOLF("@enabled", F_PRESENCE, DAX, enabled),
    LEAF("window-gpa", T_UINT, F_HEX | F_PAGE, DAX, window_gpa, 0, MAX_GPA),
    LEAF("window-size", T_SIZE, F_PAGE, DAX, window_bytes, CONFIG_PAGE_SIZE, TiB),
    LEAF("file-size", T_SIZE, 0, DAX, file_bytes, 0, TiB),
    BOOLF("truncate", 0, DAX, truncate),
    LEAF("truncate-at", T_DURATION, 0, DAX, truncate_at_ns, 0, MAXDUR),
    LEAF("truncate-to", T_SIZE, 0, DAX, truncate_to_bytes, 0, TiB),
    GROUP("page-cache-latency", offsetof(DAX, page_cache_latency), latency_fields, check_latency),
    END,
};

typedef struct apf_config APF;
static const struct field cpuid_fields[] = {
    BOOLF("async-pf", 0, APF, cpuid_async_pf),
    BOOLF("async-pf-vmexit", 0, APF, cpuid_async_pf_vmexit),
    BOOLF("async-pf-int", 0, APF, cpuid_async_pf_int),
    END,
};

static const struct field apf_fields[] = {
    ENUMF("protocol", 0, APF, protocol, protocol_names),
    BOOLF("send-always", 0, APF, send_always),
    LEAF("page-ready-vector", T_UINT, F_HEX, APF, page_ready_vector, 32, 255),
    LEAF("max-outstanding", T_UINT, 0, APF, max_outstanding, 1, 256),
    ENUMF("error-reporting", 0, APF, error_reporting, error_names),
    LEAF("livelock-faults", T_UINT, 0, APF, livelock_faults, 0, 1000000),
    GROUP("cpuid", 0, cpuid_fields, NULL),
    END,
};

typedef struct nmi_plan NMI;
static const struct field nmi_fields[] = {
    ENUMF("@trigger", F_REQUIRED, NMI, trigger, trigger_names),
    LEAF("vcpu", T_UINT, 0, NMI, vcpu, 0, 63),
    LEAF("at-instruction", T_UINT, 0, NMI, at_instruction, 0, UINT64_MAX),
    {.name = "event",
     .node = N_LEAF,
     .type = T_STRING,
     .offset = offsetof(NMI, event),
     .size = sizeof(((NMI *)0)->event),
     .valid = valid_event},
    {.name = "symbol",
     .node = N_LEAF,
     .type = T_STRING,
     .offset = offsetof(NMI, symbol),
     .size = sizeof(((NMI *)0)->symbol),
     .valid = valid_symbol},
    LEAF("offset", T_UINT, F_HEX_IN, NMI, offset, 0, UINT64_MAX),
    LEAF("nth", T_UINT, 0, NMI, nth, 1, UINT32_MAX),
    LEAF("period", T_DURATION, 0, NMI, period_ns, 0, MAXDUR),
    END,
};

typedef struct race_config RACE;
static const struct field race_fields[] = {
    LEAF("stuck-timeout", T_DURATION, 0, RACE, stuck_timeout_ns, 1 * US, MAXDUR),
    LIST("nmi", RACE, nmi, n_nmi_plans, nmi_fields, nmi_defaults, check_nmi),
    END,
};

typedef struct process_config PROC;
static const struct field process_fields[] = {
    ENUMF("@kind", F_REQUIRED, PROC, kind, kind_names),
    ENUMF("pattern", 0, PROC, pattern, pattern_names),
    LEAF("count", T_UINT, 0, PROC, count, 1, 64),
    LEAF("working-set", T_SIZE, F_PAGE, PROC, working_set_bytes, CONFIG_PAGE_SIZE, 64 * GiB),
    LEAF("zipf-s", T_MILLI, 0, PROC, zipf_s_milli, 0, 10000),
    LEAF("ops", T_UINT, F_UNLIMITED, PROC, ops, 0, UINT64_MAX),
    LEAF("compute-per-op", T_UINT, 0, PROC, compute_per_op, 0, 1000000000),
    END,
};

typedef struct workload_config WORK;
static const struct field workload_fields[] = {
    LIST("process", WORK, processes, n_processes, process_fields, process_defaults, NULL),
    END,
};

typedef struct smoke_config SMOKE;
static const struct field smoke_fields[] = {
    BOOLF("@enabled", F_PRESENCE, SMOKE, enabled),
    LEAF("timer-period", T_DURATION, 0, SMOKE, timer_period_ns, 1, MAXDUR),
    LEAF("device-requests", T_UINT, 0, SMOKE, device_requests, 0, 1000000),
    LEAF("request-interval", T_DURATION, 0, SMOKE, request_interval_ns, 1, MAXDUR),
    END,
};

typedef struct sim_config CFG;
static const struct field root_fields[] = {
    LEAF("seed", T_UINT, F_HEX_IN, CFG, seed, 0, INT64_MAX),
    GROUP("limits", offsetof(CFG, limits), limits_fields, check_limits),
    GROUP("machine", offsetof(CFG, machine), machine_fields, NULL),
    GROUP("costs", offsetof(CFG, costs), cost_fields, NULL),
    GROUP("guest", offsetof(CFG, guest), guest_fields, NULL),
    GROUP("host", offsetof(CFG, host), host_fields, NULL),
    GROUP("swap-device", offsetof(CFG, swap), swap_fields, NULL),
    GROUP("dax", offsetof(CFG, dax), dax_fields, check_dax),
    GROUP("apf", offsetof(CFG, apf), apf_fields, NULL),
    GROUP("race", offsetof(CFG, race), race_fields, NULL),
    GROUP("workload", offsetof(CFG, workload), workload_fields, NULL),
    GROUP("smoke", offsetof(CFG, smoke), smoke_fields, NULL),
    END,
};

const struct field config_root = GROUP("apfsim", 0, root_fields, check_root);

const struct field *field_find(const struct field *list, const char *name) {
  for (const struct field *f = list; f && f->name; f++)
    if (strcmp(f->name, name) == 0) return f;
  return NULL;
}

void field_names(const struct field *list, bool attributes, char *buf, size_t len) {
  size_t n = 0, count = 0, i = 0;
  for (const struct field *f = list; f->name; f++)
    if ((f->name[0] == '@') == attributes) count++;
  buf[0] = '\0';
  for (const struct field *f = list; f->name && n < len; f++) {
    if ((f->name[0] == '@') != attributes) continue;
    const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
    n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, f->name + (attributes ? 1 : 0));
    i++;
  }
}

void field_store(const struct field *f, void *base, uint64_t v) {
  char *p = (char *)base + f->offset;
  if (f->type == T_BOOL) {
    bool b = v != 0;
    memcpy(p, &b, sizeof b);
  } else if (f->type == T_ENUM) {
    int i = (int)v;
    memcpy(p, &i, sizeof i);
  } else if (f->size == 1) {
    uint8_t u = (uint8_t)v;
    memcpy(p, &u, sizeof u);
  } else if (f->size == 4) {
    uint32_t u = (uint32_t)v;
    memcpy(p, &u, sizeof u);
  } else {
    memcpy(p, &v, sizeof v);
  }
}

uint64_t field_value(const struct field *f, const void *base) {
  const char *p = (const char *)base + f->offset;
  if (f->type == T_BOOL) {
    bool b;
    memcpy(&b, p, sizeof b);
    return b;
  }
  if (f->type == T_ENUM) {
    int i;
    memcpy(&i, p, sizeof i);
    return (uint64_t)i;
  }
  if (f->size == 1) {
    uint8_t u;
    memcpy(&u, p, sizeof u);
    return u;
  }
  if (f->size == 4) {
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return u;
  }
  uint64_t u;
  memcpy(&u, p, sizeof u);
  return u;
}
