/* nmi_plan.c — the configuration's NMI injection plans (race/nmi, issue 7 item 1): an NMI on
 * a vCPU at an exact retired-instruction count, `offset` instructions after the n-th trace
 * event of the APF engine on that vCPU, or at the times of a seeded Poisson process.
 *
 * Exactness: the slice loop asks machine_nmi_cap how many instructions the vCPU may retire
 * before the next planned count and runs it with that bound (vcpu_run's exact count: no
 * translation-cache flush); when the count is reached the NMI is queued, so the vCPU takes
 * it at that instruction boundary before retiring another — whatever the quantum. A plan
 * whose count passed while the vCPU was blocked in the host (it retires nothing then) is
 * injected when it runs again, and a plan due before the guest brought the vCPU online
 * (no IDT yet) waits until it is. Periodic NMIs bound the vCPU's horizon like timers and
 * land on the first boundary at or after their time.
 *
 * Not for: deciding races or outcomes (the guest's NMI handler and the verdicts), NMIs that
 * IPIs send (run.c). at-symbol plans need a per-address execution count the vCPU does not
 * offer yet: machine_create refuses them, naming the field. */
#include <stdlib.h>
#include <string.h>

#include "machine_internal.h"

struct nmi_run {
  const struct nmi_plan *p;
  unsigned index;   /* 1-based, as race/nmi[K] */
  bool done;
  uint64_t target;  /* retired count to inject at; UINT64_MAX: not known yet */
  uint32_t seen;    /* after-event: events counted */
  uint64_t next_ps; /* periodic: the next NMI's time */
  struct rng rng;   /* periodic: stream "nmi-planK" */
};

struct machine_nmi {
  struct nmi_run *v;
  size_t n;
  uint64_t injected;
};

static const char *trigger_word(enum nmi_trigger t) {
  switch (t) {
    case NMI_AT_INSTRUCTION: return "at_instruction";
    case NMI_AFTER_EVENT: return "after_event";
    case NMI_AT_SYMBOL: return "at_symbol";
    case NMI_PERIODIC: return "periodic";
  }
  return "?";
}

bool machine_nmi_setup(struct machine *m, struct diag *err) {
  const struct race_config *rc = &m->cfg->race;
  if (!rc->n_nmi_plans) return true;
  struct machine_nmi *x = calloc(1, sizeof *x);
  if (!x || !(x->v = calloc(rc->n_nmi_plans, sizeof *x->v))) {
    free(x);
    return diag_set(err, "out of memory");
  }
  m->nmi = x;
  x->n = rc->n_nmi_plans;
  for (size_t k = 0; k < x->n; k++) {
    struct nmi_run *r = &x->v[k];
    r->p = &rc->nmi[k];
    r->index = (unsigned)k + 1;
    r->target = UINT64_MAX;
    r->next_ps = MACHINE_NEVER;
    char field[64];
    snprintf(field, sizeof field, "race/nmi[%u]", r->index);
    switch (r->p->trigger) {
      case NMI_AT_INSTRUCTION:
        r->target = r->p->at_instruction;
        break;
      case NMI_AFTER_EVENT:
        break;
      case NMI_AT_SYMBOL: {
        uint64_t addr;
        struct diag d = {{0}};
        if (!guest_image_resolve(m->img, r->p->symbol, &addr, &d))
          return diag_at(err, m->cfg->source_path, 0, field, "symbol: %s", d.msg);
        return diag_at(err, m->cfg->source_path, 0, field,
                       "trigger 'at-symbol' (%s = %#llx) is not implemented yet: it needs a per-address "
                       "execution count from the vCPU; use 'after-event' or 'at-instruction'",
                       r->p->symbol, (unsigned long long)addr);
      }
      case NMI_PERIODIC: {
        char stream[32];
        snprintf(stream, sizeof stream, "nmi-plan%u", r->index);
        rng_stream_init(&r->rng, m->cfg->seed, stream);
        r->next_ps = rng_exponential_ns(&r->rng, r->p->period_ns) * PS_PER_NS;
        break;
      }
    }
  }
  return true;
}

void machine_nmi_destroy(struct machine *m) {
  if (!m->nmi) return;
  free(m->nmi->v);
  free(m->nmi);
  m->nmi = NULL;
}

static void inject(struct machine *m, struct mvcpu *c, struct nmi_run *r, uint64_t t_ps) {
  struct vcpu_regs regs;
  vcpu_get_regs(c->v, &regs);
  vcpu_queue_nmi(c->v);
  c->nmis_injected++;
  m->nmi->injected++;
  char sym[160];
  guest_image_symbolize(m->img, regs.rip, sym, sizeof sym);
  trace_event(m->trace, t_ps / PS_PER_NS, (int)c->id, "nmi_inject", "plan %u trigger %s retired %llu rip %#llx sym %s",
              r->index, trigger_word(r->p->trigger), (unsigned long long)vcpu_retired(c->v),
              (unsigned long long)regs.rip, sym);
}

/* docs/guest.md §1.3: no NMI before the vCPU is online (it has no IDT yet: a triple
 * fault). A plan due earlier waits for it. */
static bool online(const struct machine *m, const struct mvcpu *c) {
  struct apfsim_vcpu_stats gs;
  struct diag d;
  return guest_read_vcpu_stats(m->img, m->mem, m->ram_bytes, c->id, &gs, &d) && gs.online == 1;
}

void machine_nmi_due(struct machine *m, struct mvcpu *c, uint64_t t_ps) {
  if (!m->nmi) return;
  const uint64_t retired = vcpu_retired(c->v);
  bool checked = false;
  for (size_t k = 0; k < m->nmi->n; k++) {
    struct nmi_run *r = &m->nmi->v[k];
    if (r->done || r->p->vcpu != c->id) continue;
    const bool due = r->p->trigger == NMI_PERIODIC ? r->next_ps <= t_ps : r->target <= retired;
    if (!due) continue;
    if (!checked && !online(m, c)) return;
    checked = true;
    if (r->p->trigger == NMI_PERIODIC) {
      inject(m, c, r, t_ps);
      /* The process's own times, not the landing times: they do not depend on where the
       * vCPU happened to stop. Times that passed meanwhile (one NMI is latched at most,
       * like a real NMI line) are skipped. */
      while (r->next_ps <= t_ps) r->next_ps += rng_exponential_ns(&r->rng, r->p->period_ns) * PS_PER_NS + 1;
      continue;
    }
    r->done = true;
    inject(m, c, r, t_ps);
  }
}

uint64_t machine_nmi_cap(const struct machine *m, const struct mvcpu *c) {
  uint64_t cap = UINT64_MAX;
  if (!m->nmi) return cap;
  const uint64_t retired = vcpu_retired(c->v);
  for (size_t k = 0; k < m->nmi->n; k++) {
    const struct nmi_run *r = &m->nmi->v[k];
    if (r->done || r->p->vcpu != c->id || r->target == UINT64_MAX || r->target <= retired) continue;
    if (r->target - retired < cap) cap = r->target - retired;
  }
  return cap;
}

uint64_t machine_nmi_next_ps(const struct machine *m, const struct mvcpu *c) {
  uint64_t t = MACHINE_NEVER;
  for (size_t k = 0; m->nmi && k < m->nmi->n; k++) {
    const struct nmi_run *r = &m->nmi->v[k];
    if (!r->done && r->p->vcpu == c->id && r->next_ps < t) t = r->next_ps;
  }
  return t;
}

bool machine_nmi_due_now(const struct machine *m, const struct mvcpu *c) {
  const uint64_t retired = vcpu_retired(c->v);
  for (size_t k = 0; m->nmi && k < m->nmi->n; k++) {
    const struct nmi_run *r = &m->nmi->v[k];
    if (!r->done && r->p->vcpu == c->id && r->target != UINT64_MAX && r->target <= retired) return true;
  }
  return false;
}

void machine_nmi_event(struct machine *m, int cpu, const char *name) {
  if (!m->nmi || cpu < 0 || (unsigned)cpu >= m->n) return;
  for (size_t k = 0; k < m->nmi->n; k++) {
    struct nmi_run *r = &m->nmi->v[k];
    if (r->done || r->p->trigger != NMI_AFTER_EVENT || r->p->vcpu != (unsigned)cpu || r->target != UINT64_MAX)
      continue;
    if (strcmp(r->p->event, name) || ++r->seen != r->p->nth) continue;
    const uint64_t retired = vcpu_retired(m->cpu[cpu].v);
    r->target = r->p->offset > UINT64_MAX - retired ? UINT64_MAX - 1 : retired + r->p->offset;
  }
}

uint64_t machine_nmi_injected(const struct machine *m) { return m->nmi ? m->nmi->injected : 0; }
