/* test_guest_nmi_race.c — the seed's NMI/CR2 race (DESIGN.md §2 "The race"), at every
 * instruction of the entry window, for one guest variant per run (argv[1]).
 *
 * The scenario, exactly: process 1 (a memory workload whose access runs with RSP on a
 * never-touched stack page, APFSIM_USER_F_FRESH_STACK_ACCESS) is at its working-set load
 * when the fake host delivers an APF not-present event for token T (#PF with CR2 = T and
 * the APF word set, or #VE). The handler then retires exactly k instructions and an NMI
 * arrives; the NMI's perf-like sample reads the user stack at the interrupted user RSP,
 * which the guest's own page table does not map: a real guest #PF nested in the NMI, at
 * address U = that RSP. The host's page-ready for T follows later (interrupt for 2020, #PF
 * with reason 2 for 2010). Each k boots a fresh machine.
 *
 * A reference run without the NMI finds, by stepping the handler, k_clear (instructions
 * retired when the APF word reads 0 again) and k_cr2 (retired once CR2 has been read).
 * The expected outcome of each k follows from the code, and the test asserts it:
 *   k < k_clear, #PF delivery, no stash: the nested #PF finds the word still set and takes
 *       its own fault for the APF: a 2020 guest panics there ("Host injected async #PF in
 *       interrupt disabled region": the NMI runs with IF = 0); a 2010 guest waits for token
 *       U in NMI context with the halt loop — a hung vCPU — and the real page-ready for T
 *       finds no sleeper and leaves a dummy node. Saving CR2 in the NMI changes nothing.
 *   k_clear <= k < k_cr2 (reason-first entry only), NMI without CR2 save: the outer handler
 *       reads U from CR2 and puts the task to sleep on it: a hung task; T leaves a dummy.
 *   otherwise — and always with the stash-reason NMI or #VE delivery: the task sleeps on T
 *       and page-ready T resumes it; the run completes.
 * The table (k, instruction, outcome) is printed for docs/guest.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_machine.h"

#define TOKEN 0x1000u
#define MAX_WINDOW 80

struct variant {
  const char *name;
  enum apf_protocol protocol;
  enum pf_entry_order order;
  enum nmi_cr2_policy nmi;
  enum not_present_delivery delivery;
};

static const struct variant variants[] = {
    {"2020-cr2first-none", APF_2020, PF_ENTRY_CR2_FIRST, NMI_CR2_NONE, NOT_PRESENT_PF},
    {"2020-cr2first-saverestore", APF_2020, PF_ENTRY_CR2_FIRST, NMI_CR2_SAVE_RESTORE, NOT_PRESENT_PF},
    {"2020-reasonfirst-none", APF_2020, PF_ENTRY_REASON_FIRST, NMI_CR2_NONE, NOT_PRESENT_PF},
    {"2020-reasonfirst-saverestore", APF_2020, PF_ENTRY_REASON_FIRST, NMI_CR2_SAVE_RESTORE, NOT_PRESENT_PF},
    {"2020-stash", APF_2020, PF_ENTRY_CR2_FIRST, NMI_CR2_STASH_REASON, NOT_PRESENT_PF},
    {"2020-ve", APF_2020, PF_ENTRY_CR2_FIRST, NMI_CR2_SAVE_RESTORE, NOT_PRESENT_VE},
    {"2010-cr2first-saverestore", APF_2010, PF_ENTRY_CR2_FIRST, NMI_CR2_SAVE_RESTORE, NOT_PRESENT_PF},
    {"2010-reasonfirst-none", APF_2010, PF_ENTRY_REASON_FIRST, NMI_CR2_NONE, NOT_PRESENT_PF},
    {"2010-reasonfirst-saverestore", APF_2010, PF_ENTRY_REASON_FIRST, NMI_CR2_SAVE_RESTORE, NOT_PRESENT_PF},
    {"2010-stash", APF_2010, PF_ENTRY_REASON_FIRST, NMI_CR2_STASH_REASON, NOT_PRESENT_PF},
};

static const struct variant *V;

enum outcome { OK, PANIC_IF0, HUNG_VCPU, HUNG_TASK, OTHER };
static const char *const outcome_names[] = {"ok", "panic: async #PF in interrupt disabled region", "hung vCPU",
                                            "hung task", "other"};

struct result {
  enum outcome o;
  uint64_t nmi_rip;   /* where the NMI landed */
  uint32_t token;     /* the token the stuck context waits on (hung task/vCPU) */
  uint64_t dummies;   /* dummy nodes created */
  uint64_t user_rsp;  /* U */
  uint64_t nmi_faults, stashed; /* the NMI's user reads that faulted; NMIs that stashed the APF word */
  char detail[300];
};

static struct gm *boot_at_the_access(uint64_t *user_rsp) {
  struct sim_config *cfg = gm_config(1);
  cfg->apf.protocol = V->protocol;
  cfg->guest.pf_entry_order = V->order;
  cfg->guest.nmi_cr2 = V->nmi;
  cfg->guest.not_present_delivery = V->delivery;
  cfg->guest.nmi_reads_user_stack = true;
  cfg->workload.n_processes = 2;
  cfg->workload.processes[0] = (struct process_config){
      .kind = WORKLOAD_MEMORY, .pattern = ACCESS_RANDOM, .count = 1, .ops = 1500, .working_set_bytes = 64 << 10};
  cfg->workload.processes[1] =
      (struct process_config){.kind = WORKLOAD_COMPUTE, .count = 1, .ops = 100, .compute_per_op = 1000};
  struct gm_options opt = {.kvm_features = GM_KVM_FEATURE_ASYNC_PF | (V->protocol == APF_2020 ? GM_KVM_FEATURE_ASYNC_PF_INT : 0)};
  struct gm *m = gm_boot(cfg, &opt);
  free(cfg);
  gm_run_until_user(m, 0, 1, true);
  *user_rsp = gm_regs(m, 0).rsp;
  return m;
}

static void inject_not_present(struct gm *m, uint64_t user_rsp) {
  if (V->delivery == NOT_PRESENT_VE)
    assert_true(gm_inject_ve(m, 0, APFSIM_VE_REASON_NOT_PRESENT, TOKEN, user_rsp, APFSIM_VE_ACCESS_USER));
  else
    gm_inject_not_present(m, 0, TOKEN);
}

/* `mov %cr2, reg`: [REX] 0F 20 /r with ModRM reg = 2 */
static bool is_mov_from_cr2(const uint8_t *p) {
  if ((p[0] & 0xf0) == 0x40) p++;
  return p[0] == 0x0f && p[1] == 0x20 && ((p[2] >> 3) & 7) == 2;
}

/* The reference run: k_clear and k_cr2 (see the header). For #VE, k_clear is when the
 * information area is released. */
static void reference(unsigned *k_clear, unsigned *k_cr2) {
  uint64_t rsp;
  struct gm *m = boot_at_the_access(&rsp);
  inject_not_present(m, rsp);
  gm_step(m, 0, 0); /* delivers the event */
  *k_clear = *k_cr2 = 0;
  bool pf = V->delivery == NOT_PRESENT_PF;
  for (unsigned i = 0; i < MAX_WINDOW && (!*k_clear || (pf && !*k_cr2)); i++) {
    uint64_t rip = gm_regs(m, 0).rip;
    if (!*k_cr2 && is_mov_from_cr2(m->mem + rip)) *k_cr2 = i + 1;
    gm_step(m, 0, 1);
    bool cleared = pf ? *gm_apf_word(m, 0) == 0 : gm_ve_info(m, 0)->busy == 0;
    if (cleared && !*k_clear) *k_clear = i + 1;
  }
  assert_true(*k_clear > 0);
  if (pf) assert_true(*k_cr2 > 0);
  gm_free(m);
}

static void page_ready(struct gm *m) {
  if (m->state != GM_RUNNING) return;
  if (V->protocol == APF_2020) {
    assert_true(gm_inject_page_ready(m, 0, TOKEN, 0));
  } else {
    gm_run_until_interruptible(m, 0); /* a pre-5.8 host sends it when IF = 1 */
    gm_inject_page_ready_2010(m, 0, TOKEN);
  }
}

static struct result run_one(unsigned k) {
  struct result r = {0};
  struct gm *m = boot_at_the_access(&r.user_rsp);
  inject_not_present(m, r.user_rsp);
  gm_step(m, 0, k);
  r.nmi_rip = gm_regs(m, 0).rip;
  vcpu_queue_nmi(m->cpu[0].v);
  gm_run(m, 60);
  page_ready(m);
  gm_run(m, 800);

  struct apfsim_vcpu_stats vs = gm_vcpu(m, 0);
  struct apfsim_proc_stats p1 = gm_proc(m, 1);
  r.dummies = vs.apf_dummy_created;
  r.nmi_faults = vs.nmi_user_faults;
  r.stashed = vs.nmi_apf_stashed;
  if (m->state == GM_PANIC) {
    struct apfsim_panic_record p = gm_panic(m);
    snprintf(r.detail, sizeof r.detail, "%s", p.message);
    static const char want[] = "Host injected async #PF in interrupt disabled region: #PF (vector 14) in kernel mode";
    r.o = strncmp(p.message, want, sizeof want - 1) == 0 ? PANIC_IF0 : OTHER;
    r.token = (uint32_t)p.cr2;
  } else if (m->state == GM_SHUTDOWN) {
    r.o = p1.ops_done == 1500 && p1.apf_waits == 1 ? OK : OTHER;
    snprintf(r.detail, sizeof r.detail, "ops %llu waits %llu", (unsigned long long)p1.ops_done, (unsigned long long)p1.apf_waits);
  } else if (vs.apf_halt_token) {
    r.o = HUNG_VCPU;
    r.token = vs.apf_halt_token;
    snprintf(r.detail, sizeof r.detail, "vCPU halt-waits on %#x in NMI context (nmis %llu)", vs.apf_halt_token,
             (unsigned long long)vs.nmis);
  } else if (p1.state == APFSIM_PROC_SLEEPING) {
    r.o = HUNG_TASK;
    r.token = (uint32_t)p1.apf_token;
    snprintf(r.detail, sizeof r.detail, "pid 1 sleeps on %#x", (uint32_t)p1.apf_token);
  } else {
    r.o = OTHER;
    snprintf(r.detail, sizeof r.detail, "state %d pid1 %u ops %llu", m->state, p1.state, (unsigned long long)p1.ops_done);
  }
  gm_free(m);
  return r;
}

static enum outcome expected(unsigned k, unsigned k_clear, unsigned k_cr2) {
  if (V->delivery == NOT_PRESENT_VE || V->nmi == NMI_CR2_STASH_REASON) return OK;
  if (k < k_clear) return V->protocol == APF_2020 ? PANIC_IF0 : HUNG_VCPU;
  if (V->order == PF_ENTRY_REASON_FIRST && k < k_cr2 && V->nmi == NMI_CR2_NONE) return HUNG_TASK;
  return OK;
}

static void nmi_at_every_instruction_of_the_window(void **state) {
  (void)state;
  unsigned k_clear, k_cr2;
  reference(&k_clear, &k_cr2);
  unsigned k_end = k_clear + 4;
  unsigned window_lo = k_end, window_hi = 0;
  enum outcome prev = OK;
  if (V->delivery == NOT_PRESENT_VE)
    printf("variant %s: #VE information area released after %u instructions\n", V->name, k_clear);
  else
    printf("variant %s: APF word cleared after %u instructions, CR2 read after %u\n", V->name, k_clear, k_cr2);
  for (unsigned k = 0; k < k_end; k++) {
    struct result r = run_one(k);
    char sym[96];
    gm_sym(NULL, r.nmi_rip, sym, sizeof sym);
    bool first = k == 0 || r.o != prev; /* the detail once per run of one outcome */
    prev = r.o;
    printf("  k=%-3u %-42s %s%s%s\n", k, sym, outcome_names[r.o], first && r.o != OK ? " — " : "",
           first && r.o != OK ? r.detail : "");
    enum outcome want = expected(k, k_clear, k_cr2);
    if (r.o != want)
      fail_msg("%s k=%u (NMI at %s): %s (%s), expected %s", V->name, k, sym, outcome_names[r.o], r.detail, outcome_names[want]);
    if (r.o != OK) {
      if (k < window_lo) window_lo = k;
      window_hi = k;
      /* the stuck context waits on U (the nested fault's address), and T left a dummy */
      if (r.o != PANIC_IF0) {
        assert_int_equal(r.token, (uint32_t)r.user_rsp);
        assert_int_equal(r.dummies, 1);
      } else {
        assert_int_equal(r.token, (uint32_t)r.user_rsp); /* the nested fault's CR2 */
      }
    } else {
      assert_int_equal(r.dummies, 0);
      assert_true(r.nmi_faults >= 1); /* the nested #PF did happen, and was fixed up */
    }
    /* the stash-reason NMI took the word away exactly when it was still set */
    if (V->nmi == NMI_CR2_STASH_REASON && V->delivery == NOT_PRESENT_PF) assert_int_equal(r.stashed, k < k_clear ? 1 : 0);
  }
  if (window_hi || window_lo == 0)
    printf("variant %s: race window k = %u..%u\n", V->name, window_lo, window_hi);
  else
    printf("variant %s: no race window\n", V->name);
}

int main(int argc, char **argv) {
  for (size_t i = 0; argc == 2 && i < sizeof variants / sizeof variants[0]; i++)
    if (strcmp(argv[1], variants[i].name) == 0) V = &variants[i];
  if (!V) {
    fprintf(stderr, "usage: %s VARIANT\nvariants:", argv[0]);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) fprintf(stderr, " %s", variants[i].name);
    fprintf(stderr, "\n");
    return 2;
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(nmi_at_every_instruction_of_the_window)};
  return cmocka_run_group_tests(tests, gm_setup, gm_teardown);
}
