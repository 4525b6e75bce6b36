/* run.c — running vCPUs in slices of simulated time, and the vCPU callbacks that need
 * the platform: TSC, RDRAND, interrupt acknowledge, cost accounting, the x2APIC MSRs and
 * IPI routing. docs/platform.md "Timing" states the rules implemented here.
 * Not for: port writes and outcomes (guest_io.c), host faults (host.c). */
#include <string.h>

#include "machine_internal.h"

__extension__ typedef unsigned __int128 u128;

/* ---------- local time ---------- */

uint64_t mv_local_ps(const struct machine *m, const struct mvcpu *c) {
  uint64_t dc = vcpu_cycles(c->v) - c->base_cycles;
  return c->base_ps + (uint64_t)((u128)dc * PS_PER_US / m->mhz);
}

void mv_rebase(struct machine *m, struct mvcpu *c, uint64_t now_ps) {
  (void)m;
  c->base_ps = now_ps;
  c->base_cycles = vcpu_cycles(c->v);
}

uint64_t machine_vcpu_local_ps(const struct machine *m, unsigned i) { return mv_local_ps(m, &m->cpu[i]); }

struct mvcpu *mv_of(void *machine, struct vcpu *v) { return &((struct machine *)machine)->cpu[vcpu_id(v)]; }

/* Cycles from `from` to `to` (ps), rounded up so the vCPU stops at the first instruction
 * boundary at or after `to` when an instruction takes whole cycles. */
static uint64_t cycles_between(const struct machine *m, uint64_t from, uint64_t to) {
  if (to <= from) return 0;
  u128 c = ((u128)(to - from) * m->mhz + PS_PER_US - 1) / PS_PER_US;
  return c > UINT64_MAX / 1000 ? UINT64_MAX / 1000 : (uint64_t)c;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static uint64_t timer_ps(const struct mvcpu *c) {
  uint64_t t = lapic_next_timer_ns(&c->apic);
  return t == LAPIC_NO_TIMER || t > UINT64_MAX / PS_PER_NS ? MACHINE_NEVER : t * PS_PER_NS;
}

void mv_update_irq_line(struct mvcpu *c) {
  c->irq_line = lapic_pending_vector(&c->apic) >= 0;
  vcpu_set_irq_line(c->v, c->irq_line);
}

/* Timer expiries up to local time t: each one that raised the timer vector is traced at
 * the instant the vCPU noticed it (its `due_ns` is when it was due: the two differ by
 * less than an instruction while the vCPU runs — tests/machine pin that). */
static void advance_apic(struct machine *m, struct mvcpu *c, uint64_t t_ps) {
  uint64_t due = lapic_next_timer_ns(&c->apic);
  uint64_t irqs = c->apic.stat_timer_irqs;
  lapic_advance(&c->apic, t_ps / PS_PER_NS);
  if (c->apic.stat_timer_irqs != irqs && due != LAPIC_NO_TIMER) {
    c->timer_due_ns = due;
    trace_event(m->trace, t_ps / PS_PER_NS, (int)c->id, "apic_timer", "due_ns %llu", (unsigned long long)due);
  }
}

uint64_t machine_horizon_ps(const struct machine *m, unsigned i, uint64_t now_ps) {
  const struct mvcpu *c = &m->cpu[i];
  uint64_t h = now_ps > MACHINE_NEVER - m->quantum_ps ? MACHINE_NEVER : now_ps + m->quantum_ps;
  h = min_u64(h, timer_ps(c));
  h = min_u64(h, machine_next_timed_event_ps(m));
  h = min_u64(h, machine_fetches_next_ps(m)); /* a page-ready lands at its read's completion */
  h = min_u64(h, machine_nmi_next_ps(m, c));  /* a periodic NMI plan */
  return min_u64(h, m->limit_ps);
}

static uint64_t vcpu_wake_ps(const struct machine *m, unsigned i);

uint64_t machine_vcpu_wake_ps(const struct machine *m, unsigned i) {
  const uint64_t w = vcpu_wake_ps(m, i), end = machine_window_end_ps(m);
  return m->ended || w < end ? w : end; /* the explorer's run end (window.c) wakes every vCPU */
}

static uint64_t vcpu_wake_ps(const struct machine *m, unsigned i) {
  const struct mvcpu *c = &m->cpu[i];
  if (m->ended) return MACHINE_NEVER;
  switch (c->state) {
    case MV_RUNNING: return 0;
    /* a page-cache read has a known completion: the vCPU wakes itself there */
    case MV_BLOCKED: return c->io_ready ? 0 : machine_dax_wake_ps(m, c->fault_gpa >> 12);
    case MV_HALTED:
    case MV_APF_HALTED: break;
  }
  if (c->apf_kicked) return 0; /* completed APF work: a guest HLT or a synthetic halt ends */
  if (vcpu_nmi_pending(c->v) && !vcpu_nmi_blocked(c->v)) return 0;
  if (machine_nmi_due_now(m, c)) return 0;
  uint64_t w = min_u64(timer_ps(c), machine_nmi_next_ps(m, c));
  for (unsigned k = 0; k < c->n_ipis; k++) w = min_u64(w, c->ipis[k].at_ps);
  return w;
}

/* ---------- IPIs ---------- */

static const char *ipi_mode_word(enum lapic_delivery_mode d) {
  switch (d) {
    case LAPIC_DM_FIXED: return "fixed";
    case LAPIC_DM_LOWEST_PRIORITY: return "lowest_priority";
    case LAPIC_DM_SMI: return "smi";
    case LAPIC_DM_NMI: return "nmi";
    case LAPIC_DM_INIT: return "init";
    case LAPIC_DM_STARTUP: return "startup";
  }
  return "reserved";
}

/* Another vCPU's IPI waits in the target's queue until the target's next slice starts
 * at or after the send time: where the target is in its own slice when the sender runs
 * depends only on simulated time, never on which thread SystemC ran first. */
static void queue_ipi(struct machine *m, struct mvcpu *t, uint64_t at_ps, uint8_t vector, bool nmi) {
  for (unsigned k = 0; k < t->n_ipis; k++)
    if (t->ipis[k].vector == vector && t->ipis[k].nmi == nmi) return; /* coalesces, as in IRR */
  if (t->n_ipis == MACHINE_MAX_PENDING_IPIS) {
    trace_event(m->trace, at_ps / PS_PER_NS, TRACE_CPU_HOST, "ipi_dropped", "dest %u vector %#x", t->id, vector);
    return;
  }
  t->ipis[t->n_ipis++] = (struct pending_ipi){at_ps, vector, nmi};
  if (m->io.kick) m->io.kick(m->io.ctx, t->id, at_ps);
}

static void deliver_ipis(struct machine *m, struct mvcpu *c, uint64_t now_ps) {
  unsigned kept = 0;
  for (unsigned k = 0; k < c->n_ipis; k++) {
    struct pending_ipi p = c->ipis[k];
    if (p.at_ps > now_ps) {
      c->ipis[kept++] = p;
      continue;
    }
    c->ipis_received++;
    if (p.nmi) {
      vcpu_queue_nmi(c->v);
      c->nmis_injected++;
    } else {
      lapic_accept(&c->apic, p.vector);
    }
    trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "ipi_recv", "vector %#x mode %s sent_ns %llu", p.vector,
                p.nmi ? "nmi" : "fixed", (unsigned long long)(p.at_ps / PS_PER_NS));
  }
  c->n_ipis = kept;
}

/* Returns true when the sender's run must stop (it targeted itself). */
static bool route_ipi(struct machine *m, struct mvcpu *from, const struct lapic_ipi *ipi, uint64_t now_ps) {
  bool self = false;
  for (unsigned j = 0; j < m->n; j++) {
    struct mvcpu *t = &m->cpu[j];
    if (!lapic_ipi_targets(ipi, &t->apic)) continue;
    trace_event(m->trace, now_ps / PS_PER_NS, (int)from->id, "ipi_send", "dest %u vector %#x mode %s", j, ipi->vector,
                ipi_mode_word(ipi->mode));
    if (ipi->mode != LAPIC_DM_FIXED && ipi->mode != LAPIC_DM_NMI) continue; /* INIT/SIPI/SMI: traced only */
    if (t == from) {
      if (ipi->mode == LAPIC_DM_NMI) {
        vcpu_queue_nmi(t->v);
        t->nmis_injected++;
      } else {
        lapic_accept(&t->apic, ipi->vector);
      }
      self = true;
    } else {
      queue_ipi(m, t, now_ps, ipi->vector, ipi->mode == LAPIC_DM_NMI);
    }
  }
  return self;
}

/* ---------- x2APIC MSRs (0x1B, 0x800-0x8FF) ---------- */

static enum vcpu_msr_result apic_read(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value) {
  struct machine *m = ctx;
  struct mvcpu *c = mv_of(m, v);
  return lapic_rdmsr(&c->apic, msr, mv_local_ps(m, c) / PS_PER_NS, value) == LAPIC_MSR_OK ? VCPU_MSR_OK
                                                                                            : VCPU_MSR_GP;
}

static enum vcpu_msr_result apic_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  struct machine *m = ctx;
  struct mvcpu *c = mv_of(m, v);
  const uint64_t now_ps = mv_local_ps(m, c);
  struct lapic_ipi ipi;
  advance_apic(m, c, now_ps);
  if (lapic_wrmsr(&c->apic, msr, value, now_ps / PS_PER_NS, &ipi) != LAPIC_MSR_OK) return VCPU_MSR_GP;
  bool stop = ipi.valid && route_ipi(m, c, &ipi, now_ps);
  /* The run was bounded by the timer as it was: an earlier expiry needs a new bound. */
  uint64_t t = timer_ps(c);
  if (t < c->slice_horizon_ps) {
    c->slice_horizon_ps = t;
    stop = true;
  }
  /* An interrupt that became deliverable mid-run (EOI of a higher one, a self IPI) is
   * seen by the vCPU at the boundary after this instruction only if the run ends here. */
  const bool was = c->irq_line;
  mv_update_irq_line(c);
  if (c->irq_line && !was) stop = true;
  return stop ? VCPU_MSR_EXIT : VCPU_MSR_OK;
}

bool machine_register_apic_msrs(struct machine *m, struct diag *err) {
  const struct vcpu_msr_handler base = {.name = "IA32_APIC_BASE", .first = LAPIC_MSR_APIC_BASE,
                                        .last = LAPIC_MSR_APIC_BASE, .read = apic_read, .write = apic_write,
                                        .ctx = m};
  const struct vcpu_msr_handler x2apic = {.name = "x2APIC", .first = LAPIC_MSR_X2APIC_FIRST,
                                          .last = LAPIC_MSR_X2APIC_LAST, .read = apic_read, .write = apic_write,
                                          .ctx = m};
  return vcpu_msr_register(m->msrs, &base, err) && vcpu_msr_register(m->msrs, &x2apic, err);
}

/* ---------- other vCPU callbacks ---------- */

/* TSC = local time x tsc_khz: every vCPU's TSC is 0 at time 0 and counts at the same
 * rate (an invariant, synchronized TSC). */
static uint64_t cb_tsc(void *ctx, struct vcpu *v) {
  struct machine *m = ctx;
  return (uint64_t)((u128)mv_local_ps(m, mv_of(m, v)) * m->tsc_khz / UINT64_C(1000000000));
}

static bool cb_random(void *ctx, struct vcpu *v, bool seed, uint64_t *value) {
  (void)seed; /* RDSEED and RDRAND draw from the same seeded stream */
  *value = rng_next_u64(&mv_of(ctx, v)->rdrand);
  return true;
}

static int cb_irq_ack(void *ctx, struct vcpu *v) {
  struct machine *m = ctx;
  struct mvcpu *c = mv_of(m, v);
  if (lapic_pending_vector(&c->apic) < 0) {
    mv_update_irq_line(c);
    return -1;
  }
  const uint8_t vector = lapic_acknowledge(&c->apic);
  mv_update_irq_line(c);
  c->interrupts++;
  const uint64_t t = mv_local_ps(m, c) / PS_PER_NS;
  if (vector == (c->apic.lvt[LAPIC_LVT_TIMER_IDX] & 0xffu)) {
    c->timer_interrupts++;
    trace_event(m->trace, t, (int)c->id, "interrupt", "vector %#x timer_due_ns %llu", vector,
                (unsigned long long)c->timer_due_ns);
  } else {
    trace_event(m->trace, t, (int)c->id, "interrupt", "vector %#x", vector);
  }
  return vector;
}

static void cb_account(void *ctx, struct vcpu *v, enum vcpu_cost_kind kind, uint64_t cycles) {
  (void)cycles;
  if (kind == VCPU_COST_EXIT_ENTRY) mv_of(ctx, v)->vm_exits++;
}

void machine_install_callbacks(struct machine *m) {
  m->plat = (struct vcpu_platform){.ctx = m,
                                   .tsc = cb_tsc,
                                   .random = cb_random,
                                   .port_out = machine_port_out,
                                   .irq_ack = cb_irq_ack,
                                   .account = cb_account};
}

/* ---------- slices ---------- */

static void show(struct machine *m, struct mvcpu *c, uint64_t t_ps, enum mv_shown now, uint64_t gpa) {
  static const char *const words[] = {"none", "user", "kernel", "halted", "blocked", "halted"};
  if (now == c->shown) return;
  c->shown = now;
  if (now == SHOWN_APF_HALTED) /* KVM's synthetic halt (docs/trace-format.md) */
    trace_event(m->trace, t_ps / PS_PER_NS, (int)c->id, "vcpu_state", "state halted reason apf_halt");
  else if (now == SHOWN_BLOCKED)
    trace_event(m->trace, t_ps / PS_PER_NS, (int)c->id, "vcpu_state", "state blocked gpa %#llx",
                (unsigned long long)gpa);
  else
    trace_event(m->trace, t_ps / PS_PER_NS, (int)c->id, "vcpu_state", "state %s", words[now]);
}

void mv_show_state(struct machine *m, struct mvcpu *c, uint64_t t_ps, uint64_t gpa) {
  if (c->state == MV_HALTED || c->state == MV_APF_HALTED) {
    show(m, c, t_ps, c->state == MV_HALTED ? SHOWN_HALTED : SHOWN_APF_HALTED, 0);
  } else if (c->state == MV_BLOCKED) {
    show(m, c, t_ps, SHOWN_BLOCKED, gpa);
  } else {
    struct vcpu_sregs s;
    vcpu_get_sregs(c->v, &s);
    show(m, c, t_ps, s.cpl == 3 ? SHOWN_USER : SHOWN_KERNEL, 0);
  }
}

static void end_at_instruction_limit(struct machine *m, uint64_t at_ps) {
  machine_end(m, at_ps, OUTCOME_TIMEOUT, "the guest instruction limit (%llu, limits/max-guest-instructions) was reached",
              (unsigned long long)m->max_instructions);
}

/* Resumes a waiting vCPU at now_ps; false if it must keep waiting. */
static bool resume(struct machine *m, struct mvcpu *c, uint64_t now_ps) {
  switch (c->state) {
    case MV_BLOCKED:
      if (!c->io_ready) return false;
      c->blocked_ps += now_ps > c->since_ps ? now_ps - c->since_ps : 0;
      c->io_ready = false;
      c->state = MV_RUNNING;
      mv_rebase(m, c, now_ps);
      mv_show_state(m, c, now_ps, 0);
      return true;
    case MV_HALTED:
      /* its cycles stood still while halted: local time jumps to now */
      mv_rebase(m, c, now_ps);
      return true;
    case MV_APF_HALTED:
      /* KVM's synthetic halt ends on an interrupt, an NMI or completed APF work; the
       * caller brought its IPIs and timer up to now first */
      if (!machine_apf_halt_ends(m, c)) return false;
      c->apf_halted_ps += now_ps > c->since_ps ? now_ps - c->since_ps : 0;
      c->state = MV_RUNNING;
      mv_rebase(m, c, now_ps);
      mv_show_state(m, c, now_ps, 0);
      return true;
    case MV_RUNNING:
      /* a caller that let time pass without running it (the first slice) */
      if (mv_local_ps(m, c) != now_ps) mv_rebase(m, c, now_ps);
      return true;
  }
  return false;
}

static void handle_exit(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, uint64_t at_ps,
                        bool *keep_running) {
  char sym[160];
  *keep_running = false;
  switch (ex->reason) {
    case VCPU_EXIT_QUANTUM:
    case VCPU_EXIT_REQUEST:
      *keep_running = true;
      return;
    case VCPU_EXIT_WATCH: /* an at-symbol NMI plan's address: its NMI lands before that instruction */
      machine_nmi_watch_hit(m, c, ex->watch, at_ps);
      *keep_running = true;
      return;
    case VCPU_EXIT_HLT:
      return; /* the caller decides between "still asleep" and "just halted" */
    case VCPU_EXIT_EPT_VIOLATION:
      *keep_running = machine_ept_violation(m, c, ex);
      return;
    case VCPU_EXIT_TRIPLE_FAULT:
      guest_image_symbolize(m->img, ex->rip, sym, sizeof sym);
      machine_end(m, at_ps, OUTCOME_TRIPLE_FAULT, "vCPU %u shut down (triple fault) at rip %#llx (%s): %s", c->id,
                  (unsigned long long)ex->rip, sym, ex->message);
      return;
    case VCPU_EXIT_SHUTDOWN:
      machine_end(m, at_ps, OUTCOME_TRIPLE_FAULT, "vCPU %u is shut down: %s", c->id, ex->message);
      return;
    case VCPU_EXIT_INTERNAL_ERROR:
      guest_image_symbolize(m->img, ex->rip, sym, sizeof sym);
      machine_fail(m, at_ps, "vCPU %u at rip %#llx (%s): %s", c->id, (unsigned long long)ex->rip, sym, ex->message);
      return;
  }
}

bool machine_vcpu_run(struct machine *m, unsigned i, uint64_t now_ps, uint64_t horizon_ps, struct machine_step *step) {
  memset(step, 0, sizeof *step);
  step->next = MACHINE_VCPU_STOPPED;
  struct mvcpu *c = &m->cpu[i];
  if (!m->ended) {
    machine_deliver_due(m, now_ps);
    machine_measure_due(m, now_ps);
  }
  if (m->ended) return !m->failed;
  const enum mv_state entered = c->state;
  if (entered == MV_APF_HALTED) {
    deliver_ipis(m, c, now_ps);
    advance_apic(m, c, now_ps);
    mv_update_irq_line(c);
    machine_nmi_due(m, c, now_ps); /* an NMI ends a synthetic halt too */
  }
  if (!resume(m, c, now_ps)) {
    c->apf_kicked = false;
    step->next = entered == MV_APF_HALTED ? MACHINE_VCPU_HALTED : MACHINE_VCPU_BLOCKED;
    return true;
  }
  c->apf_kicked = false;
  if (c->state == MV_RUNNING) mv_show_state(m, c, now_ps, 0);
  deliver_ipis(m, c, now_ps);
  advance_apic(m, c, now_ps);
  mv_update_irq_line(c);
  /* The caller's horizon may predate this call's APIC catch-up: bound it again. */
  uint64_t own = machine_horizon_ps(m, i, now_ps);
  c->slice_horizon_ps = horizon_ps > now_ps ? min_u64(horizon_ps, own) : own;

  bool asleep = entered == MV_HALTED; /* until the vCPU runs or takes an event */
  for (bool first = true; !m->ended; first = false) {
    const uint64_t before = mv_local_ps(m, c);
    if (!first && before >= c->slice_horizon_ps) break;
    advance_apic(m, c, before);
    mv_update_irq_line(c);

    uint64_t budget = cycles_between(m, before, c->slice_horizon_ps);
    uint64_t fit = budget * 1000 / m->cpi_milli; /* whole instructions in the budget */
    uint64_t cap = UINT64_MAX;
    if (m->max_instructions) cap = m->max_instructions > m->instructions ? m->max_instructions - m->instructions : 0;
    if (cap == 0) {
      end_at_instruction_limit(m, before);
      break;
    }
    /* KVM presents completed APF work (page-ready) before every guest entry. */
    machine_apf_service(m, c, before);
    /* An NMI plan's count: inject at it, and never run past the next one. */
    machine_nmi_due(m, c, before);
    const uint64_t nmi_cap = machine_nmi_cap(m, c);
    if (nmi_cap < cap) cap = nmi_cap;
    struct vcpu_exit ex;
    if (fit == 0 || fit > cap)
      vcpu_run(c->v, fit == 0 ? 1 : cap, &ex); /* at least one instruction: progress past the horizon */
    else
      vcpu_run_cycles(c->v, budget, &ex);
    const uint64_t after = mv_local_ps(m, c);
    m->instructions += ex.instructions;
    c->instructions += ex.instructions;
    step->instructions += ex.instructions;
    if (ex.instructions) c->faults_without_progress = 0;

    if (ex.reason == VCPU_EXIT_HLT && asleep && ex.cycles == 0) {
      step->next = MACHINE_VCPU_HALTED; /* nothing woke it: it never left the HLT */
      return true;
    }
    if (asleep) {
      /* an interrupt or NMI woke it: its handler runs in the kernel from now */
      asleep = false;
      c->halted_ps += now_ps - c->since_ps;
      c->state = MV_RUNNING;
      show(m, c, now_ps, SHOWN_KERNEL, 0);
    }
    c->run_ps += after - before;
    bool keep;
    handle_exit(m, c, &ex, after, &keep);
    machine_race_look(m, c, after);
    if (ex.reason == VCPU_EXIT_HLT) {
      c->state = MV_HALTED;
      c->since_ps = after;
      trace_event(m->trace, after / PS_PER_NS, (int)c->id, "kvm_exit", "reason hlt rip %#llx",
                  (unsigned long long)ex.rip);
      mv_show_state(m, c, after, 0);
      break;
    }
    /* user/kernel is sampled where the vCPU stops: exits and slice ends */
    if (c->state == MV_RUNNING) mv_show_state(m, c, after, 0);
    if (!keep) break;
    if (m->max_instructions && m->instructions >= m->max_instructions) end_at_instruction_limit(m, after);
  }
  const uint64_t local = mv_local_ps(m, c);
  step->consumed_ps = local > now_ps ? local - now_ps : 0;
  machine_apf_observe(m, c, local > now_ps ? local : now_ps);
  machine_race_watch(m, local > now_ps ? local : now_ps);
  if (m->ended)
    step->next = MACHINE_VCPU_STOPPED;
  else if (c->state == MV_HALTED || c->state == MV_APF_HALTED)
    step->next = MACHINE_VCPU_HALTED;
  else if (c->state == MV_BLOCKED) {
    step->next = MACHINE_VCPU_BLOCKED;
    step->blocked_on.gpa = c->fault_gpa;
    step->blocked_on.during_delivery = c->fault_during_delivery;
  }
  else
    step->next = MACHINE_VCPU_RUNNABLE;
  return !m->failed;
}
