/* apf_glue.c — the host's APF engine (sim/apf, docs/apf.md) wired into the machine:
 * it decides, the machine carries out. The engine's ops become
 *
 *   now_ns             the time of the call in progress (a vCPU's local time, or the
 *                      completion time of a read)
 *   read/write_u32     guest RAM (the shared areas are pinned, so always resident)
 *   vcpu_state         IF/shadow, queued exception, re-injection, CPL (sim/cpu)
 *   inject_pf/_ve      vcpu_queue_exception (#PF error code + CR2 = token; #VE)
 *   raise_irq          lapic_accept + the INTR line
 *   fetch              recorded during apf_fault; the fault handler then blocks the vCPU
 *                      (a synchronous fault) or starts the read with nobody waiting
 *   halt               the synthetic halt (MV_APF_HALTED): no guest code until an
 *                      interrupt, an NMI or completed APF work
 *   kick               wakes a halted vCPU (guest HLT or synthetic) through io.kick
 *   shared_area        ept_pin / ept_unpin (reclaim never evicts what the host writes)
 *   trace              trace_event: the engine's events are named after KVM's tracepoints
 *
 * and the machine calls apf_fault on EPT violations that need a read (or hit an
 * unresolvable page), apf_fetch_done when a read completes, apf_vcpu_service before every
 * guest entry. EFAULT ends the run (efault_exit); ERROR_EXCEPTION is a #VE page error when
 * the guest's #VE area takes it, else the EFAULT exit too.
 * Not for: the APF rules (sim/apf), the reads' timing (fetches.c and the device). */
#include <stdlib.h>
#include <string.h>

#include "apf/apf.h"
#include "machine_internal.h"

/* The engine's copy of the guest's #VE ABI must be the guest's (docs/guest.md §1.10). */
_Static_assert(APF_MSR_VE_INFO == MSR_APFSIM_VE_INFO, "#VE MSR");
_Static_assert(APF_VE_INFO_ENABLE == APFSIM_VE_INFO_ENABLE && APF_VE_INFO_NOT_PRESENT == APFSIM_VE_INFO_NOT_PRESENT &&
                   APF_VE_INFO_PAGE_ERROR == APFSIM_VE_INFO_PAGE_ERROR && APF_VE_INFO_RESERVED == APFSIM_VE_INFO_RESERVED,
               "#VE MSR bits");
_Static_assert(APF_VE_BUSY == APFSIM_VE_BUSY && APF_VE_REASON_NOT_PRESENT == APFSIM_VE_REASON_NOT_PRESENT &&
                   APF_VE_REASON_PAGE_ERROR == APFSIM_VE_REASON_PAGE_ERROR,
               "#VE reasons");
_Static_assert(APF_VE_AREA_BUSY == offsetof(struct apfsim_ve_info, busy) &&
                   APF_VE_AREA_TOKEN == offsetof(struct apfsim_ve_info, token) &&
                   APF_VE_AREA_GVA == offsetof(struct apfsim_ve_info, gva) &&
                   APF_VE_AREA_GPA == offsetof(struct apfsim_ve_info, gpa) &&
                   APF_VE_AREA_ACCESS == offsetof(struct apfsim_ve_info, access) &&
                   APF_VE_AREA_BYTES == sizeof(struct apfsim_ve_info),
               "#VE area layout");
_Static_assert(APF_VE_ACCESS_WRITE == APFSIM_VE_ACCESS_WRITE && APF_VE_ACCESS_FETCH == APFSIM_VE_ACCESS_FETCH &&
                   APF_VE_ACCESS_USER == APFSIM_VE_ACCESS_USER,
               "#VE access bits");

struct machine_apf {
  struct apf_engine *e;
  struct apf_engine_config cfg;
  uint64_t now_ps;
  /* the fault being decided: what the engine asked of `fetch` and `halt` */
  bool fetch_asked, fetch_blocks, halt_asked;
  /* Unresolvable gfns whose async get-page failed while nobody was told (no synchronous
   * outcome since): how many times in a row. Few at a time (a truncation loop holds its
   * task on one gfn), so a list. */
  struct failing_gfn {
    uint64_t gfn;
    uint32_t count;
  } *failing;
  size_t n_failing, cap_failing;
  /* summary storage: one row per vCPU */
  uint64_t *rows;
  /* what the guest's process statistics said at the last look (machine_apf_observe) */
  struct seen_task {
    uint64_t token;         /* apf_token */
    uint64_t woken_token;   /* token of a wake whose resume is still to be seen */
    uint64_t switches_in;   /* at that wake */
  } *seen;
  size_t n_seen;
};

/* ---------- ops ---------- */

static uint64_t op_now_ns(void *ctx) { return ((struct machine *)ctx)->apf->now_ps / PS_PER_NS; }

static bool op_read_u32(void *ctx, uint64_t gpa, uint32_t *value) {
  struct machine *m = ctx;
  if (gpa > m->ram_bytes - 4) return false;
  const uint8_t *p = m->mem + gpa;
  *value = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  return true;
}

static bool op_write_u32(void *ctx, uint64_t gpa, uint32_t value) {
  struct machine *m = ctx;
  if (gpa > m->ram_bytes - 4) return false;
  uint8_t *p = m->mem + gpa;
  for (unsigned k = 0; k < 4; k++) p[k] = (uint8_t)(value >> (8 * k));
  return true;
}

static void op_vcpu_state(void *ctx, unsigned vcpu, struct apf_vcpu_state *out) {
  struct vcpu *v = ((struct machine *)ctx)->cpu[vcpu].v;
  struct vcpu_sregs s;
  vcpu_get_sregs(v, &s);
  out->interrupts_allowed = !vcpu_interrupts_blocked(v);
  out->exception_pending = vcpu_exception_pending(v);
  out->event_reinjecting = vcpu_event_reinjecting(v);
  out->cpl = s.cpl;
}

static void op_inject_pf(void *ctx, unsigned vcpu, uint32_t error_code, uint64_t cr2) {
  vcpu_queue_exception(((struct machine *)ctx)->cpu[vcpu].v, 14, error_code, cr2);
}

static void op_inject_ve(void *ctx, unsigned vcpu) {
  vcpu_queue_exception(((struct machine *)ctx)->cpu[vcpu].v, APF_VE_VECTOR, VCPU_NO_ERROR_CODE, 0);
}

static void op_raise_irq(void *ctx, unsigned vcpu, uint8_t vector) {
  struct mvcpu *c = &((struct machine *)ctx)->cpu[vcpu];
  lapic_accept(&c->apic, vector);
  mv_update_irq_line(c);
}

static void op_fetch(void *ctx, unsigned vcpu, uint64_t gfn, bool vcpu_blocks) {
  (void)vcpu, (void)gfn; /* always the fault being decided: machine_apf_fault acts on it */
  struct machine_apf *a = ((struct machine *)ctx)->apf;
  a->fetch_asked = true;
  a->fetch_blocks = vcpu_blocks;
}

static void op_halt(void *ctx, unsigned vcpu) {
  (void)vcpu;
  ((struct machine *)ctx)->apf->halt_asked = true;
}

static void op_kick(void *ctx, unsigned vcpu, bool interrupt_running) {
  /* A running vCPU reaches apf_vcpu_service at its next entry; completions are run at
   * slice starts or between slices (fetches.c), never inside another vCPU's run, so
   * there is no run to cut short here. */
  (void)interrupt_running;
  struct machine *m = ctx;
  m->cpu[vcpu].apf_kicked = true;
  if (m->io.kick) m->io.kick(m->io.ctx, vcpu, m->apf->now_ps);
}

static void op_shared_area(void *ctx, unsigned vcpu, uint64_t gpa, bool in_use) {
  struct machine *m = ctx;
  struct diag d = {{0}};
  if (!(in_use ? ept_pin(m->ept, gpa >> 12, &d) : ept_unpin(m->ept, gpa >> 12, &d)))
    machine_fail(m, m->apf->now_ps, "vCPU %u: %s the APF area at %#llx: %s", vcpu, in_use ? "pinning" : "unpinning",
                 (unsigned long long)gpa, d.msg);
}

static void op_trace(void *ctx, uint64_t time_ns, int cpu, const char *name, const char *fields) {
  trace_event(((struct machine *)ctx)->trace, time_ns, cpu, name, "%s", fields);
  machine_nmi_event(ctx, cpu, name); /* after-event NMI plans count the engine's events */
}

/* ---------- MSRs ---------- */

/* The engine's MSR handlers, with one thing apf_register_vcpu_msrs cannot know: a write
 * that raised the page-ready vector (ACK, EN's wake-all) or queued a #PF (2010) must end
 * the run after the instruction, or the vCPU would not see the event until its slice
 * ends (as run.c's x2APIC writes do). */
static enum vcpu_msr_result msr_read(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value) {
  struct machine *m = ctx;
  return apf_msr_read(m->apf->e, vcpu_id(v), msr, value) == APF_MSR_OK ? VCPU_MSR_OK : VCPU_MSR_GP;
}

static enum vcpu_msr_result msr_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  struct machine *m = ctx;
  struct mvcpu *c = mv_of(m, v);
  m->apf->now_ps = mv_local_ps(m, c);
  const bool line = c->irq_line, exc = vcpu_exception_pending(v);
  if (apf_msr_write(m->apf->e, c->id, msr, value) != APF_MSR_OK) return VCPU_MSR_GP;
  if ((c->irq_line && !line) || (!exc && vcpu_exception_pending(v))) return VCPU_MSR_EXIT;
  return VCPU_MSR_OK;
}

static bool register_msr(struct machine *m, const struct apf_msr_spec *s, struct diag *err) {
  const struct vcpu_msr_handler h = {.name = s->name, .first = s->msr, .last = s->msr,
                                     .write_reserved = s->write_reserved, .pv_feature = s->pv_feature,
                                     .read = msr_read, .write = msr_write, .ctx = m};
  return vcpu_msr_register(m->msrs, &h, err);
}

/* ---------- set-up ---------- */

bool machine_apf_setup(struct machine *m, struct diag *err) {
  struct machine_apf *a = calloc(1, sizeof *a);
  if (!a) return diag_set(err, "out of memory");
  m->apf = a;
  apf_engine_config_from(&a->cfg, &m->cfg->apf, &m->cfg->host, m->n);
  const struct apf_host_ops ops = {.ctx = m,
                                   .now_ns = op_now_ns,
                                   .read_u32 = op_read_u32,
                                   .write_u32 = op_write_u32,
                                   .vcpu_state = op_vcpu_state,
                                   .inject_pf = op_inject_pf,
                                   .raise_irq = op_raise_irq,
                                   .fetch = op_fetch,
                                   .halt = op_halt,
                                   .kick = op_kick,
                                   .prefault = NULL, /* the page is RESIDENT once ept_complete_fetch ran */
                                   .shared_area = op_shared_area,
                                   .inject_ve = op_inject_ve,
                                   .trace = op_trace};
  a->e = apf_engine_create(&a->cfg, &ops, err);
  if (!a->e) return false;
  struct apf_msr_spec specs[APF_N_MSRS + 1];
  size_t n = apf_msr_specs(a->e, specs);
  if (apf_ve_msr_spec(a->e, &specs[n])) n++;
  for (size_t k = 0; k < n; k++)
    if (!register_msr(m, &specs[k], err)) return false;
  return true;
}

void machine_apf_destroy(struct machine *m) {
  if (!m->apf) return;
  apf_engine_destroy(m->apf->e);
  free(m->apf->seen);
  free(m->apf->failing);
  free(m->apf->rows);
  free(m->apf);
  m->apf = NULL;
}

uint32_t machine_apf_kvm_features(const struct machine *m) { return m->apf->cfg.kvm_features; }

bool machine_apf_async(const struct machine *m) { return m->apf && m->apf->cfg.async_pf; }

struct apf_engine *machine_apf_engine(const struct machine *m) { return m->apf ? m->apf->e : NULL; }

/* ---------- the fault, completions, entries ---------- */

static void efault(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                   uint64_t now_ps) {
  if (f->dax)
    machine_dax_efault(m, c, ex, f, now_ps); /* names the file offset and the truncate */
  else
    machine_efault_exit(m, c, ex, f, now_ps);
}

static void forget_failing(struct machine_apf *a, uint64_t gfn) {
  for (size_t k = 0; k < a->n_failing; k++)
    if (a->failing[k].gfn == gfn) {
      a->failing[k] = a->failing[--a->n_failing];
      return;
    }
}

/* "task pid 1 (dax-read)": the process running on c, as the guest's statistics say. */
static void running_task(const struct machine *m, const struct mvcpu *c, char *buf, size_t len) {
  for (unsigned k = 0; k < (unsigned)m->layout.n_processes; k++) {
    struct apfsim_proc_stats ps;
    if (machine_read_proc(m, k, &ps) && ps.state == APFSIM_PROC_RUNNING && ps.last_vcpu == c->id) {
      snprintf(buf, len, "task pid %u (%s)", ps.pid, workload_kind_word(ps.kind));
      return;
    }
  }
  snprintf(buf, len, "no task");
}

static const char *reporting_word(enum apf_error_reporting r) {
  switch (r) {
    case APF_ERR_NONE: return "none, as mainline";
    case APF_ERR_PAGE_READY: return "page-ready";
    case APF_ERR_FORCE_SYNC: return "force-sync";
    case APF_ERR_SYNC_EXCEPTION: return "sync-exception";
  }
  return "?";
}

/* An async fault on an unresolvable gfn whose get-page will fail: the mainline host sends
 * page-ready all the same, the guest retries, faults again — the truncation loop. After
 * apf/livelock-faults of them in a row the run is a livelock. True: the run ended. */
static bool failing_async(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                          uint64_t now_ps) {
  struct machine_apf *a = m->apf;
  struct failing_gfn *g = NULL;
  for (size_t k = 0; k < a->n_failing && !g; k++)
    if (a->failing[k].gfn == f->gfn) g = &a->failing[k];
  if (!g) {
    if (a->n_failing == a->cap_failing) {
      const size_t cap = a->cap_failing ? 2 * a->cap_failing : 8;
      struct failing_gfn *grown = realloc(a->failing, cap * sizeof *grown);
      if (!grown) {
        machine_fail(m, now_ps, "out of memory");
        return true;
      }
      a->failing = grown;
      a->cap_failing = cap;
    }
    g = &a->failing[a->n_failing++];
    *g = (struct failing_gfn){f->gfn, 0};
  }
  const uint32_t limit = m->cfg->apf.livelock_faults;
  if (++g->count < limit || !limit) return false;
  char sym[160], task[64], where[96] = "", why[240];
  guest_image_symbolize(m->img, ex->rip, sym, sizeof sym);
  running_task(m, c, task, sizeof task);
  struct vcpu_sregs sr;
  vcpu_get_sregs(c->v, &sr);
  if (f->dax) {
    snprintf(where, sizeof where, "; virtiofs DAX window, file offset %#llx", (unsigned long long)f->file_offset);
    machine_dax_why_lost(m, f, now_ps, why, sizeof why);
  } else {
    ept_describe_fault(f, why, sizeof why);
  }
  trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "apf_livelock", "gfn %#llx faults %u rip %#llx sym %s",
              (unsigned long long)f->gfn, g->count, (unsigned long long)ex->rip, sym);
  machine_end(m, now_ps, OUTCOME_LIVELOCK, "vCPU %u took %u async page fault%s in a row on gpa %#llx (gfn %#llx%s), "
              "the last at rip %#llx = %s (%s) in %s: each async get-page failed (%s), and page-ready only woke the "
              "task to retry the access (apf/error-reporting %s), which faulted again, for ever "
              "(apf/livelock-faults %u)",
              c->id, g->count, g->count == 1 ? "" : "s", (unsigned long long)ex->ept.gpa, (unsigned long long)f->gfn,
              where, (unsigned long long)ex->rip, sym, sr.cpl == 3 ? "user mode" : "kernel mode", task, why,
              reporting_word(m->cfg->apf.error_reporting), limit);
  return true;
}

bool machine_apf_fault(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                       uint64_t now_ps) {
  struct machine_apf *a = m->apf;
  a->now_ps = now_ps;
  a->fetch_asked = a->fetch_blocks = a->halt_asked = false;
  const bool unresolvable = f->kind == EPT_FAULT_UNRESOLVABLE;
  const struct apf_fault af = {.gpa = ex->ept.gpa, .gva = ex->ept.gva, .during_delivery = ex->ept.during_delivery,
                               .unresolvable = unresolvable, .write = ex->ept.access == VCPU_ACCESS_WRITE,
                               .fetch = ex->ept.access == VCPU_ACCESS_FETCH};
  struct apf_decision dec;
  const uint64_t ve_before = apf_vcpu_stats(a->e, c->id)->ve_not_present;
  apf_fault(a->e, c->id, &af, &dec);
  if (m->failed) return false;
  if (dec.outcome == APF_OUTCOME_ASYNC)
    machine_race_not_present(m, c, dec.token, ex->ept.gva, apf_vcpu_stats(a->e, c->id)->ve_not_present != ve_before,
                             now_ps);
  if (unresolvable) {
    /* a synchronous outcome tells the VMM or the guest: the loop, if any, is broken */
    if (dec.outcome != APF_OUTCOME_ASYNC && dec.outcome != APF_OUTCOME_HALT) forget_failing(a, f->gfn);
    else if (a->fetch_asked && failing_async(m, c, ex, f, now_ps)) return false;
  }
  switch (dec.outcome) {
    case APF_OUTCOME_SYNC:
      if (f->kind == EPT_FAULT_DAX) {
        machine_dax_start_read(m, c, ex, f, now_ps, true); /* c BLOCKED on the page-cache read */
        return false;
      }
      return machine_block_on_fetch(m, c, ex, f, now_ps);
    case APF_OUTCOME_EFAULT:
      efault(m, c, ex, f, now_ps);
      return false;
    case APF_OUTCOME_ERROR_EXCEPTION:
      if (apf_ve_page_error(a->e, c->id, &af)) return true; /* the #VE is queued: the guest's fixup runs */
      efault(m, c, ex, f, now_ps);
      return false;
    case APF_OUTCOME_ASYNC:
    case APF_OUTCOME_HALT:
      break;
  }
  /* The read in the background: a new one for a swapped page or a page-cache miss,
   * nothing for one in flight (another fault started it), a failure for a page that
   * cannot come in. */
  if (a->fetch_asked) {
    if (unresolvable && f->dax)
      machine_dax_fail_read(m, f, now_ps); /* a timed event: runs even when every vCPU waits */
    else if (unresolvable)
      machine_fetch_fail(m, f->gfn, now_ps);
    else if (f->kind == EPT_FAULT_SWAP_IN && !machine_fetch_start(m, f->gfn, EPT_NO_VCPU, now_ps))
      return false;
    else if (f->kind == EPT_FAULT_DAX && !machine_dax_start_read(m, c, ex, f, now_ps, false))
      return false;
  }
  if (dec.outcome == APF_OUTCOME_ASYNC) return !m->ended; /* the #PF / #VE is queued: run on */
  /* Synthetic halt: the faulting instruction is retried once the halt ends. */
  c->state = MV_APF_HALTED;
  c->since_ps = now_ps;
  mv_show_state(m, c, now_ps, 0);
  return false;
}

void machine_apf_fetch_done(struct machine *m, uint64_t gfn, bool failed, uint64_t now_ps) {
  if (!m->apf || m->ended) return;
  m->apf->now_ps = now_ps;
  apf_fetch_done(m->apf->e, gfn, failed);
}

void machine_apf_service(struct machine *m, struct mvcpu *c, uint64_t now_ps) {
  if (!m->apf) return;
  m->apf->now_ps = now_ps;
  apf_vcpu_service(m->apf->e, c->id);
}

bool machine_apf_halt_ends(struct machine *m, struct mvcpu *c) {
  if (c->apf_kicked || apf_vcpu_has_events(m->apf->e, c->id)) return true;
  /* KVM's kvm_vcpu_has_events: an interrupt it can take (IF was 1 when it halted and
   * cannot have changed), or an NMI. */
  return lapic_pending_vector(&c->apic) >= 0 || (vcpu_nmi_pending(c->v) && !vcpu_nmi_blocked(c->v));
}

/* ---------- the guest's side, as its statistics show it ---------- */

void machine_apf_observe(struct machine *m, struct mvcpu *c, uint64_t t_ps) {
  struct machine_apf *a = m->apf;
  if (!a || !a->cfg.async_pf || m->failed) return;
  const size_t n = (size_t)m->layout.n_processes;
  if (!a->seen) {
    a->seen = calloc(n ? n : 1, sizeof *a->seen);
    if (!a->seen) return;
    a->n_seen = n;
  }
  for (size_t k = 0; k < a->n_seen; k++) {
    struct apfsim_proc_stats ps;
    if (!machine_read_proc(m, (unsigned)k, &ps)) continue;
    struct seen_task *st = &a->seen[k];
    const uint64_t t = t_ps / PS_PER_NS;
    /* scheduled in since its wake (it may already be asleep again on another token) */
    if (st->woken_token && ps.switches_in != st->switches_in &&
        (ps.state == APFSIM_PROC_RUNNING || ps.apf_token != st->token)) {
      trace_event(m->trace, t, (int)c->id, "apf_resume", "token %#llx pid %u vcpu %u",
                  (unsigned long long)st->woken_token, ps.pid, ps.last_vcpu);
      st->woken_token = 0;
    }
    if (ps.apf_token != st->token) {
      if (st->token) {
        trace_event(m->trace, t, (int)c->id, "apf_wake", "token %#llx pid %u", (unsigned long long)st->token,
                    ps.pid);
        st->woken_token = st->token;
        st->switches_in = ps.switches_in;
      }
      if (ps.apf_token)
        trace_event(m->trace, t, (int)c->id, "apf_wait", "token %#llx pid %u", (unsigned long long)ps.apf_token,
                    ps.pid);
      st->token = ps.apf_token;
    }
  }
}

/* ---------- summary ---------- */

static const char *const apf_keys[] = {
    "vcpu",           "faults",          "sync_faults",     "synthetic_halts", "repeated_faults",
    "not_present",    "page_ready",      "page_ready_suppressed", "page_ready_deferred", "orphan_page_ready",
    "wake_all",       "acks",            "outstanding",     "outstanding_peak", "ve_not_present",
    "ve_page_errors", "ve_refused",      "apf_halted_ns",   "guest_not_present", "guest_page_ready",
    "guest_sleeps",   "guest_halt_waits", "dummy_created",  "dummy_consumed",  "dummy_dropped",
    "failed_reads",   "page_error_reports", "forced_sync",  "efaults",         "guest_page_errors",
    "guest_efault_fixups", "guest_sigbus_kills"};
#define N_APF_KEYS (sizeof apf_keys / sizeof *apf_keys)

static uint64_t waited(const struct machine *m, const struct mvcpu *c) {
  return c->state == MV_APF_HALTED && m->end_ps > c->since_ps ? c->apf_halted_ps + (m->end_ps - c->since_ps)
                                                               : c->apf_halted_ps;
}

void machine_apf_totals(const struct machine *m, uint64_t *not_present, uint64_t *page_ready) {
  *not_present = *page_ready = 0;
  if (!m->apf) return;
  struct apf_stats t;
  apf_total_stats(m->apf->e, &t);
  *not_present = t.not_present;
  *page_ready = t.page_ready;
}

void machine_apf_summary(struct machine *m, struct run_summary *s) {
  struct machine_apf *a = m->apf;
  if (!a) return;
  free(a->rows);
  a->rows = calloc(m->n, N_APF_KEYS * sizeof *a->rows);
  uint64_t dummies = 0;
  for (unsigned i = 0; i < m->n; i++) {
    const struct apf_stats *st = apf_vcpu_stats(a->e, i);
    struct apfsim_vcpu_stats gs;
    struct diag d;
    if (!guest_read_vcpu_stats(m->img, m->mem, m->ram_bytes, i, &gs, &d)) memset(&gs, 0, sizeof gs);
    /* The guest's count: a page-ready that found no sleeper (a wake before the wait, or
     * a 2010 orphan) left one. */
    dummies += gs.apf_dummy_created;
    struct vcpu_summary *vs = &m->vsum[i];
    vs->apf_not_present = st->not_present;
    vs->apf_page_ready = st->page_ready;
    vs->synthetic_halts = st->synthetic_halts;
    const uint64_t row[N_APF_KEYS] = {
        i, st->faults, st->sync_faults, st->synthetic_halts, st->repeated_faults, st->not_present, st->page_ready,
        st->page_ready_suppressed, st->page_ready_deferred, st->orphan_page_ready, st->wake_all, st->acks,
        st->outstanding, st->outstanding_peak, st->ve_not_present, st->ve_page_errors, st->ve_refused,
        waited(m, &m->cpu[i]) / PS_PER_NS, gs.apf_not_present, gs.apf_page_ready, gs.apf_sleeps, gs.apf_halt_waits,
        gs.apf_dummy_created, gs.apf_dummy_consumed, gs.apf_dummy_dropped, st->failed, st->error_reports,
        st->forced_sync, st->efaults, gs.apf_page_errors, gs.efault_fixups, gs.sigbus_kills};
    if (a->rows) memcpy(a->rows + (size_t)i * N_APF_KEYS, row, sizeof row);
  }
  struct apf_stats t;
  apf_total_stats(a->e, &t);
  s->apf.not_present = t.not_present;
  s->apf.page_ready = t.page_ready;
  s->apf.synthetic_halts = t.synthetic_halts;
  s->apf.wake_all = t.wake_all;
  s->apf.dummy_nodes = dummies;
  s->apf.outstanding = t.outstanding;
  if (a->rows && s->n_sections < sizeof m->sections / sizeof *m->sections) {
    m->sections[s->n_sections] = (struct report_section){"apf_vcpu", apf_keys, N_APF_KEYS, a->rows, m->n, true};
    s->sections = m->sections;
    s->n_sections++;
  }
}
