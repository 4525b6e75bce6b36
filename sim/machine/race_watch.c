/* race_watch.c — the host's judge of the NMI/CR2 race (issue 7, docs/race-lab.md): what
 * the host can see of it, and the waits no page-ready can ever end.
 *
 * Per vCPU it keeps the last "page not present" the host delivered (token, faulting
 * instruction, mode), whether an NMI plan fired while the guest had not handled it yet
 * (and how many instructions after the delivery), and whether the event's CR2 was
 * clobbered before the guest used it. From these the verdicts name the instruction, the
 * token and the CR2 values of a reproduced race.
 *
 * Waits: after each slice it compares every task the guest has asleep on a token
 * (apfsim_proc_stats.apf_token) and every vCPU it has halt-waiting (apf_halt_token) with
 * the host's APF engine. A wait is *lost* when the host holds no work for its token and
 * no page-ready is in the guest's hands; lost at two looks in a row and for
 * race/stuck-timeout, it ends the run (hung_task / hung_vcpu). At the time limit a wait
 * on a token the host never issued ends it whatever its length — so a run stopped at any
 * horizon is judged, not called a timeout (lost_long_enough).
 *
 * Not for: injecting NMIs (nmi_plan.c), the APF rules (sim/apf), the guest's own panic and
 * hung-task reports (guest_io.c; this file gives panics the race's sentence and ok verdicts a note). */
#include <stdarg.h>
#include <stdlib.h>

#include "apf/apf.h"
#include "machine_internal.h"

/* One waiter: a task's APF sleep or a vCPU's halt-wait. */
struct waiter {
  uint32_t token;   /* the token it waits on (0: not waiting, or not lost) */
  uint64_t since_ps; /* first look that found the wait lost */
  unsigned looks;    /* looks in a row, at distinct times, that found it lost */
  uint64_t last_ps;  /* time of the last of them */
  bool counted;      /* counted in lost_tokens */
};

struct race_vcpu {
  /* the last not-present delivered to this vCPU */
  bool delivered, user, by_ve;
  uint32_t token;
  uint64_t gva, rip, retired, at_ps;
  uint64_t host_count; /* the host's not_present count once it was delivered */
  bool open;           /* the guest has not handled it yet (its count is below host_count) */
  /* an NMI plan that fired while it was open */
  bool nmi, nmi_word_set; /* word_set: the APF word still held the reason then */
  uint64_t nmi_k, nmi_rip;
  /* its CR2 / token did not reach the guest's wait */
  bool clobbered;
  uint64_t clobber_cr2;
  struct waiter halt;
};

struct machine_race {
  struct race_vcpu *v;
  struct race_vcpu *hit; /* per vCPU: the last delivery an NMI plan hit, once a newer one came */
  struct waiter *task; /* per process, boot order */
  size_t n_task;
  uint64_t cr2_clobbered, lost_tokens, wrong_wakes;
  uint32_t *task_token; /* apf_token at the previous look (wrong-wake check) */
};

bool machine_race_setup(struct machine *m, struct diag *err) {
  struct machine_race *r = calloc(1, sizeof *r);
  if (!r) return diag_set(err, "out of memory");
  m->race = r;
  r->n_task = (size_t)m->layout.n_processes;
  r->v = calloc(m->n, sizeof *r->v);
  r->hit = calloc(m->n, sizeof *r->hit);
  r->task = calloc(r->n_task ? r->n_task : 1, sizeof *r->task);
  r->task_token = calloc(r->n_task ? r->n_task : 1, sizeof *r->task_token);
  if (!r->v || !r->hit || !r->task || !r->task_token) return diag_set(err, "out of memory");
  return true;
}

void machine_race_destroy(struct machine *m) {
  if (!m->race) return;
  free(m->race->v);
  free(m->race->hit);
  free(m->race->task);
  free(m->race->task_token);
  free(m->race);
  m->race = NULL;
}

static bool vcpu_stats(const struct machine *m, unsigned id, struct apfsim_vcpu_stats *gs) {
  struct diag d;
  return guest_read_vcpu_stats(m->img, m->mem, m->ram_bytes, id, gs, &d);
}

static void sym_of(const struct machine *m, uint64_t addr, char *buf, size_t len) {
  guest_image_symbolize(m->img, addr, buf, len);
}

/* ---------- the race's facts ---------- */

void machine_race_not_present(struct machine *m, struct mvcpu *c, uint32_t token, uint64_t gva, bool by_ve,
                              uint64_t now_ps) {
  if (!m->race) return;
  struct race_vcpu *rv = &m->race->v[c->id];
  struct vcpu_regs regs;
  struct vcpu_sregs sregs;
  vcpu_get_regs(c->v, &regs);
  vcpu_get_sregs(c->v, &sregs);
  const struct apf_stats *st = apf_vcpu_stats(machine_apf_engine(m), c->id);
  if (rv->nmi) m->race->hit[c->id] = *rv; /* the verdicts still need it */
  *rv = (struct race_vcpu){.delivered = true, .user = sregs.cpl == 3, .by_ve = by_ve, .token = token, .gva = gva,
                           .rip = regs.rip, .retired = vcpu_retired(c->v), .at_ps = now_ps,
                           .host_count = st ? st->not_present : 0, .open = true, .halt = rv->halt};
  char sym[160];
  sym_of(m, regs.rip, sym, sizeof sym);
  /* KVM's tracepoint (kvm_async_pf_not_present) marks the work, whether or not the guest
   * hears of it; this event marks the delivery, split by the mode the fault came from, so
   * that an after-event NMI plan can count exactly the deliveries a race needs. */
  const char *name = rv->user ? "apf_user_not_present" : "apf_kernel_not_present";
  trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, name, "token %#x gva %#llx rip %#llx sym %s via %s", token,
              (unsigned long long)gva, (unsigned long long)regs.rip, sym, by_ve ? "ve" : "pf");
  machine_nmi_event(m, (int)c->id, name);
}

void machine_race_nmi(struct machine *m, struct mvcpu *c, uint64_t rip, uint64_t t_ps) {
  if (!m->race) return;
  struct race_vcpu *rv = &m->race->v[c->id];
  if (!rv->delivered || !rv->open || rv->nmi) return;
  rv->nmi = true;
  rv->nmi_k = vcpu_retired(c->v) - rv->retired;
  rv->nmi_rip = rip;
  /* The APF word (offset 0 of the shared area the guest registered), little-endian. */
  struct apfsim_vcpu_stats gs;
  rv->nmi_word_set = false;
  if (!rv->by_ve && vcpu_stats(m, c->id, &gs) && gs.apf_area_gpa && gs.apf_area_gpa <= m->ram_bytes - 4) {
    const uint8_t *w = m->mem + gs.apf_area_gpa;
    rv->nmi_word_set = (w[0] | w[1] | w[2] | w[3]) != 0;
  }
  char sym[160];
  sym_of(m, rip, sym, sizeof sym);
  trace_event(m->trace, t_ps / PS_PER_NS, (int)c->id, "race_nmi_in_window", "token %#x k %llu rip %#llx sym %s word %s",
              rv->token, (unsigned long long)rv->nmi_k, (unsigned long long)rip, sym,
              rv->by_ve ? "none" : rv->nmi_word_set ? "set" : "clear");
}

static void clobbered(struct machine *m, struct mvcpu *c, struct race_vcpu *rv, uint64_t cr2, const char *how,
                      uint64_t t_ps) {
  if (rv->clobbered) return;
  rv->clobbered = true;
  rv->clobber_cr2 = cr2;
  m->race->cr2_clobbered++;
  trace_event(m->trace, t_ps / PS_PER_NS, (int)c->id, "race_cr2_clobbered", "token %#x cr2 %#llx how %s", rv->token,
              (unsigned long long)cr2, how);
}

/* A wait (task on this vCPU, or its halt-wait) on a token the host never gave out. */
static bool foreign_wait(const struct machine *m, const struct mvcpu *c, const struct apfsim_vcpu_stats *gs,
                         uint32_t *token) {
  const struct apf_engine *e = machine_apf_engine(m);
  if (gs->apf_halt_token && !apf_token_issued(e, gs->apf_halt_token)) {
    *token = gs->apf_halt_token;
    return true;
  }
  for (size_t k = 0; k < m->race->n_task; k++) {
    struct apfsim_proc_stats ps;
    if (!machine_read_proc(m, (unsigned)k, &ps) || ps.last_vcpu != c->id || !ps.apf_token) continue;
    if (!apf_token_issued(e, ps.apf_token)) {
      *token = ps.apf_token;
      return true;
    }
  }
  return false;
}

void machine_race_look(struct machine *m, struct mvcpu *c, uint64_t t_ps) {
  if (!m->race || m->failed) return;
  struct race_vcpu *rv = &m->race->v[c->id];
  /* still queued: CR2 is not the token yet */
  if (!rv->open || rv->by_ve || vcpu_exception_pending(c->v)) return;
  struct apfsim_vcpu_stats gs;
  if (!vcpu_stats(m, c->id, &gs)) return;
  if (gs.apf_not_present < rv->host_count) {
    /* Not handled yet: only a guest #PF nested in the handler can have changed CR2. */
    const uint64_t cr2 = vcpu_cr2(c->v);
    if (cr2 != rv->token) clobbered(m, c, rv, cr2, "nested_fault", t_ps);
    return;
  }
  /* Handled: the wait it started shows which token the handler took. */
  uint32_t foreign;
  if (foreign_wait(m, c, &gs, &foreign)) clobbered(m, c, rv, foreign, "wait_token", t_ps);
  rv->open = false;
}

/* ---------- sentences ---------- */

/* The delivery an NMI plan hit on vCPU i: the current one, else the last one kept. */
static const struct race_vcpu *race_of(const struct machine_race *r, unsigned i) {
  return r->v[i].nmi || !r->hit[i].nmi ? &r->v[i] : &r->hit[i];
}

/* "race reproduced on vCPU 0: APF not-present token 0x1000 (CR2 0x1000) was delivered at
 * 0x4003ea (user_main+0x26a, user mode); an NMI injected 10 instructions later at 0x10106f
 * (asm_exc_page_fault+0xf), before the handler consumed the APF reason, read the user stack
 * and faulted (CR2 0xe0bf20)" — nested_cr2 0: not known. Empty if no race on this vCPU. */
static size_t race_sentence(const struct machine *m, const struct race_vcpu *rv, unsigned id, uint64_t nested_cr2,
                            char *buf, size_t len) {
  buf[0] = '\0';
  if (!rv->delivered || !rv->nmi) return 0;
  char at[160], nmi[160];
  sym_of(m, rv->rip, at, sizeof at);
  sym_of(m, rv->nmi_rip, nmi, sizeof nmi);
  const char *when = rv->by_ve            ? "inside the #VE handler"
                     : rv->nmi_word_set ? "before the handler consumed the APF reason"
                                        : "after the handler cleared the APF reason but before it read CR2";
  size_t n = machine_appendf(buf, len, 0, "race reproduced on vCPU %u: APF not-present token %#x (CR2 %#x) was delivered at "
                     "%#llx (%s, %s mode); an NMI injected %llu instructions later at %#llx (%s), %s, read the user "
                     "stack and faulted",
                     id, rv->token, rv->token, (unsigned long long)rv->rip, at, rv->user ? "user" : "kernel",
                     (unsigned long long)rv->nmi_k, (unsigned long long)rv->nmi_rip, nmi, when);
  if (nested_cr2) n = machine_appendf(buf, len, n, " (CR2 %#llx)", (unsigned long long)nested_cr2);
  return n;
}

bool machine_race_panic_prefix(struct machine *m, struct mvcpu *c, const struct apfsim_panic_record *r, char *buf,
                               size_t len) {
  buf[0] = '\0';
  if (!m->race) return false;
  struct race_vcpu *rv = &m->race->v[c->id];
  if (!rv->delivered || !rv->nmi || !rv->open) return false;
  /* The record's CR2 is the nested fault's address when the nested #PF panicked. */
  const uint64_t now_ps = mv_local_ps(m, c);
  if (r->vector == 14 && r->cr2 != rv->token) clobbered(m, c, rv, r->cr2, "nested_fault", now_ps);
  if (!rv->clobbered) return false;
  size_t n = race_sentence(m, rv, c->id, rv->clobber_cr2, buf, len);
  machine_appendf(buf, len, n, "; the nested #PF took the APF reason: ");
  return true;
}

/* ---------- lost waits ---------- */

/* A page-ready the host delivered that the guest has not counted yet: its wake may still be
 * under way, so no wait counts as lost meanwhile. */
static bool page_ready_in_flight(const struct machine *m) {
  const struct apf_engine *e = machine_apf_engine(m);
  for (unsigned i = 0; i < m->n; i++) {
    const struct apf_stats *st = apf_vcpu_stats(e, i);
    struct apfsim_vcpu_stats gs;
    if (!st || !vcpu_stats(m, i, &gs)) continue;
    if (st->page_ready + st->wake_all_delivered > gs.apf_page_ready) return true;
  }
  return false;
}

/* Updates w for a wait on token (0: none); true if it is lost now. */
static bool track(struct machine *m, struct waiter *w, uint32_t token, bool in_flight, uint64_t t_ps) {
  const struct apf_engine *e = machine_apf_engine(m);
  const bool lost = token && !in_flight && !apf_token_pending(e, token);
  if (!lost) {
    w->token = 0;
    w->looks = 0;
    return false;
  }
  if (w->token != token) {
    *w = (struct waiter){.token = token, .since_ps = t_ps};
  } else if (w->looks && t_ps == w->last_ps) {
    /* A second look at the same instant (the last slice's, then the time limit's) sees
     * the same guest state: a wake the guest is still carrying out (page-ready handled,
     * the task not yet resumed) must not pass for a lost wait. */
    return true;
  }
  w->looks++;
  w->last_ps = t_ps;
  if (w->looks == 2 && !w->counted) {
    w->counted = true;
    m->race->lost_tokens++;
  }
  return true;
}

static void lost_trace(struct machine *m, int cpu, const char *who, unsigned id, const struct waiter *w,
                       uint64_t t_ps) {
  const bool issued = apf_token_issued(machine_apf_engine(m), w->token);
  trace_event(m->trace, t_ps / PS_PER_NS, cpu, "race_lost_token", "%s %u token %#x since_ns %llu why %s", who, id,
              w->token, (unsigned long long)(w->since_ps / PS_PER_NS), issued ? "answered" : "never_issued");
}

/* "; the page-ready for 0x1000 found no sleeper (1 dummy node left)" etc. */
static void race_tail(const struct machine *m, const struct race_vcpu *rv, unsigned id, char *buf, size_t len) {
  struct apfsim_vcpu_stats gs;
  buf[0] = '\0';
  if (!vcpu_stats(m, id, &gs)) return;
  const uint64_t left = gs.apf_dummy_created - gs.apf_dummy_consumed - gs.apf_dummy_dropped;
  if (rv->delivered && rv->clobbered && !apf_token_pending(machine_apf_engine(m), rv->token))
    snprintf(buf, len, "; the page-ready for token %#x found no sleeper (%llu dummy node%s left on vCPU %u)",
             rv->token, (unsigned long long)left, left == 1 ? "" : "s", id);
  else if (left)
    snprintf(buf, len, "; %llu dummy node%s left on vCPU %u", (unsigned long long)left, left == 1 ? "" : "s", id);
}

static void end_hung(struct machine *m, enum run_outcome o, unsigned vcpu, const char *who, const struct waiter *w,
                     uint64_t t_ps, bool at_limit) {
  const struct race_vcpu *rv = race_of(m->race, vcpu);
  char race[700] = "", tail[160], t[32], lim[32], since[32];
  const bool issued = apf_token_issued(machine_apf_engine(m), w->token);
  if (rv->clobbered) {
    size_t n = race_sentence(m, rv, vcpu, rv->clobber_cr2, race, sizeof race);
    if (n)
      machine_appendf(race, sizeof race, n, "; %s, so ",
              !rv->nmi_word_set ? "the handler then took the nested fault's CR2 as its token"
              : o == OUTCOME_HUNG_VCPU ? "the nested #PF took the APF reason and its own CR2 as the token"
                                       : "the nested #PF took the APF reason");
  }
  race_tail(m, rv, vcpu, tail, sizeof tail);
  format_ms(t_ps, t, sizeof t);
  format_ms(t_ps > w->since_ps ? t_ps - w->since_ps : 0, since, sizeof since);
  format_ms(m->cfg->race.stuck_timeout_ns * PS_PER_NS, lim, sizeof lim);
  const char *why = issued ? "whose page-ready was already delivered" : "which the host never issued";
  machine_end(m, t_ps, o, "%s%s on APF token %#x, %s (no work holds it, no page-ready is in flight): lost for %s "
              "(race/stuck-timeout %s%s) at %s%s",
              race, who, w->token, why, since, lim, at_limit ? ", judged at the time limit" : "", t, tail);
}

/* A lost wait ends the run once it has been lost at two looks and for stuck_ps (looks come
 * from every vCPU at its own local time, which may trail another's: the time lost never
 * counts backwards). At the time limit, a wait on a token the host never issued ends it at
 * once — nothing can ever answer it; one whose page-ready was delivered still needs
 * stuck_ps, since the guest may be carrying the wake out on another vCPU. */
static bool lost_long_enough(const struct apf_engine *e, const struct waiter *w, uint64_t t_ps, uint64_t stuck_ps,
                             bool at_limit) {
  const uint64_t lost_ps = t_ps > w->since_ps ? t_ps - w->since_ps : 0;
  if (at_limit && !apf_token_issued(e, w->token)) return true;
  return w->looks >= 2 && lost_ps >= stuck_ps;
}

/* true if the run ended. */
static bool judge(struct machine *m, uint64_t t_ps, bool at_limit) {
  struct machine_race *r = m->race;
  const bool in_flight = page_ready_in_flight(m);
  const uint64_t stuck_ps = m->cfg->race.stuck_timeout_ns * PS_PER_NS;
  const struct apf_engine *e = machine_apf_engine(m);
  for (unsigned i = 0; i < m->n; i++) {
    struct apfsim_vcpu_stats gs;
    if (!vcpu_stats(m, i, &gs)) continue;
    struct waiter *w = &r->v[i].halt;
    const bool was_counted = w->counted;
    if (!track(m, w, gs.apf_halt_token, in_flight, t_ps)) continue;
    if (w->counted && !was_counted) lost_trace(m, (int)i, "vcpu", i, w, t_ps);
    const bool due = lost_long_enough(e, w, t_ps, stuck_ps, at_limit);
    if (!due) continue;
    char who[240], sym[160];
    struct vcpu_regs regs;
    vcpu_get_regs(m->cpu[i].v, &regs);
    sym_of(m, regs.rip, sym, sizeof sym);
    snprintf(who, sizeof who, "vCPU %u hangs: the guest halt-waits at %#llx (%s)", i, (unsigned long long)regs.rip, sym);
    end_hung(m, OUTCOME_HUNG_VCPU, i, who, w, t_ps, at_limit);
    return true;
  }
  for (size_t k = 0; k < r->n_task; k++) {
    struct apfsim_proc_stats ps;
    if (!machine_read_proc(m, (unsigned)k, &ps)) continue;
    const uint32_t token = ps.state == APFSIM_PROC_SLEEPING ? ps.apf_token : 0;
    /* A task woken from a token the host still holds work for: another token's page-ready
     * (or a stray wake) resumed it — a wrong-task wake. */
    if (r->task_token[k] && token != r->task_token[k] && apf_token_pending(e, r->task_token[k])) {
      r->wrong_wakes++;
      r->lost_tokens++;
      trace_event(m->trace, t_ps / PS_PER_NS, (int)ps.last_vcpu, "race_wrong_wake", "pid %u token %#x", ps.pid,
                  r->task_token[k]);
    }
    r->task_token[k] = token;
    struct waiter *w = &r->task[k];
    const bool was_counted = w->counted;
    if (!track(m, w, token, in_flight, t_ps)) continue;
    if (w->counted && !was_counted) lost_trace(m, (int)ps.last_vcpu, "pid", ps.pid, w, t_ps);
    const bool due = lost_long_enough(e, w, t_ps, stuck_ps, at_limit);
    if (!due) continue;
    char who[96];
    snprintf(who, sizeof who, "task pid %u (%s) on vCPU %u hangs: it sleeps", ps.pid,
             workload_kind_word(ps.kind), ps.last_vcpu);
    end_hung(m, OUTCOME_HUNG_TASK, ps.last_vcpu < m->n ? ps.last_vcpu : 0, who, w, t_ps, at_limit);
    return true;
  }
  return false;
}

void machine_race_watch(struct machine *m, uint64_t t_ps) {
  if (!m->race || m->ended || !machine_apf_async(m)) return;
  judge(m, t_ps, false);
}

bool machine_race_judge_end(struct machine *m, uint64_t end_ps) {
  if (!m->race || m->ended || !machine_apf_async(m)) return false;
  for (unsigned i = 0; i < m->n; i++) machine_race_look(m, &m->cpu[i], end_ps);
  return judge(m, end_ps, true);
}

void machine_race_summary(const struct machine *m, struct run_summary *s) {
  if (!m->race) return;
  s->race.cr2_clobbered = m->race->cr2_clobbered;
  s->race.lost_tokens = m->race->lost_tokens;
}

void machine_race_note(const struct machine *m, char *buf, size_t len) {
  buf[0] = '\0';
  for (unsigned i = 0; m->race && i < m->n; i++) {
    const struct race_vcpu *rv = race_of(m->race, i);
    if (!rv->delivered || !rv->nmi || rv->clobbered) continue;
    char nmi[160];
    sym_of(m, rv->nmi_rip, nmi, sizeof nmi);
    snprintf(buf, len, "; on vCPU %u an NMI was injected %llu instructions after the delivery of APF not-present "
             "token %#x, at %#llx (%s), %s, and no clobbered CR2 or lost token followed",
             i, (unsigned long long)rv->nmi_k, rv->token, (unsigned long long)rv->nmi_rip, nmi,
             rv->by_ve ? "inside the #VE handler" : rv->nmi_word_set ? "while the APF word still held the reason"
                                                                       : "after the APF word was cleared");
    return;
  }
}
