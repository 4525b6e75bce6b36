/* window.c — what the injection-window explorer (tools/apfsim/cmd_explore.c, docs/explorer.md)
 * needs of a running machine: a hook at the n-th trace event of a vCPU (the window's anchor),
 * where the explorer forks one child per injection point, the report of where each planned
 * NMI landed, and an end of the run earlier than limits/max-sim-time (each child's horizon).
 *
 * Not for: forking, judging outcomes or printing (the explorer), planning NMIs (nmi_plan.c). */
#include <string.h>

#include "machine_internal.h"

void machine_set_window_hook(struct machine *m, const struct machine_window_hook *h) {
  memset(&m->window, 0, sizeof m->window);
  if (!h) return;
  m->window.hook = *h;
  m->window.armed = true;
}

void machine_window_event(struct machine *m, int cpu, const char *name) {
  struct machine_window *w = &m->window;
  if (!w->armed || cpu < 0 || (unsigned)cpu != w->hook.vcpu || (unsigned)cpu >= m->n) return;
  if (strcmp(w->hook.event, name) || ++w->seen != w->hook.nth) return;
  w->armed = false; /* once: a child inherits a disarmed hook */
  struct mvcpu *c = &m->cpu[cpu];
  const uint64_t t_ps = mv_local_ps(m, c);
  if (w->hook.at_anchor(w->hook.ctx, m, t_ps, vcpu_retired(c->v)))
    machine_end(m, t_ps, OUTCOME_TIMEOUT, "stopped at the explorer's window anchor (%s number %u on vCPU %u)",
                w->hook.event, w->hook.nth, w->hook.vcpu);
}

/* Where a queued NMI is taken: at rip, unless an exception is still queued (an NMI planned
 * at the very count of an APF delivery): the exception is delivered first and the NMI taken
 * at its handler's first instruction (docs/guest.md §4, k = 0). The APF's own #PF (or #VE)
 * is the only exception the platform queues; its gate is read from the IDT, which the
 * kernel keeps in identity-mapped memory (gva = gpa). */
static uint64_t landing_rip(struct machine *m, struct vcpu *v, uint64_t rip) {
  if (!vcpu_exception_pending(v)) return rip;
  const unsigned vector = m->cfg->guest.not_present_delivery == NOT_PRESENT_VE ? 20 : 14;
  struct vcpu_sregs s;
  vcpu_get_sregs(v, &s);
  const uint64_t gate = s.idt_base + vector * 16u;
  if ((uint64_t)vector * 16u + 15 > s.idt_limit || gate > m->ram_bytes - 16) return rip;
  const uint8_t *g = m->mem + gate;
  uint64_t lo = (uint64_t)g[0] | (uint64_t)g[1] << 8, mid = (uint64_t)g[6] | (uint64_t)g[7] << 8, hi = 0;
  for (int b = 0; b < 4; b++) hi |= (uint64_t)g[8 + b] << (8 * b);
  return lo | mid << 16 | hi << 32;
}

void machine_window_nmi(struct machine *m, unsigned vcpu, uint64_t rip, uint64_t retired) {
  if (!m->window.hook.nmi_landed || vcpu >= m->n) return;
  m->window.hook.nmi_landed(m->window.hook.ctx, m, vcpu, landing_rip(m, m->cpu[vcpu].v, rip), retired);
}

void machine_set_run_end(struct machine *m, uint64_t end_ps) {
  if (!end_ps) end_ps = 1; /* 0 means "none" below */
  if (!m->window.end_ps || end_ps < m->window.end_ps) m->window.end_ps = end_ps;
  if (m->window.end_ps < m->limit_ps) m->limit_ps = m->window.end_ps; /* bounds every horizon */
  /* A vCPU waiting for ever (no timer, no I/O) must still see the end: machine_vcpu_wake_ps
   * includes it, and the kick makes its caller ask again. */
  for (unsigned i = 0; m->io.kick && i < m->n; i++) m->io.kick(m->io.ctx, i, m->window.end_ps);
}

uint64_t machine_window_end_ps(const struct machine *m) { return m->window.end_ps ? m->window.end_ps : MACHINE_NEVER; }

bool machine_window_end_due(struct machine *m, uint64_t now_ps) {
  if (!m->window.end_ps || now_ps < m->window.end_ps || m->ended) return false;
  /* at the time seen (a vCPU may finish its last instruction just past the end): the
   * trace never goes back in time */
  machine_time_limit(m, now_ps, false);
  return true;
}
