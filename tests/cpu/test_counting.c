/* test_counting.c — vcpu_run(v, n) retires exactly n instructions, and the
 * count is the architectural single-step count: compared, at every
 * instruction, with a plain Unicorn engine single-stepped by RFLAGS.TF over
 * varied code (loops, calls, REP MOVS/STOS/CMPS incl. a zero count and an
 * address-size prefix, an indirect jump); and, for code with faults taken
 * mid-block (#DE, #PF, INT n, CPUID, RDTSC), stepping one instruction at a
 * time agrees with every other chunking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unicorn/unicorn.h>

#include "harness.h"

#define MAX_STEPS 4096

struct snap {
  uint64_t r[18];
};

struct reference {
  struct snap s[MAX_STEPS];
  unsigned n; /* snapshots: s[0] = start, s[k] = after k instructions */
  uc_engine *uc;
};

static const int uc_ids[18] = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_RBP, UC_X86_REG_RSP, UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15, UC_X86_REG_RIP, UC_X86_REG_RFLAGS,
};

#define FLAGS_COMPARED 0x8d5u /* CF PF AF ZF SF OF: TF and RF belong to the steppers */

static void take(uc_engine *uc, struct snap *s) {
  for (unsigned i = 0; i < 18; i++) uc_reg_read(uc, uc_ids[i], &s->r[i]);
  s->r[17] &= FLAGS_COMPARED;
}

static void ref_step(uc_engine *uc, uint32_t intno, void *ud) {
  struct reference *ref = ud;
  assert_int_equal(intno, 1);
  if (ref->n < MAX_STEPS) take(uc, &ref->s[ref->n++]);
}

/* The reference: a bare engine on a copy of the harness memory, TF set. */
static void build_reference(struct reference *ref, const struct harness *h, uint64_t entry) {
  uint8_t *mem = aligned_alloc(4096, G_MEM_BYTES);
  memcpy(mem, h->mem, G_MEM_BYTES);
  assert_int_equal(uc_open(UC_ARCH_X86, UC_MODE_64, &ref->uc), UC_ERR_OK);
  uc_mem_map_ptr(ref->uc, 0, G_MEM_BYTES, UC_PROT_ALL, mem);
  uint64_t cr0 = 0x80010033, cr3 = G_PML4, cr4 = 0x6a0, rsp = G_KSTACK_TOP, fl = 0x102, rip = G_CODE + entry;
  uc_reg_write(ref->uc, UC_X86_REG_CR3, &cr3);
  uc_reg_write(ref->uc, UC_X86_REG_CR4, &cr4);
  uc_reg_write(ref->uc, UC_X86_REG_CR0, &cr0);
  uc_reg_write(ref->uc, UC_X86_REG_RSP, &rsp);
  uc_reg_write(ref->uc, UC_X86_REG_RFLAGS, &fl);
  uc_reg_write(ref->uc, UC_X86_REG_RIP, &rip);
  uc_ctl_exits_enable(ref->uc);
  ref->n = 0;
  take(ref->uc, &ref->s[ref->n++]);
  uc_hook hk;
  uc_hook_add(ref->uc, &hk, UC_HOOK_INTR, (void *)ref_step, ref, 1, 0);
  uc_emu_start(ref->uc, rip, 0, 0, 0); /* ends at the hlt (no trap for it) */
  struct snap last;
  take(ref->uc, &last);
  ref->s[ref->n++] = last; /* after the hlt */
  uc_close(ref->uc);
  free(mem);
}

static void check_against(const struct reference *ref, struct harness *h, uint64_t at) {
  assert_true(at < ref->n);
  struct vcpu_regs r;
  vcpu_get_regs(h->v, &r);
  const uint64_t *got = &r.rax;
  for (unsigned i = 0; i < 18; i++) {
    uint64_t g = i == 17 ? (got[i] & FLAGS_COMPARED) : got[i];
    if (g != ref->s[at].r[i])
      fail_msg("after %llu instructions register %u is %#llx, single-stepping gives %#llx",
               (unsigned long long)at, i, (unsigned long long)g, (unsigned long long)ref->s[at].r[i]);
  }
}

/* Runs T_COUNT in chunks given by pattern (cycled) and checks every stop. */
static void chunked_matches_reference(const unsigned *pattern, unsigned n_pattern) {
  static struct reference ref;
  struct harness h;
  h_init(&h);
  build_reference(&ref, &h, T_COUNT);
  assert_true(ref.n > 100);
  h_boot(&h, T_COUNT, false);
  uint64_t done = 0;
  for (unsigned k = 0;; k++) {
    uint64_t n = pattern[k % n_pattern];
    struct vcpu_exit e = h_run(&h, n);
    done += e.instructions;
    assert_int_equal(done, vcpu_retired(h.v));
    if (e.reason == VCPU_EXIT_HLT) {
      assert_int_equal(done, ref.n - 1);
      break;
    }
    assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
    assert_int_equal(e.instructions, n);
    check_against(&ref, &h, done);
  }
  check_against(&ref, &h, done);
  h_free(&h);
}

static void single_steps_match(void **state) {
  (void)state;
  static const unsigned p[] = {1};
  chunked_matches_reference(p, 1);
}

static void mixed_chunks_match(void **state) {
  (void)state;
  static const unsigned p[] = {1, 2, 3, 5, 7, 11, 4, 6};
  chunked_matches_reference(p, 8);
}

static void large_chunks_match(void **state) {
  (void)state;
  static const unsigned p[] = {13, 29, 64};
  chunked_matches_reference(p, 3);
}

static void one_run_matches(void **state) {
  (void)state;
  static const unsigned p[] = {100000};
  chunked_matches_reference(p, 1);
}

/* Code with faults in the middle of blocks: the trace of single steps is
 * the ground truth for every other chunking. */
static void setup_faults(struct harness *h) {
  h_init(h);
  h_gate(h, 0, H_DE_SKIP, 0, 0xe, 0);
  h_gate(h, 0x80, H_INT80, 0, 0xe, 0);
  h_gate(h, 14, H_PF_SKIP8, 0, 0xe, 0);
  h_boot(h, T_COUNT_FAULTS, false);
}

static void faults_mid_block_count_exactly(void **state) {
  (void)state;
  static struct snap steps[MAX_STEPS];
  struct harness h;
  setup_faults(&h);
  unsigned n = 0;
  for (;;) {
    struct vcpu_exit e = h_run(&h, 1);
    if (e.reason == VCPU_EXIT_HLT) break;
    assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
    assert_int_equal(e.instructions, 1);
    struct vcpu_regs r;
    vcpu_get_regs(h.v, &r);
    memcpy(steps[++n].r, &r.rax, sizeof steps[0].r);
    assert_true(n < MAX_STEPS - 1);
  }
  const uint64_t total = vcpu_retired(h.v);
  assert_int_equal(total, n + 1);
  assert_int_equal(h_reg(&h, R_R15), 2);      /* two int 0x80 handled */
  assert_int_equal(vcpu_cr2(h.v), G_NP);       /* the #PF was delivered */
  h_free(&h);

  static const unsigned patterns[][4] = {{2, 3, 5, 7}, {4, 4, 4, 4}, {9, 1, 17, 6}, {1000, 1000, 1000, 1000}};
  for (unsigned p = 0; p < 4; p++) {
    setup_faults(&h);
    uint64_t done = 0;
    for (unsigned k = 0;; k++) {
      struct vcpu_exit e = h_run(&h, patterns[p][k % 4]);
      done += e.instructions;
      if (e.reason == VCPU_EXIT_HLT) break;
      assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
      assert_int_equal(e.instructions, patterns[p][k % 4]);
      struct vcpu_regs r;
      vcpu_get_regs(h.v, &r);
      const uint64_t *got = &r.rax;
      for (unsigned i = 0; i < 18; i++)
        if (got[i] != steps[done].r[i])
          fail_msg("pattern %u: after %llu instructions register %u is %#llx, single-stepping gives %#llx", p,
                   (unsigned long long)done, i, (unsigned long long)got[i], (unsigned long long)steps[done].r[i]);
    }
    assert_int_equal(done, total);
    h_free(&h);
  }
}

/* Code rewritten in place by the guest: same block address and size,
 * different instructions (6 before, 2 after); the count follows. */
static void rewritten_code_is_counted_anew(void **state) {
  (void)state;
  for (int shadow = 0; shadow < 2; shadow++) {
    struct harness h;
    h_init(&h);
    h.use_shadow = shadow;
    h_boot(&h, T_SMC, false);
    struct vcpu_exit e = h_run(&h, 1000);
    assert_int_equal(e.reason, VCPU_EXIT_HLT);
    /* call, 5 nops, ret; 2 movs; call, mov eax, ret; hlt */
    assert_int_equal(e.instructions, 7 + 2 + 3 + 1);
    assert_int_equal(h_reg(&h, R_RAX), 1);
    h_free(&h);
  }
}

/* A budget of 0 delivers nothing and runs nothing. */
static void zero_budget_runs_nothing(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_NOPS, false);
  struct vcpu_exit e = h_run(&h, 0);
  assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
  assert_int_equal(e.instructions, 0);
  assert_int_equal(e.rip, CODE(T_NOPS));
  e = h_run(&h, 10);
  assert_int_equal(e.instructions, 10);
  assert_int_equal(e.rip, CODE(T_NOPS) + 10);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(single_steps_match),
      cmocka_unit_test(mixed_chunks_match),
      cmocka_unit_test(large_chunks_match),
      cmocka_unit_test(one_run_matches),
      cmocka_unit_test(faults_mid_block_count_exactly),
      cmocka_unit_test(rewritten_code_is_counted_anew),
      cmocka_unit_test(zero_budget_runs_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
