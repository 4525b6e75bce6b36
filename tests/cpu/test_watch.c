/* test_watch.c — watched addresses (vcpu_watch): executions are counted exactly whatever
 * the quantum, with the address in the middle of a translated block and in a loop, with
 * and without the shadow MMU (whose first access of a page retries the instruction); the
 * run stops right before the n-th execution (RIP on it, not run, not counted) so an NMI
 * queued there is taken at that boundary; a watch on an intercepted instruction stops
 * before its emulation; a watch added after its code was translated still fires; and
 * adding one drops no other translation (no whole-cache flush). Also pins the Unicorn
 * 2.0.1 facts this relies on, on a bare engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unicorn/unicorn.h>

#include "harness.h"

/* A loop whose watched instruction (a load) sits in the middle of its blocks.
 *   0x00 mov ecx, 10 ; 0x05 xor eax, eax
 *   0x07 inc eax ; 0x09 mov rdx, [G_DATA] (watched) ; 0x11 dec ecx ; 0x13 jnz 0x07
 *   0x15 hlt */
#define LOOP 0x4000
#define LOOP_W (LOOP + 0x09)
#define LOOP_ITERATIONS 10
#define LOOP_BEFORE(n) (2 + 4 * ((uint64_t)(n) - 1) + 1) /* retired before the n-th watched load */
#define LOOP_TOTAL (2 + 4 * LOOP_ITERATIONS + 1)        /* ... and up to the hlt included */
static const uint8_t loop_code[] = {0xb9, 0x0a, 0x00, 0x00, 0x00, 0x31, 0xc0, 0xff, 0xc0, 0x48, 0x8b,
                                    0x14, 0x25, 0x00, 0x00, 0x20, 0x00, 0xff, 0xc9, 0x75, 0xf2, 0xf4};

/* An RDTSC (an intercepted instruction) in a loop: 0x00 mov ecx, 3 ; 0x05 rdtsc (watched) ;
 * 0x07 dec ecx ; 0x09 jnz 0x05 ; 0x0b hlt */
#define RDTSC_LOOP 0x4100
#define RDTSC_W (RDTSC_LOOP + 0x05)
static const uint8_t rdtsc_code[] = {0xb9, 0x03, 0x00, 0x00, 0x00, 0x0f, 0x31, 0xff, 0xc9, 0x75, 0xfa, 0xf4};

/* Straight code on another page: 0x00 mov eax, 1 ; 0x05 4 x nop ; 0x09 mov ebx, 2 ; 0x0e hlt.
 * The immediate of the second MOV (0x0a) lies past the first 8 bytes the vCPU checks for
 * rewritten code, so a host write there shows whether Unicorn kept the old translation. */
#define STRAIGHT 0x5000
#define STRAIGHT_IMM (STRAIGHT + 0x0a)
static const uint8_t straight_code[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0x90, 0x90, 0x90,
                                        0x90, 0xbb, 0x02, 0x00, 0x00, 0x00, 0xf4};

static void setup(struct harness *h, bool shadow, bool scan_snippets) {
  h_init(h);
  memcpy(h->mem + CODE(LOOP), loop_code, sizeof loop_code);
  memcpy(h->mem + CODE(RDTSC_LOOP), rdtsc_code, sizeof rdtsc_code);
  memcpy(h->mem + CODE(STRAIGHT), straight_code, sizeof straight_code);
  if (scan_snippets) { /* their sites are hooked at creation, before any watch */
    h->text[1] = (struct vcpu_text_range){CODE(LOOP), CODE(STRAIGHT + 0x100)};
    h->cfg.n_text = 2;
  }
  h->use_shadow = shadow;
}

static int watch(struct harness *h, uint64_t off, uint64_t nth) {
  struct diag err = {{0}};
  int id = vcpu_watch(h->v, CODE(off), nth, &err);
  if (id < 0) fail_msg("vcpu_watch: %s", err.msg);
  return id;
}

/* Runs in chunks of q instructions to the hlt; returns how many WATCH exits there were and
 * checks each one against want_retired / want_rip. */
static unsigned run_to_hlt(struct harness *h, uint64_t q, int id, uint64_t want_retired, uint64_t want_rip) {
  unsigned stops = 0;
  for (unsigned guard = 0; guard < 10000; guard++) {
    struct vcpu_exit e = h_run(h, q);
    if (e.reason == VCPU_EXIT_HLT) return stops;
    if (e.reason == VCPU_EXIT_WATCH) {
      stops++;
      assert_int_equal(e.watch, id);
      assert_int_equal(vcpu_retired(h->v), want_retired);
      assert_int_equal(h_reg(h, R_RIP), want_rip);
      assert_int_equal(e.rip, want_rip);
      continue;
    }
    if (e.reason != VCPU_EXIT_QUANTUM) fail_msg("exit %s: %s", vcpu_exit_reason_name(e.reason), e.message);
  }
  fail_msg("no hlt");
  return stops;
}

/* Chunks of 1 to 13 instructions (every phase against the 4-instruction loop body and the
 * blocks), the whole loop, and more, with and without shadowing. */
static void counts_and_stops_any_quantum(void **state) {
  (void)state;
  static const uint64_t quanta[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, LOOP_TOTAL - 1, LOOP_TOTAL, 1000000};
  for (int shadow = 0; shadow < 2; shadow++)
    for (uint64_t nth = 1; nth <= 3; nth += 2)
      for (size_t k = 0; k < sizeof quanta / sizeof quanta[0]; k++) {
        const uint64_t q = quanta[k];
        struct harness h;
        setup(&h, shadow, false);
        h_boot(&h, LOOP, false);
        int id = watch(&h, LOOP_W, nth);
        unsigned stops = run_to_hlt(&h, q, id, LOOP_BEFORE(nth), CODE(LOOP_W));
        if (stops != 1) fail_msg("shadow %d nth %llu quantum %llu: %u stops", shadow, (unsigned long long)nth,
                                 (unsigned long long)q, stops);
        assert_int_equal(vcpu_watch_count(h.v, id), LOOP_ITERATIONS);
        assert_int_equal(vcpu_retired(h.v), LOOP_TOTAL);
        assert_int_equal(h_reg(&h, R_RAX), LOOP_ITERATIONS);
        h_free(&h);
      }
}

/* At the stop the watched load has not run: RDX is still 0 on the first execution, and
 * the loop's registers are those before it. */
static void stops_before_the_instruction(void **state) {
  (void)state;
  for (int shadow = 0; shadow < 2; shadow++) {
    struct harness h;
    setup(&h, shadow, false);
    h_boot(&h, LOOP, false);
    int id = watch(&h, LOOP_W, 1);
    struct vcpu_exit e = h_run(&h, 1000);
    assert_int_equal(e.reason, VCPU_EXIT_WATCH);
    assert_int_equal(e.watch, id);
    assert_int_equal(e.instructions, LOOP_BEFORE(1));
    assert_int_equal(h_reg(&h, R_RDX), 0);
    assert_int_equal(h_reg(&h, R_RAX), 1);
    assert_int_equal(h_reg(&h, R_RCX), LOOP_ITERATIONS);
    assert_int_equal(vcpu_watch_count(h.v, id), 1);
    /* one more instruction: the load itself, counted once (with shadowing its first
     * access faults and is retried: still one execution) */
    e = h_run(&h, 1);
    assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
    assert_int_equal(h_reg(&h, R_RDX), h_q(&h, G_DATA));
    assert_int_equal(h_reg(&h, R_RIP), CODE(LOOP_W + 8));
    assert_int_equal(vcpu_watch_count(h.v, id), 1);
    h_free(&h);
  }
}

/* An NMI queued at the stop is taken at that boundary: the handler's frame holds the
 * watched address, and nothing of it ran. */
static void nmi_lands_on_the_address(void **state) {
  (void)state;
  struct harness h;
  setup(&h, true, false);
  h_boot(&h, LOOP, false);
  int id = watch(&h, LOOP_W, 3);
  struct vcpu_exit e = h_run(&h, 1000000);
  assert_int_equal(e.reason, VCPU_EXIT_WATCH);
  assert_int_equal(e.watch, id);
  vcpu_queue_nmi(h.v);
  e = h_run(&h, 1000000);
  assert_int_equal(e.reason, VCPU_EXIT_HLT); /* the NMI gate points at H_HLT */
  assert_int_equal(h_reg(&h, R_RIP), CODE(H_HLT + 1));
  const uint64_t rsp = h_reg(&h, R_RSP);
  assert_int_equal(h_q(&h, rsp), CODE(LOOP_W)); /* pushed RIP */
  assert_int_equal(vcpu_retired(h.v), LOOP_BEFORE(3) + 1);
  assert_int_equal(vcpu_watch_count(h.v, id), 3);
  h_free(&h);
}

/* A watch on an intercepted instruction stops before it is emulated (no TSC read yet), its
 * site hooked before the watch (scanned text) or after (code found when it first runs). */
static void watched_site(void **state) {
  (void)state;
  for (int scanned = 0; scanned < 2; scanned++)
    for (uint64_t q = 1; q <= 12; q += 11) {
      struct harness h;
      setup(&h, false, scanned);
      h_boot(&h, RDTSC_LOOP, false);
      h.tsc = 0x1234;
      int id = watch(&h, RDTSC_W, 2);
      h_set_reg(&h, R_RAX, 0);
      struct vcpu_exit e;
      for (;;) {
        e = h_run(&h, q);
        if (e.reason != VCPU_EXIT_QUANTUM) break;
      }
      assert_int_equal(e.reason, VCPU_EXIT_WATCH);
      assert_int_equal(vcpu_retired(h.v), 1 + 3);
      assert_int_equal(h_reg(&h, R_RIP), CODE(RDTSC_W));
      assert_int_equal(h_reg(&h, R_RCX), 2);
      assert_int_equal(h_reg(&h, R_RAX), 0x1234); /* the second RDTSC has not read the TSC yet */
      h.tsc = 0x5678;
      e = h_run(&h, 1);
      assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
      assert_int_equal(h_reg(&h, R_RAX), 0x5678);
      assert_int_equal(run_to_hlt(&h, q, id, 0, 0), 0);
      assert_int_equal(vcpu_watch_count(h.v, id), 3);
      assert_int_equal(vcpu_retired(h.v), 1 + 3 * 3 + 1);
      h_free(&h);
    }
}

static void restart(struct harness *h, uint64_t off) {
  struct vcpu_regs r;
  vcpu_get_regs(h->v, &r);
  r.rip = CODE(off);
  vcpu_set_regs(h->v, &r);
}

/* Added after the loop was translated and run: the watch still counts every execution
 * (its address's translations were dropped); and adding it dropped nothing else — a host
 * write into code on another page, which Unicorn does not notice, stays unseen until a
 * watch on that page drops that page's translations. */
static void late_watch_and_no_full_flush(void **state) {
  (void)state;
  for (int shadow = 0; shadow < 2; shadow++) {
    struct harness h;
    setup(&h, shadow, false);
    h_boot(&h, STRAIGHT, false);
    assert_int_equal(h_run(&h, 100).reason, VCPU_EXIT_HLT);
    assert_int_equal(h_reg(&h, R_RBX), 2);
    restart(&h, LOOP);
    assert_int_equal(h_run(&h, 1000).reason, VCPU_EXIT_HLT); /* the loop is translated */

    h.mem[CODE(STRAIGHT_IMM)] = 3; /* behind Unicorn's back */
    int id = watch(&h, LOOP_W, 0);
    restart(&h, LOOP);
    assert_int_equal(h_run(&h, 1000).reason, VCPU_EXIT_HLT);
    assert_int_equal(vcpu_watch_count(h.v, id), LOOP_ITERATIONS);

    restart(&h, STRAIGHT);
    assert_int_equal(h_run(&h, 100).reason, VCPU_EXIT_HLT);
    assert_int_equal(h_reg(&h, R_RBX), 2); /* the old translation: the cache was not flushed */

    int id2 = watch(&h, STRAIGHT + 5, 0);
    restart(&h, STRAIGHT);
    assert_int_equal(h_run(&h, 100).reason, VCPU_EXIT_HLT);
    assert_int_equal(h_reg(&h, R_RBX), 3); /* that page's translation was dropped */
    assert_int_equal(vcpu_watch_count(h.v, id2), 1);
    h_free(&h);
  }
}

static void bad_address(void **state) {
  (void)state;
  struct harness h;
  setup(&h, false, false);
  h_boot(&h, LOOP, false);
  struct diag err = {{0}};
  assert_int_equal(vcpu_watch(h.v, G_MEM_BYTES, 1, &err), -1);
  assert_non_null(strstr(err.msg, "outside guest RAM"));
  h_free(&h);
}

/* ---------- Unicorn 2.0.1 facts (bare engine) ---------- */

struct bare {
  uc_engine *uc;
  uint8_t *mem;
  unsigned hits;
};

static void bare_open(struct bare *b) {
  struct harness h;
  setup(&h, false, false);
  b->mem = h.mem;
  h.mem = NULL;
  vcpu_msr_table_free(h.msrs);
  assert_int_equal(uc_open(UC_ARCH_X86, UC_MODE_64, &b->uc), UC_ERR_OK);
  uc_mem_map_ptr(b->uc, 0, G_MEM_BYTES, UC_PROT_ALL, b->mem);
  uint64_t cr0 = 0x80010033, cr3 = G_PML4, cr4 = 0x6a0, rsp = G_KSTACK_TOP, fl = 0x2;
  uc_reg_write(b->uc, UC_X86_REG_CR3, &cr3);
  uc_reg_write(b->uc, UC_X86_REG_CR4, &cr4);
  uc_reg_write(b->uc, UC_X86_REG_CR0, &cr0);
  uc_reg_write(b->uc, UC_X86_REG_RSP, &rsp);
  uc_reg_write(b->uc, UC_X86_REG_RFLAGS, &fl);
  uc_ctl_exits_enable(b->uc);
  b->hits = 0;
}

static void bare_close(struct bare *b) {
  uc_close(b->uc);
  free(b->mem);
}

static void bare_run(struct bare *b, uint64_t off) {
  assert_int_equal(uc_emu_start(b->uc, CODE(off), 0, 0, 0), UC_ERR_OK); /* ends at the hlt */
}

static void count_hit(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  (void)uc;
  (void)addr;
  (void)size;
  ((struct bare *)ud)->hits++;
}

/* A code hook added after its code was translated stays silent until that code is
 * translated again; dropping just that address's translation (uc_ctl_remove_cache) is
 * enough. This is why vcpu_watch invalidates its address. */
static void unicorn_hooks_bind_at_translation(void **state) {
  (void)state;
  struct bare b;
  bare_open(&b);
  bare_run(&b, LOOP);
  uc_hook hk;
  assert_int_equal(uc_hook_add(b.uc, &hk, UC_HOOK_CODE, (void *)count_hit, &b, CODE(LOOP_W), CODE(LOOP_W)),
                   UC_ERR_OK);
  bare_run(&b, LOOP);
  assert_int_equal(b.hits, 0);
  assert_int_equal(uc_ctl_remove_cache(b.uc, CODE(LOOP_W), CODE(LOOP_W) + 1), UC_ERR_OK);
  bare_run(&b, LOOP);
  assert_int_equal(b.hits, LOOP_ITERATIONS);
  bare_close(&b);
}

static void stop_in_code_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  (void)addr;
  (void)size;
  struct bare *b = ud;
  if (++b->hits == 3) uc_emu_stop(uc);
}

/* uc_emu_stop in a code hook ends the run before that instruction, in the middle of its
 * block, with RIP on it (here: the third load has not run, three INCs have). */
static void unicorn_stop_in_code_hook_is_before(void **state) {
  (void)state;
  struct bare b;
  bare_open(&b);
  uc_hook hk;
  uc_hook_add(b.uc, &hk, UC_HOOK_CODE, (void *)stop_in_code_hook, &b, CODE(LOOP_W), CODE(LOOP_W));
  bare_run(&b, LOOP);
  uint64_t rip = 0, rax = 0;
  uc_reg_read(b.uc, UC_X86_REG_RIP, &rip);
  uc_reg_read(b.uc, UC_X86_REG_RAX, &rax);
  assert_int_equal(rip, CODE(LOOP_W));
  assert_int_equal(rax, 3);
  assert_int_equal(b.hits, 3);
  bare_close(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counts_and_stops_any_quantum),
      cmocka_unit_test(stops_before_the_instruction),
      cmocka_unit_test(nmi_lands_on_the_address),
      cmocka_unit_test(watched_site),
      cmocka_unit_test(late_watch_and_no_full_flush),
      cmocka_unit_test(bad_address),
      cmocka_unit_test(unicorn_hooks_bind_at_translation),
      cmocka_unit_test(unicorn_stop_in_code_hook_is_before),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
