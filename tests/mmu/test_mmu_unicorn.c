/* test_mmu_unicorn.c — the Unicorn 2.0.1 facts the shadow MMU's design rests on,
 * measured on a real engine with paging on (docs/mmu.md, "What Unicorn does"):
 *  1. an engine sees its own writes to code it translated (same and other blocks),
 *     so a page may be writable and executable on the one vCPU that owns it;
 *  2. it does not see code written by another engine or by the host until
 *     uc_ctl_remove_cache drops that range — hence code_vcpus in struct shadow_flush;
 *  3. uc_reg_write(CR3) and uc_ctl_flush_tlb leave stale TLB entries; only guest
 *     instructions (mov cr3 / invlpg, e.g. a pinned stub) flush — hence tlb_vcpus and
 *     full_tlb_vcpus are work for the vCPU, not something a register write does.
 * If a Unicorn upgrade changes one of these, this test says which. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unicorn/unicorn.h>

#define MEM (UINT64_C(4) << 20)
#define PML4 UINT64_C(0x100000)
#define PT0 UINT64_C(0x103000) /* two page tables identity-map the first 4 MiB */
#define LOAD_5000 UINT64_C(0x1000) /* mov eax, [0x5000]; hlt */
#define STUB_CR3 UINT64_C(0x2000)  /* mov cr3, rax; hlt */
#define STUB_INVLPG UINT64_C(0x3000) /* invlpg [rax]; hlt */
#define END UINT64_C(0x3ff000)

struct fx {
  uint8_t *mem;
  unsigned faults;
};

static void put64(uint8_t *mem, uint64_t pa, uint64_t v) { memcpy(mem + pa, &v, 8); }

static void on_intr(uc_engine *uc, uint32_t intno, void *user) {
  (void)intno;
  ((struct fx *)user)->faults++;
  uc_emu_stop(uc);
}

static uc_engine *engine(struct fx *f) {
  uc_engine *uc;
  assert_int_equal(uc_open(UC_ARCH_X86, UC_MODE_64, &uc), UC_ERR_OK);
  assert_int_equal(uc_mem_map_ptr(uc, 0, MEM, UC_PROT_ALL, f->mem), UC_ERR_OK);
  uint64_t cr4 = 0x20 /* PAE */, cr3 = PML4, cr0 = 0x80010011 /* PG WP ET PE */;
  uc_reg_write(uc, UC_X86_REG_CR4, &cr4);
  uc_reg_write(uc, UC_X86_REG_CR3, &cr3);
  uc_reg_write(uc, UC_X86_REG_CR0, &cr0);
  uint64_t rsp = 0x300000;
  uc_reg_write(uc, UC_X86_REG_RSP, &rsp);
  uc_hook h;
  assert_int_equal(uc_hook_add(uc, &h, UC_HOOK_INTR, (void *)on_intr, f, 1, 0), UC_ERR_OK);
  return uc;
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  f->mem = aligned_alloc(4096, MEM);
  memset(f->mem, 0, MEM);
  put64(f->mem, PML4, (PML4 + 0x1000) | 7);
  put64(f->mem, PML4 + 0x1000, (PML4 + 0x2000) | 7);
  for (uint64_t i = 0; i < 2; i++) {
    put64(f->mem, PML4 + 0x2000 + 8 * i, (PT0 + 0x1000 * i) | 7);
    for (uint64_t j = 0; j < 512; j++) put64(f->mem, PT0 + 0x1000 * i + 8 * j, ((i * 512 + j) << 12) | 7);
  }
  static const uint8_t load[] = {0x8b, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, 0xf4};
  static const uint8_t cr3[] = {0x0f, 0x22, 0xd8, 0xf4};
  static const uint8_t invlpg[] = {0x0f, 0x01, 0x38, 0xf4};
  memcpy(f->mem + LOAD_5000, load, sizeof load);
  memcpy(f->mem + STUB_CR3, cr3, sizeof cr3);
  memcpy(f->mem + STUB_INVLPG, invlpg, sizeof invlpg);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  free(f->mem);
  free(f);
  return 0;
}

/* Runs from `at` to the next hlt (stopping at `hlt` keeps the end address out of the
 * block cache, which an `until` address would invalidate). */
static void run(uc_engine *uc, uint64_t at) { assert_int_equal(uc_emu_start(uc, at, END, 0, 0), UC_ERR_OK); }

static uint32_t eax(uc_engine *uc) {
  uint32_t v;
  uc_reg_read(uc, UC_X86_REG_EAX, &v);
  return v;
}

static void an_engine_sees_its_own_code_writes(void **state) {
  struct fx *f = *state;
  /* 0x4000: mov dword [0x400d], 0x2222 ; nop ; mov eax, 0x1111 (imm at 0x400d) ; hlt */
  static const uint8_t same_block[] = {0xc7, 0x04, 0x25, 0x0d, 0x40, 0x00, 0x00, 0x22, 0x22, 0x00, 0x00,
                                       0x90, 0xb8, 0x11, 0x11, 0x00, 0x00, 0xf4};
  memcpy(f->mem + 0x4000, same_block, sizeof same_block);
  uc_engine *uc = engine(f);
  run(uc, 0x4000);
  assert_int_equal(eax(uc), 0x2222);
  /* Another block: translate 0x6000, patch it from 0x7000, run it again. */
  static const uint8_t target[] = {0xb8, 0x11, 0x11, 0x00, 0x00, 0xf4};
  static const uint8_t patcher[] = {0xc7, 0x04, 0x25, 0x01, 0x60, 0x00, 0x00, 0x33, 0x33, 0x00, 0x00, 0xf4};
  memcpy(f->mem + 0x6000, target, sizeof target);
  memcpy(f->mem + 0x7000, patcher, sizeof patcher);
  run(uc, 0x6000);
  assert_int_equal(eax(uc), 0x1111);
  run(uc, 0x7000);
  run(uc, 0x6000);
  assert_int_equal(eax(uc), 0x3333);
  uc_close(uc);
}

static void other_engines_and_the_host_need_remove_cache(void **state) {
  struct fx *f = *state;
  static const uint8_t target[] = {0xb8, 0x11, 0x11, 0x00, 0x00, 0xf4};
  static const uint8_t patcher[] = {0xc7, 0x04, 0x25, 0x01, 0x60, 0x00, 0x00, 0x44, 0x44, 0x00, 0x00, 0xf4};
  memcpy(f->mem + 0x6000, target, sizeof target);
  memcpy(f->mem + 0x7000, patcher, sizeof patcher);
  uc_engine *a = engine(f), *b = engine(f);
  run(a, 0x6000);
  assert_int_equal(eax(a), 0x1111);
  run(b, 0x7000); /* engine b writes a's code */
  run(a, 0x6000);
  assert_int_equal(eax(a), 0x1111); /* stale */
  assert_int_equal(uc_ctl_remove_cache(a, 0x6000, 0x7000), UC_ERR_OK);
  run(a, 0x6000);
  assert_int_equal(eax(a), 0x4444);
  f->mem[0x6001] = 0x55; /* the host writes it */
  f->mem[0x6002] = 0x55;
  run(a, 0x6000);
  assert_int_equal(eax(a), 0x4444); /* stale */
  uc_ctl_remove_cache(a, 0x6000, 0x7000);
  run(a, 0x6000);
  assert_int_equal(eax(a), 0x5555);
  uc_close(a);
  uc_close(b);
}

/* Loads 0x5000 through the TLB, unmaps it in the page table, applies `flush`, and
 * returns whether the next load faults (i.e. the flush worked). */
static bool flush_works(struct fx *f, void (*flush)(uc_engine *)) {
  put64(f->mem, PT0 + 8 * 5, 0x5000 | 7);
  uc_engine *uc = engine(f);
  unsigned before = f->faults;
  run(uc, LOAD_5000);
  put64(f->mem, PT0 + 8 * 5, 0);
  run(uc, LOAD_5000);
  assert_int_equal(f->faults, before); /* the stale TLB entry still serves the load */
  flush(uc);
  run(uc, LOAD_5000);
  bool faulted = f->faults != before;
  uc_close(uc);
  return faulted;
}

static void write_cr3(uc_engine *uc) {
  uint64_t cr3 = PML4;
  uc_reg_write(uc, UC_X86_REG_CR3, &cr3);
}
static void flush_tlb_ctl(uc_engine *uc) { uc_ctl_flush_tlb(uc); }
static void stub_mov_cr3(uc_engine *uc) {
  uint64_t rax = PML4;
  uc_reg_write(uc, UC_X86_REG_RAX, &rax);
  run(uc, STUB_CR3);
}
static void stub_invlpg(uc_engine *uc) {
  uint64_t rax = 0x5000;
  uc_reg_write(uc, UC_X86_REG_RAX, &rax);
  run(uc, STUB_INVLPG);
}

static void only_guest_instructions_flush_the_tlb(void **state) {
  struct fx *f = *state;
  assert_false(flush_works(f, write_cr3));
  assert_false(flush_works(f, flush_tlb_ctl));
  assert_true(flush_works(f, stub_mov_cr3));
  assert_true(flush_works(f, stub_invlpg));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(an_engine_sees_its_own_code_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(other_engines_and_the_host_need_remove_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(only_guest_instructions_flush_the_tlb, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
