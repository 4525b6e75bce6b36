/* apfsim-soakgen.c — writes random, valid apfsim configs for the soak
 * (docs/soak.md, tools/soak.sh).
 *
 *   apfsim-soakgen SEED FIRST COUNT DIR [MAX_SIM_NS]
 *
 * writes DIR/soak-<SEED>-<i>.xml for i in [FIRST, FIRST+COUNT). Config i
 * depends only on (SEED, i): its stream is sim/rng's stream "soak/<i>" of the
 * run seed SEED, so any one config can be written again on its own to
 * reproduce a finding. Every section of the format (configs/apfsim.xsd,
 * docs/config.md) is drawn, each value within its documented range and the
 * rules between values (working sets inside guest memory, DAX window above
 * RAM, NMI vCPU below vcpus, ...) kept; values are skewed towards what runs
 * quickly — a few milliseconds of simulated time, tens of MiB of guest memory
 * — so 500 configs soak in minutes. limits/max-host-seconds is always set, as
 * a safety net below the driver's own timeout. Also writes DIR/soak.hist, the
 * histogram file some configs refer to (so the file reader is soaked too). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng/rng.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define PAGE (4 * KIB)
#define US UINT64_C(1000)
#define MS (1000 * US)

/* One config being written: its stream and its file. */
struct gen {
  struct rng r;
  FILE *f;
  int depth;
  /* Keep the guest kernel's own rules (sim/loader/boot_info.c: RAM of whole
   * 2 MiB from 16 MiB, #VE only with protocol 2020, DAX workloads only with
   * the window and not zipf, no vector the kernel uses)? One config in ten
   * may break them, to soak the bad-input path as well. */
  bool kernel_rules;
  uint64_t max_sim_ns; /* simulated time of the longest run (default 5 ms) */
};

static uint64_t between(struct gen *g, uint64_t lo, uint64_t hi) {
  return rng_uniform_u64(&g->r, lo, hi);
}
static bool chance(struct gen *g, unsigned percent) { return rng_below(&g->r, 100) < percent; }
static const char *pick(struct gen *g, const char *const *words, size_t n) {
  return words[rng_below(&g->r, n)];
}
#define PICK(g, arr) pick(g, arr, sizeof arr / sizeof *arr)

/* Log-uniform in [lo, hi]: small values as often as large ones. */
static uint64_t log_between(struct gen *g, uint64_t lo, uint64_t hi) {
  if (lo == 0) lo = 1;
  unsigned a = 63 - (unsigned)__builtin_clzll(lo), b = 63 - (unsigned)__builtin_clzll(hi);
  unsigned e = (unsigned)between(g, a, b);
  uint64_t base = UINT64_C(1) << e, top = e == 63 ? UINT64_MAX : (base << 1) - 1;
  if (base < lo) base = lo;
  if (top > hi) top = hi;
  return between(g, base, top);
}

static void indent(struct gen *g) {
  for (int i = 0; i < g->depth; i++) fputs("  ", g->f);
}

__attribute__((format(printf, 3, 4))) static void leaf(struct gen *g, const char *name,
                                                       const char *fmt, ...) {
  indent(g);
  fprintf(g->f, "<%s>", name);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(g->f, fmt, ap);
  va_end(ap);
  fprintf(g->f, "</%s>\n", name);
}

static void open_el(struct gen *g, const char *tag_and_attrs) {
  indent(g);
  fprintf(g->f, "<%s>\n", tag_and_attrs);
  g->depth++;
}

static void close_el(struct gen *g, const char *name) {
  g->depth--;
  indent(g);
  fprintf(g->f, "</%s>\n", name);
}

/* Durations, sizes and the like in a random one of their spellings, so the
 * unit parser is soaked as well; each spelling states the value exactly. */
static void put_duration(struct gen *g, const char *name, uint64_t ns) {
  if (ns % MS == 0 && chance(g, 50))
    leaf(g, name, "%" PRIu64 "ms", ns / MS);
  else if (ns % US == 0 && chance(g, 50))
    leaf(g, name, "%" PRIu64 "us", ns / US);
  else if (ns % MS == MS / 2 && chance(g, 50))
    leaf(g, name, "%" PRIu64 ".5ms", ns / MS);
  else
    leaf(g, name, "%" PRIu64 "ns", ns);
}

static void put_size(struct gen *g, const char *name, uint64_t bytes) {
  if (bytes % MIB == 0 && bytes && chance(g, 60))
    leaf(g, name, "%" PRIu64 "MiB", bytes / MIB);
  else if (bytes % KIB == 0 && chance(g, 60))
    leaf(g, name, "%" PRIu64 "KiB", bytes / KIB);
  else
    leaf(g, name, "%" PRIu64, bytes);
}

static void put_bool(struct gen *g, const char *name, bool v) {
  static const char *const yes[] = {"true", "1"}, *const no[] = {"false", "0"};
  leaf(g, name, "%s", v ? PICK(g, yes) : PICK(g, no));
}

static void maybe_bool(struct gen *g, const char *name) {
  if (chance(g, 50)) put_bool(g, name, chance(g, 50));
}

static const char *const dists[] = {"fixed", "uniform", "exponential", "lognormal", "empirical"};

/* A latency distribution (swap device or DAX page cache). */
static void put_latency(struct gen *g, const char *name, bool hist_file) {
  const char *dist = PICK(g, dists);
  char tag[64];
  snprintf(tag, sizeof tag, "%s dist=\"%s\"", name, dist);
  open_el(g, tag);
  if (!strcmp(dist, "fixed")) {
    put_duration(g, "value", log_between(g, 0, 2 * MS));
  } else if (!strcmp(dist, "uniform")) {
    uint64_t lo = log_between(g, 0, 500 * US), hi = lo + log_between(g, 0, 2 * MS);
    put_duration(g, "min", lo);
    put_duration(g, "max", hi);
  } else if (!strcmp(dist, "exponential")) {
    put_duration(g, "mean", log_between(g, 1, 2 * MS));
  } else if (!strcmp(dist, "lognormal")) {
    put_duration(g, "median", log_between(g, 1, 2 * MS));
    leaf(g, "sigma", "%" PRIu64 ".%03" PRIu64, between(g, 0, 2), between(g, 0, 999));
  } else if (hist_file && chance(g, 40)) {
    indent(g);
    fputs("<histogram file=\"soak.hist\"/>\n", g->f);
  } else {
    open_el(g, chance(g, 30) ? "histogram inlined-from=\"measured.hist\"" : "histogram");
    unsigned bins = (unsigned)between(g, 1, 12);
    uint64_t upper = 0, sum = 0;
    for (unsigned i = 0; i < bins; i++) {
      upper += log_between(g, 1, 500 * US);
      uint64_t count = chance(g, 20) ? 0 : log_between(g, 1, 100000);
      if (i + 1 == bins && sum == 0 && count == 0) count = 1; /* counts sum above 0 */
      sum += count;
      indent(g);
      fprintf(g->f, "<bin upper=\"%" PRIu64 "ns\" count=\"%" PRIu64 "\"/>\n", upper, count);
    }
    close_el(g, "histogram");
  }
  close_el(g, name);
}

static void gen_config(struct gen *g, uint64_t index) {
  fprintf(g->f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- apfsim-soakgen config %" PRIu64
                " (docs/soak.md) -->\n<apfsim>\n",
          index);
  g->depth = 1;
  leaf(g, "seed", "%" PRIu64, rng_next_u64(&g->r) >> 1);

  /* Short runs; <limits> itself is written last, once RAM and the DAX window are known. */
  uint64_t sim_ns = between(g, g->max_sim_ns / 25, g->max_sim_ns);

  /* machine */
  unsigned vcpus = chance(g, 85) ? (unsigned)between(g, 1, 4) : (unsigned)between(g, 5, 12);
  uint64_t mem = between(g, 8, 64) * 2 * MIB;
  if (!g->kernel_rules && chance(g, 50)) mem = between(g, 1, 8) * MIB;
  if (!g->kernel_rules && chance(g, 50)) mem += between(g, 1, 255) * PAGE;
  open_el(g, "machine");
  leaf(g, "vcpus", "%u", vcpus);
  put_size(g, "guest-memory", mem);
  if (chance(g, 50)) leaf(g, "quantum-instructions", "%" PRIu64, log_between(g, 1, 200000));
  close_el(g, "machine");

  /* costs */
  open_el(g, "costs");
  if (chance(g, 60)) {
    if (chance(g, 50))
      leaf(g, "cpu-frequency", "%" PRIu64 "MHz", log_between(g, 100, 10000));
    else
      leaf(g, "cpu-frequency", "%" PRIu64 ".%" PRIu64 "GHz", between(g, 1, 5), between(g, 0, 9));
  }
  if (chance(g, 50))
    leaf(g, "cycles-per-instruction", "%" PRIu64 ".%03" PRIu64, between(g, 0, 4),
         between(g, 1, 999));
  static const char *const cost_names[] = {"vm-exit-cycles",         "vm-entry-cycles",
                                           "ept-violation-cycles",   "event-injection-cycles",
                                           "apic-access-cycles",     "msr-access-cycles",
                                           "cpuid-cycles"};
  for (size_t i = 0; i < sizeof cost_names / sizeof *cost_names; i++)
    if (chance(g, 40)) leaf(g, cost_names[i], "%" PRIu64, log_between(g, 0, 20000));
  close_el(g, "costs");

  /* guest */
  static const char *const protocols[] = {"off", "halt", "2010", "2020"};
  static const char *const orders[] = {"cr2-first", "reason-first"};
  static const char *const nmi_cr2[] = {"none", "save-restore", "stash-reason"};
  static const char *const delivery[] = {"pf", "ve"};
  open_el(g, "guest");
  if (chance(g, 50)) leaf(g, "pf-entry-order", "%s", PICK(g, orders));
  if (chance(g, 50)) leaf(g, "nmi-cr2", "%s", PICK(g, nmi_cr2));
  const char *protocol = PICK(g, protocols); /* drawn here: #VE delivery depends on it */
  if (chance(g, 50)) {
    const char *d = PICK(g, delivery);
    if (g->kernel_rules && strcmp(protocol, "2020")) d = "pf";
    leaf(g, "not-present-delivery", "%s", d);
  }
  maybe_bool(g, "nmi-reads-user-stack");
  if (chance(g, 60)) put_duration(g, "timer-period", log_between(g, 20 * US, 10 * MS));
  if (chance(g, 50)) put_duration(g, "hung-task-timeout", log_between(g, 1 * MS, 200 * MS));
  close_el(g, "guest");

  /* host */
  static const char *const reclaims[] = {"fifo", "clock", "random"};
  open_el(g, "host");
  if (chance(g, 60))
    put_size(g, "memory-limit", between(g, 64, mem / PAGE) * PAGE);
  else if (chance(g, 30))
    leaf(g, "memory-limit", "unlimited");
  if (chance(g, 50)) leaf(g, "reclaim", "%s", PICK(g, reclaims));
  maybe_bool(g, "writeback-dirty");
  maybe_bool(g, "enforce-pv-cpuid");
  maybe_bool(g, "pre-5.8");
  if (chance(g, 40)) {
    open_el(g, "evictions");
    unsigned n = (unsigned)between(g, 1, 8);
    for (unsigned i = 0; i < n; i++) {
      uint64_t gpa = between(g, 0, mem / PAGE - 1) * PAGE;
      uint64_t size = between(g, 1, (mem - gpa) / PAGE < 2048 ? (mem - gpa) / PAGE : 2048) * PAGE;
      indent(g);
      fprintf(g->f, "<evict at=\"%" PRIu64 "us\" gpa=\"0x%" PRIx64 "\" size=\"%" PRIu64 "\"/>\n",
              between(g, 0, sim_ns / US), gpa, size);
    }
    close_el(g, "evictions");
  }
  close_el(g, "host");

  /* swap device */
  static const char *const presets[] = {"custom", "hdd", "sata-ssd", "nvme-ssd", "zswap", "rdma"};
  if (chance(g, 80)) {
    char tag[64];
    snprintf(tag, sizeof tag, "swap-device preset=\"%s\"", PICK(g, presets));
    open_el(g, tag);
    if (chance(g, 50)) put_latency(g, "latency", true);
    if (chance(g, 40)) leaf(g, "channels", "%" PRIu64, log_between(g, 1, 1024));
    if (chance(g, 40)) {
      if (chance(g, 20))
        leaf(g, "bandwidth", "unlimited");
      else
        leaf(g, "bandwidth", "%" PRIu64 "MB/s", log_between(g, 1, 20000));
    }
    close_el(g, "swap-device");
  }

  /* DAX window: above RAM, inside the simulator's address space. */
  bool dax = chance(g, 35);
  uint64_t window = 0;
  if (dax || chance(g, 10)) {
    open_el(g, dax ? "dax" : "dax enabled=\"false\"");
    window = between(g, 1, 64 * MIB / PAGE) * PAGE;
    uint64_t base = (mem + between(g, 0, 1024) * PAGE);
    if (chance(g, 50)) base = 0x100000000ull;
    uint64_t file = between(g, 0, window);
    leaf(g, "window-gpa", "0x%" PRIx64, base);
    put_size(g, "window-size", window);
    put_size(g, "file-size", file);
    maybe_bool(g, "truncate");
    if (chance(g, 60)) put_duration(g, "truncate-at", between(g, 0, sim_ns));
    if (chance(g, 60)) put_size(g, "truncate-to", between(g, 0, file));
    if (chance(g, 50)) put_latency(g, "page-cache-latency", true);
    close_el(g, "dax");
  }

  /* APF */
  static const char *const errors[] = {"none", "page-ready", "force-sync", "sync-exception"};
  open_el(g, "apf");
  leaf(g, "protocol", "%s", protocol);
  maybe_bool(g, "send-always");
  if (chance(g, 30)) {
    uint64_t v = between(g, 32, 255);
    if (g->kernel_rules && (v == 0x80 || v == 0xec || v == 0xfd || v == 0xff)) v = 0xf3;
    leaf(g, "page-ready-vector", "0x%" PRIx64, v);
  }
  if (chance(g, 40)) leaf(g, "max-outstanding", "%" PRIu64, log_between(g, 1, 256));
  if (chance(g, 30)) leaf(g, "livelock-faults", "%" PRIu64, log_between(g, 0, 1000));
  if (chance(g, 50)) {
    const char *e = PICK(g, errors);
    if (!strcmp(e, "page-ready") && strcmp(protocol, "2020")) e = "none"; /* needs 2020 */
    leaf(g, "error-reporting", "%s", e);
  }
  if (chance(g, 40)) {
    open_el(g, "cpuid");
    maybe_bool(g, "async-pf");
    maybe_bool(g, "async-pf-vmexit");
    maybe_bool(g, "async-pf-int");
    close_el(g, "cpuid");
  }
  close_el(g, "apf");

  /* race plans */
  static const char *const triggers[] = {"at-instruction", "after-event", "at-symbol", "periodic"};
  static const char *const events[] = {"kvm_async_pf_not_present", "kvm_async_pf_ready",
                                       "kvm_async_pf_completed",   "kvm_page_fault",
                                       "ept_violation",            "interrupt",
                                       "timer_tick",               "sync_fault_start",
                                       "no_such_event"};
  static const char *const symbols[] = {"asm_exc_page_fault", "exc_page_fault", "asm_exc_nmi",
                                        "copy_user_generic",  "do_syscall",     "cpu_idle",
                                        "user_main",          "no_such_symbol"};
  if (chance(g, 40)) {
    open_el(g, "race");
    if (chance(g, 40)) put_duration(g, "stuck-timeout", log_between(g, 1 * US, 20 * MS));
    unsigned n = (unsigned)between(g, 1, 4);
    for (unsigned i = 0; i < n; i++) {
      const char *t = PICK(g, triggers);
      char tag[64];
      snprintf(tag, sizeof tag, "nmi trigger=\"%s\"", t);
      open_el(g, tag);
      if (chance(g, 70)) leaf(g, "vcpu", "%" PRIu64, between(g, 0, vcpus - 1));
      if (!strcmp(t, "at-instruction")) {
        leaf(g, "at-instruction", "%" PRIu64, log_between(g, 0, 5000000));
      } else if (!strcmp(t, "after-event")) {
        leaf(g, "event", "%s", PICK(g, events));
        if (chance(g, 60)) leaf(g, "nth", "%" PRIu64, log_between(g, 1, 100));
        if (chance(g, 60)) leaf(g, "offset", "%" PRIu64, log_between(g, 0, 1000));
      } else if (!strcmp(t, "at-symbol")) {
        leaf(g, "symbol", "%s", PICK(g, symbols));
        if (chance(g, 60)) leaf(g, "nth", "%" PRIu64, log_between(g, 1, 50));
        if (chance(g, 40)) leaf(g, "offset", "0x%" PRIx64, between(g, 0, 16));
      } else {
        put_duration(g, "period", log_between(g, 1 * US, 2 * MS));
      }
      close_el(g, "nmi");
    }
    close_el(g, "race");
  }

  /* workload */
  static const char *const kinds[] = {"compute", "memory", "mixed", "dax-read", "dax-copy"};
  static const char *const patterns[] = {"sequential", "random", "zipf"};
  if (chance(g, 90)) {
    open_el(g, "workload");
    unsigned n = (unsigned)between(g, 1, 4);
    /* Guest RAM left for processes: the kernel, its page pool and the vCPUs' stacks
     * take a few MiB; each process needs its working set (+ zipf table) and its
     * stack, rounded up to 2 MiB (apfsim_guest_layout). The estimate is generous. */
    uint64_t budget = mem > 8 * MIB + vcpus * MIB ? mem - 8 * MIB - vcpus * MIB : 0;
    for (unsigned i = 0; i < n; i++) {
      char tag[64];
      const char *kind = PICK(g, kinds);
      bool uses_dax = !strncmp(kind, "dax-", 4);
      if (g->kernel_rules && uses_dax && !dax) kind = "memory", uses_dax = false;
      bool uses_ws = !strcmp(kind, "memory") || !strcmp(kind, "mixed");
      uint64_t count = chance(g, 50) ? between(g, 1, 4) : 1;
      const uint64_t per_process = 4 * MIB; /* stack, params and rounding */
      if (g->kernel_rules && count * (per_process + (uses_ws ? 2 * MIB : 0)) > budget) break;
      uint64_t max_ws = g->kernel_rules ? (budget / count - per_process) / 2 : mem / 4;
      if (max_ws < PAGE) max_ws = PAGE;
      uint64_t ws = between(g, 1, max_ws / PAGE) * PAGE;
      if (g->kernel_rules)
        budget -= count * (per_process + (uses_ws ? ((ws + ws / 256 + 2 * MIB - 1) & ~(2 * MIB - 1)) : 0));
      snprintf(tag, sizeof tag, "process kind=\"%s\"", kind);
      open_el(g, tag);
      if (chance(g, 60)) {
        const char *pattern = PICK(g, patterns);
        if (g->kernel_rules && uses_dax && !strcmp(pattern, "zipf")) pattern = "random";
        leaf(g, "pattern", "%s", pattern);
      }
      if (count > 1 || chance(g, 30)) leaf(g, "count", "%" PRIu64, count);
      /* The default working set (16 MiB) may not fit: written whenever it counts. */
      if (uses_ws || mem < 16 * MIB || chance(g, 30)) put_size(g, "working-set", ws);
      if (chance(g, 40))
        leaf(g, "zipf-s", "%" PRIu64 ".%03" PRIu64, between(g, 0, 2), between(g, 0, 999));
      if (chance(g, 60)) leaf(g, "ops", "%" PRIu64, log_between(g, 0, 100000));
      else if (chance(g, 30)) leaf(g, "ops", "unlimited");
      if (chance(g, 50)) leaf(g, "compute-per-op", "%" PRIu64, log_between(g, 0, 5000));
      close_el(g, "process");
    }
    close_el(g, "workload");
  }

  /* The platform smoke scenario replaces the guest: now and then. */
  if (chance(g, 8)) {
    open_el(g, "smoke");
    put_duration(g, "timer-period", log_between(g, 1 * US, 1 * MS));
    leaf(g, "device-requests", "%" PRIu64, between(g, 0, 200));
    put_duration(g, "request-interval", log_between(g, 1 * US, 1 * MS));
    close_el(g, "smoke");
  }
  /* limits: the host-seconds safety net is always there. */
  open_el(g, "limits");
  put_duration(g, "max-sim-time", sim_ns);
  if (chance(g, 30)) leaf(g, "max-guest-instructions", "%" PRIu64, log_between(g, 1, 20000000));
  else if (chance(g, 20)) leaf(g, "max-guest-instructions", "unlimited");
  leaf(g, "max-host-seconds", "%" PRIu64, between(g, 20, 30));
  if (chance(g, 30)) put_duration(g, "measure-from", between(g, 0, sim_ns - 1));
  if (chance(g, 30)) {
    /* RAM + window must fit; the rest is the trace buffer's: mostly roomy, sometimes
     * small enough to end the run (a limit hit is an outcome). */
    uint64_t fixed = mem + (dax ? window : 0);
    uint64_t share = chance(g, 70) ? between(g, 1, 256) * MIB : log_between(g, 0, 256 * KIB);
    if (!g->kernel_rules && chance(g, 50)) fixed = between(g, 1, fixed / PAGE) * PAGE - PAGE, share = 0;
    put_size(g, "max-host-memory", fixed + share);
  } else if (chance(g, 20)) {
    leaf(g, "max-host-memory", "unlimited");
  }
  close_el(g, "limits");
  fputs("</apfsim>\n", g->f);
}

static bool parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (!*s || *s == '-' || *end || errno) return false;
  *out = v;
  return true;
}

static bool write_histogram(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/soak.hist", dir);
  FILE *f = fopen(path, "w");
  if (!f) return false;
  fputs("# apfsim-soakgen: a histogram file for configs that read one\n"
        "20us 5\n50us 120\n80us 3100\n\n120us 610   # tail\n1ms 4\n",
        f);
  return fclose(f) == 0;
}

int main(int argc, char **argv) {
  uint64_t seed, first, count, max_sim_ns = 5 * MS;
  if ((argc != 5 && argc != 6) || !parse_u64(argv[1], &seed) || !parse_u64(argv[2], &first) ||
      !parse_u64(argv[3], &count) || (argc == 6 && (!parse_u64(argv[5], &max_sim_ns) || max_sim_ns < 25))) {
    fprintf(stderr, "usage: apfsim-soakgen SEED FIRST COUNT DIR [MAX_SIM_NS]\n"
                    "writes DIR/soak-SEED-<i>.xml for i in [FIRST, FIRST+COUNT) and "
                    "DIR/soak.hist;\nMAX_SIM_NS (default 5000000) bounds each run's simulated time\n");
    return 2;
  }
  const char *dir = argv[4];
  if (!write_histogram(dir)) {
    fprintf(stderr, "apfsim-soakgen: %s/soak.hist: %s\n", dir, strerror(errno));
    return 1;
  }
  for (uint64_t i = first; i < first + count; i++) {
    char name[64], path[4096];
    snprintf(name, sizeof name, "soak/%" PRIu64, i);
    snprintf(path, sizeof path, "%s/soak-%" PRIu64 "-%05" PRIu64 ".xml", dir, seed, i);
    struct gen g = {.f = fopen(path, "w"), .max_sim_ns = max_sim_ns};
    if (!g.f) {
      fprintf(stderr, "apfsim-soakgen: %s: %s\n", path, strerror(errno));
      return 1;
    }
    rng_stream_init(&g.r, seed, name);
    g.kernel_rules = !chance(&g, 10);
    gen_config(&g, i);
    if (fclose(g.f) != 0) {
      fprintf(stderr, "apfsim-soakgen: %s: write failed\n", path);
      return 1;
    }
  }
  return 0;
}
