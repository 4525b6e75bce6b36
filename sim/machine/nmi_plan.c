/* nmi_plan.c — the configuration's NMI injection plans (race/nmi, issue 7 item 1): an NMI on
 * a vCPU at an exact retired-instruction count, `offset` instructions after the n-th trace
 * event of the APF engine on that vCPU, right before a guest symbol+offset on its n-th
 * execution by that vCPU, or at the times of a seeded Poisson process.
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
 * at-symbol plans: symbol+offset is checked at setup (inside the symbol, in the kernel's
 * text, on an instruction boundary) and, once the vCPUs exist, watched on the plan's vCPU
 * (vcpu_watch: one code hook on that address, installed before the guest runs, no
 * translation-cache flush). On the nth execution the vCPU stops right before the
 * instruction and the NMI is queued there, so it is taken at that boundary whatever the
 * quantum; an execution before the vCPU is online injects when it is (as above).
 *
 * Not for: deciding races or outcomes (the guest's NMI handler and the verdicts), NMIs that
 * IPIs send (run.c). */
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "machine_internal.h"

struct nmi_run {
  const struct nmi_plan *p;
  unsigned index;   /* 1-based, as race/nmi[K] */
  bool done;
  uint64_t target;  /* retired count to inject at; UINT64_MAX: not known yet */
  uint32_t seen;    /* after-event: events counted */
  uint64_t next_ps; /* periodic: the next NMI's time */
  struct rng rng;   /* periodic: stream "nmi-planK" */
  uint64_t watch_addr; /* at-symbol: symbol+offset */
  int watch;           /* at-symbol: its vcpu_watch id; -1 before machine_nmi_arm */
};

#define MACHINE_NMI_MAX_ADDED 4

struct machine_nmi {
  struct nmi_run *v;
  size_t n;
  uint64_t injected;
  struct nmi_plan added[MACHINE_NMI_MAX_ADDED]; /* machine_nmi_add_at's */
  size_t n_added;
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

/* at-symbol: symbol+offset, checked to be inside the symbol, in the kernel's text and on
 * an instruction boundary — decoded linearly from the symbol's start, as the kernel's
 * functions hold no data. A plan that could never fire (or would fire mid-instruction,
 * where no CPU stops) is bad input naming race/nmi[K]/symbol or /offset. */
static bool at_symbol_address(const struct machine *m, const struct nmi_plan *p, const char *field, uint64_t *out,
                              struct diag *err) {
  const char *path = m->cfg->source_path;
  char fsym[80], foff[80];
  snprintf(fsym, sizeof fsym, "%s/symbol", field);
  snprintf(foff, sizeof foff, "%s/offset", field);
  uint64_t addr, size;
  struct diag d = {{0}};
  if (!guest_image_resolve(m->img, p->symbol, &addr, &d)) return diag_at(err, path, 0, fsym, "%s", d.msg);
  if (!guest_image_lookup(m->img, p->symbol, &addr, &size))
    return diag_at(err, path, 0, fsym, "'%s' is not a symbol of %s", p->symbol, m->img->name);
  const uint64_t off = p->offset;
  bool inside;
  if (size) {
    inside = off < size;
  } else { /* an asm label without .size: up to the next symbol */
    uint64_t into;
    const struct guest_symbol *s = off < UINT64_MAX - addr ? guest_image_symbol_at(m->img, addr + off, &into) : NULL;
    inside = s && s->addr == addr;
  }
  if (!inside)
    return diag_at(err, path, 0, foff, "%#llx is outside %s (%#llx, %llu bytes)", (unsigned long long)off, p->symbol,
                   (unsigned long long)addr, (unsigned long long)size);
  const uint64_t target = addr + off;
  uint64_t ranges[MACHINE_MAX_TEXT_RANGES][2];
  size_t n = guest_image_text_ranges(m->img, ranges, MACHINE_MAX_TEXT_RANGES);
  bool text = false;
  for (size_t k = 0; k < n && k < MACHINE_MAX_TEXT_RANGES; k++) text |= ranges[k][0] <= target && target < ranges[k][1];
  if (!text || target >= m->ram_bytes)
    return diag_at(err, path, 0, fsym, "%s+%#llx (%#llx) is not in the kernel's text", p->symbol,
                   (unsigned long long)off, (unsigned long long)target);
  csh cs;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) return diag_set(err, "cannot open the disassembler");
  cs_insn *insn = cs_malloc(cs);
  const uint8_t *code = m->mem + addr;
  size_t left = (size_t)(m->ram_bytes - addr < off + 16 ? m->ram_bytes - addr : off + 16);
  uint64_t at = addr;
  while (at < target && insn && cs_disasm_iter(cs, &code, &left, &at, insn)) {
  }
  if (insn) cs_free(insn, 1);
  cs_close(&cs);
  if (at != target)
    return diag_at(err, path, 0, foff, "%s+%#llx (%#llx) is not on an instruction boundary (decoding %s from its "
                   "start %s at %#llx)", p->symbol, (unsigned long long)off, (unsigned long long)target, p->symbol,
                   at > target ? "passes it" : "stops", (unsigned long long)at);
  *out = target;
  return true;
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
    r->watch = -1;
    char field[64];
    snprintf(field, sizeof field, "race/nmi[%u]", r->index);
    switch (r->p->trigger) {
      case NMI_AT_INSTRUCTION:
        r->target = r->p->at_instruction;
        break;
      case NMI_AFTER_EVENT:
        break;
      case NMI_AT_SYMBOL:
        if (!at_symbol_address(m, r->p, field, &r->watch_addr, err)) return false;
        break;
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
  machine_window_nmi(m, c->id, regs.rip, vcpu_retired(c->v));
  machine_race_nmi(m, c, regs.rip, t_ps);
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

bool machine_nmi_arm(struct machine *m, struct diag *err) {
  for (size_t k = 0; m->nmi && k < m->nmi->n; k++) {
    struct nmi_run *r = &m->nmi->v[k];
    if (r->p->trigger != NMI_AT_SYMBOL || r->watch >= 0) continue;
    r->watch = vcpu_watch(m->cpu[r->p->vcpu].v, r->watch_addr, r->p->nth, err);
    if (r->watch < 0) return false;
  }
  return true;
}

void machine_nmi_watch_hit(struct machine *m, struct mvcpu *c, int watch, uint64_t t_ps) {
  for (size_t k = 0; m->nmi && k < m->nmi->n; k++) {
    struct nmi_run *r = &m->nmi->v[k];
    if (!r->done && r->p->trigger == NMI_AT_SYMBOL && r->p->vcpu == c->id && r->watch == watch)
      r->target = vcpu_retired(c->v); /* the count right before the watched instruction */
  }
  machine_nmi_due(m, c, t_ps);
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
  machine_window_event(m, cpu, name);
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

/* The explorer's run-time plans (window.c's callers): kept in `added`, which never moves,
 * so that their runs can point at them like at the configuration's plans. */
bool machine_nmi_add_at(struct machine *m, unsigned vcpu, uint64_t retired) {
  if (!m->nmi && !(m->nmi = calloc(1, sizeof *m->nmi))) return false;
  struct machine_nmi *x = m->nmi;
  if (x->n_added == MACHINE_NMI_MAX_ADDED) return false;
  struct nmi_run *v = realloc(x->v, (x->n + 1) * sizeof *v);
  if (!v) return false;
  x->v = v;
  struct nmi_plan *p = &x->added[x->n_added++];
  memset(p, 0, sizeof *p);
  p->trigger = NMI_AT_INSTRUCTION;
  p->vcpu = vcpu;
  p->at_instruction = retired;
  p->nth = 1;
  struct nmi_run *r = &x->v[x->n];
  memset(r, 0, sizeof *r);
  r->p = p;
  r->index = (unsigned)++x->n;
  r->target = retired;
  r->next_ps = MACHINE_NEVER;
  return true;
}

uint64_t machine_nmi_injected(const struct machine *m) { return m->nmi ? m->nmi->injected : 0; }
