/* measure.c — the summary's measurement window (limits/measure-from; docs/platform.md
 * "Summary", section `window`): the counters a sweep compares, taken over
 * [measure-from, end of the run) so the warm-up before it (boot, the first faults of a
 * cold working set) does not dilute a rate.
 *
 * The window's start adds no event to the simulation: any wake-up of its own would
 * reorder the SystemC processes that wake at one instant (its timed-event queue breaks
 * ties by its heap's shape), and with it how vCPUs interleave, so a run with a window
 * would not be the run without. The start counts are taken at the first vCPU slice that
 * starts at or after limits/measure-from — within one slice (machine/quantum-instructions)
 * of it; other vCPUs may be up to a slice further — and from_ns says when. The counters
 * are differences of the run's own cumulative counters: nothing is counted twice, and a
 * window from 0 equals the whole run.
 *
 * Not for: the run's cumulative summary (summary.c), ending the run (guest_io.c). */
#include <stdlib.h>
#include <string.h>

#include "machine_internal.h"

static const char *const window_keys[] = {"from_ns",        "to_ns",         "ops",          "ops_per_sec",
                                          "instructions",   "not_present",   "page_ready",   "sync_faults",
                                          "vcpu_halted_ns", "vcpu_blocked_ns"};
#define N_WINDOW_KEYS (sizeof window_keys / sizeof *window_keys)

/* Cumulative counters at one instant. */
struct window_counts {
  uint64_t ops, instructions, not_present, page_ready, sync_faults, halted_ps, blocked_ps;
};

struct machine_measure {
  uint64_t from_ps;
  bool taken;
  struct window_counts start;
  uint64_t row[N_WINDOW_KEYS];
};

/* Time spent in state s up to at_ps, counting a wait still under way. */
static uint64_t in_state_ps(const struct mvcpu *c, enum mv_state s, uint64_t done, uint64_t at_ps) {
  return c->state == s && at_ps > c->since_ps ? done + (at_ps - c->since_ps) : done;
}

static void count(const struct machine *m, uint64_t at_ps, struct window_counts *w) {
  memset(w, 0, sizeof *w);
  for (unsigned k = 0; k < (unsigned)m->layout.n_processes; k++) {
    struct apfsim_proc_stats ps;
    if (machine_read_proc(m, k, &ps)) w->ops += ps.ops_done;
  }
  w->instructions = m->instructions;
  for (unsigned i = 0; i < m->n; i++) {
    const struct mvcpu *c = &m->cpu[i];
    w->sync_faults += c->sync_faults;
    w->halted_ps += in_state_ps(c, MV_HALTED, c->halted_ps, at_ps);
    w->blocked_ps += in_state_ps(c, MV_BLOCKED, c->blocked_ps, at_ps);
  }
  machine_apf_totals(m, &w->not_present, &w->page_ready);
}

bool machine_measure_setup(struct machine *m, struct diag *err) {
  struct machine_measure *w = calloc(1, sizeof *w);
  if (!w) return diag_set(err, "out of memory");
  w->from_ps = m->cfg->limits.measure_from_ns * PS_PER_NS;
  /* A window from 0 is the whole run: its start counts are all zero, and taking them now
   * adds no timed event (a run without a warm-up keeps its trace). */
  w->taken = w->from_ps == 0;
  m->measure = w;
  return true;
}

void machine_measure_destroy(struct machine *m) {
  free(m->measure);
  m->measure = NULL;
}

void machine_measure_due(struct machine *m, uint64_t now_ps) {
  struct machine_measure *w = m->measure;
  if (!w || w->taken || now_ps < w->from_ps) return;
  w->taken = true;
  w->from_ps = now_ps; /* the instant the counts are read */
  count(m, now_ps, &w->start);
  trace_event(m->trace, now_ps / PS_PER_NS, TRACE_CPU_HOST, "measure_start", "ops %llu instructions %llu",
              (unsigned long long)w->start.ops, (unsigned long long)w->start.instructions);
}

bool machine_measure_section(struct machine *m, struct report_section *out) {
  struct machine_measure *w = m->measure;
  if (!w || !w->taken) return false; /* the run ended before the window began */
  struct window_counts end;
  count(m, m->end_ps, &end);
  const uint64_t from_ns = w->from_ps / PS_PER_NS, to_ns = m->end_ps / PS_PER_NS;
  const uint64_t ops = end.ops - w->start.ops;
  const uint64_t row[N_WINDOW_KEYS] = {from_ns,
                                       to_ns,
                                       ops,
                                       report_ops_per_sec(ops, to_ns - from_ns),
                                       end.instructions - w->start.instructions,
                                       end.not_present - w->start.not_present,
                                       end.page_ready - w->start.page_ready,
                                       end.sync_faults - w->start.sync_faults,
                                       (end.halted_ps - w->start.halted_ps) / PS_PER_NS,
                                       (end.blocked_ps - w->start.blocked_ps) / PS_PER_NS};
  memcpy(w->row, row, sizeof row);
  *out = (struct report_section){"window", window_keys, N_WINDOW_KEYS, w->row, 1, false};
  return true;
}
