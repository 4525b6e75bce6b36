/* summary.c — the run summary (sim/report) from the machine's counters and the guest's
 * own statistics arrays: per vCPU, per process, the synchronous fault latencies and the
 * host's memory work. Keys are documented in docs/platform.md "Summary".
 * Not for: the verdict text (guest_io.c) or the swap device's section (the binding). */
#include <stdlib.h>
#include <string.h>

#include "machine_internal.h"

__extension__ typedef unsigned __int128 u128;

static const char *const proc_keys[] = {"pid", "kind", "ops", "ops_target", "exited", "demand_faults",
                                        "cpu_ns", "switches_in", "syscalls", "last_vcpu", "efaults",
                                        "term_signal"};
#define N_PROC_KEYS (sizeof proc_keys / sizeof *proc_keys)

static const char *const vtime_keys[] = {"vcpu", "run_ns", "halted_ns", "blocked_ns", "guest_idle_ns", "ticks",
                                         "context_switches", "timer_interrupts", "ipis_received", "zero_fills",
                                         "sync_faults", "sync_fault_mean_ns", "sync_fault_p50_ns",
                                         "sync_fault_p99_ns", "sync_fault_max_ns"};
#define N_VTIME_KEYS (sizeof vtime_keys / sizeof *vtime_keys)

static const char *const hist_keys[] = {"vcpu", "from_ns", "to_ns", "count"};
#define N_HIST_KEYS (sizeof hist_keys / sizeof *hist_keys)

static const char *const host_keys[] = {"memory_limit_bytes", "ept_violations", "zero_fills", "page_reads",
                                        "page_reads_done", "writebacks", "evictions", "evictions_dirty",
                                        "resident_peak_pages", "scripted_evictions", "shadow_fills",
                                        "shadow_guest_faults"};
#define N_HOST_KEYS (sizeof host_keys / sizeof *host_keys)

/* TSC ticks to ns at tsc_khz (ticks x 10^6 / kHz), without overflow for any run. */
static uint64_t tsc_to_ns(const struct machine *m, uint64_t ticks) {
  return (uint64_t)((u128)ticks * 1000000u / m->tsc_khz);
}

/* Time waited up to the end of the run, counting a wait still under way. */
static uint64_t waited_ps(const struct machine *m, const struct mvcpu *c, enum mv_state s, uint64_t done) {
  return c->state == s && m->end_ps > c->since_ps ? done + (m->end_ps - c->since_ps) : done;
}

static void fill_processes(struct machine *m, uint64_t *ops_total) {
  const size_t n = (size_t)m->layout.n_processes;
  free(m->proc_rows);
  m->proc_rows = calloc(n ? n : 1, N_PROC_KEYS * sizeof *m->proc_rows);
  m->n_proc_rows = 0;
  *ops_total = 0;
  for (size_t k = 0; m->proc_rows && k < n; k++) {
    struct apfsim_proc_stats ps;
    if (!machine_read_proc(m, (unsigned)k, &ps)) continue;
    uint64_t *r = m->proc_rows + m->n_proc_rows++ * N_PROC_KEYS;
    const uint64_t row[N_PROC_KEYS] = {ps.pid,        ps.kind,         ps.ops_done,   ps.ops_target,
                                       ps.state == APFSIM_PROC_EXITED, ps.demand_faults, tsc_to_ns(m, ps.run_tsc),
                                       ps.switches_in, ps.syscalls,    ps.last_vcpu,
                                       ps.efaults,     ps.term_signal};
    memcpy(r, row, sizeof row);
    *ops_total += ps.ops_done;
  }
}

static void fill_vcpus(struct machine *m, uint64_t *sync_total) {
  free(m->vtime_rows);
  free(m->hist_rows);
  m->vtime_rows = calloc(m->n, N_VTIME_KEYS * sizeof *m->vtime_rows);
  m->hist_rows = calloc((size_t)m->n * LATENCY_HIST_OCTAVES, N_HIST_KEYS * sizeof *m->hist_rows);
  m->n_hist_rows = 0;
  *sync_total = 0;
  for (unsigned i = 0; i < m->n; i++) {
    const struct mvcpu *c = &m->cpu[i];
    struct apfsim_vcpu_stats gs;
    struct diag d;
    if (!guest_read_vcpu_stats(m->img, m->mem, m->ram_bytes, i, &gs, &d)) memset(&gs, 0, sizeof gs);
    const uint64_t halted = waited_ps(m, c, MV_HALTED, c->halted_ps);
    const uint64_t blocked = waited_ps(m, c, MV_BLOCKED, c->blocked_ps);
    m->vsum[i] = (struct vcpu_summary){
        .instructions = c->instructions,
        .vm_exits = c->vm_exits,
        .ept_violations = c->ept_violations,
        .guest_page_faults = gs.page_faults,
        .sync_faults = c->sync_faults,
        .nmis = gs.nmis,
        .interrupts = c->interrupts,
        .halted_ns = halted / PS_PER_NS,
    };
    *sync_total += c->sync_faults;
    const struct latency_hist *h = &c->sync_latency;
    const uint64_t mean = h->count ? c->sync_latency_sum_ns / h->count : 0;
    if (m->vtime_rows) {
      const uint64_t row[N_VTIME_KEYS] = {i,
                                          c->run_ps / PS_PER_NS,
                                          halted / PS_PER_NS,
                                          blocked / PS_PER_NS,
                                          tsc_to_ns(m, gs.idle_tsc),
                                          gs.ticks,
                                          gs.context_switches,
                                          c->timer_interrupts,
                                          c->ipis_received,
                                          c->zero_fills,
                                          c->sync_faults,
                                          mean,
                                          latency_hist_percentile(h, 500),
                                          latency_hist_percentile(h, 990),
                                          h->count ? h->max_ns : 0};
      memcpy(m->vtime_rows + (size_t)i * N_VTIME_KEYS, row, sizeof row);
    }
    for (unsigned k = 0; m->hist_rows && k < LATENCY_HIST_OCTAVES; k++) {
      uint64_t cnt = latency_hist_octave(h, k);
      if (!cnt) continue;
      const uint64_t from = k ? UINT64_C(1) << k : 0, to = k < 63 ? (UINT64_C(1) << (k + 1)) - 1 : UINT64_MAX;
      const uint64_t row[N_HIST_KEYS] = {i, from, to > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : to, cnt};
      memcpy(m->hist_rows + m->n_hist_rows++ * N_HIST_KEYS, row, sizeof row);
    }
  }
}

static void fill_host(struct machine *m) {
  const struct ept_stats *es = ept_stats(m->ept);
  const struct shadow_stats *ss = shadow_stats(m->shadow);
  uint64_t ept = 0, zero = 0;
  for (unsigned i = 0; i < m->n; i++) {
    ept += m->cpu[i].ept_violations;
    zero += m->cpu[i].zero_fills;
  }
  const uint64_t row[N_HOST_KEYS] = {m->cfg->host.memory_limit_bytes, ept, zero, m->fetches, m->fetches_done,
                                     m->writebacks, m->evictions, m->evictions_dirty, es->resident_peak,
                                     m->scripted_runs, ss->fills, ss->guest_faults};
  memcpy(m->host_row, row, sizeof row);
}

void machine_summary(struct machine *m, struct run_summary *s) {
  s->outcome = m->outcome;
  if (m->ended)
    snprintf(s->verdict, sizeof s->verdict, "%s", m->verdict);
  else
    snprintf(s->verdict, sizeof s->verdict, "the run has not ended");
  s->seed = m->cfg->seed;
  s->sim_time_ns = m->end_ps / PS_PER_NS;
  s->guest_instructions = m->instructions;
  uint64_t ops, sync;
  fill_processes(m, &ops);
  fill_vcpus(m, &sync);
  fill_host(m);
  s->vcpus = m->vsum;
  s->n_vcpus = m->n;
  s->apf.sync_faults = sync;
  s->workload.ops = ops;
  size_t n = 0;
  if (m->proc_rows)
    m->sections[n++] = (struct report_section){"processes", proc_keys, N_PROC_KEYS, m->proc_rows, m->n_proc_rows, true};
  if (m->vtime_rows)
    m->sections[n++] = (struct report_section){"vcpu_time", vtime_keys, N_VTIME_KEYS, m->vtime_rows, m->n, true};
  if (m->hist_rows)
    m->sections[n++] =
        (struct report_section){"sync_fault_latency", hist_keys, N_HIST_KEYS, m->hist_rows, m->n_hist_rows, true};
  m->sections[n++] = (struct report_section){"host", host_keys, N_HOST_KEYS, m->host_row, 1, false};
  if (machine_dax_section(m, &m->sections[n])) n++;
  if (machine_measure_section(m, &m->sections[n])) n++;
  s->sections = m->sections;
  s->n_sections = n;
  machine_apf_summary(m, s); /* the apf counts and the apf_vcpu section */
  s->race.nmi_injected = machine_nmi_injected(m);
  machine_race_summary(m, s);
}
