/* test_mmu_paging.c — the software page walk against the SDM: translation,
 * effective rights, every #PF error-code bit, reserved bits, CR0.WP, SMEP/SMAP,
 * large pages, accessed/dirty updates, and the guest-memory accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_pt.h"
#include "mmu/paging.h"

#define MEM_BYTES (UINT64_C(8) << 20) /* 8 MiB guest */
#define TABLES UINT64_C(0x100000)       /* page tables at 1 MiB .. 2 MiB */
#define TABLES_END UINT64_C(0x200000)
#define DATA UINT64_C(0x400000)         /* test pages from 4 MiB */

struct fx {
  uint8_t *mem;
  struct guest_mem gm;
  struct guest_pt pt;
  struct paging_ctx ctx;
  uint64_t nonresident_gfn; /* ~0: all resident */
};

static bool fx_resident(void *c, uint64_t gfn) { return gfn != ((struct fx *)c)->nonresident_gfn; }

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  f->mem = calloc(1, MEM_BYTES);
  f->gm = (struct guest_mem){f->mem, MEM_BYTES, PAGING_MAXPHYADDR_DEFAULT, fx_resident, f};
  f->nonresident_gfn = ~UINT64_C(0);
  gpt_init(&f->pt, f->mem, MEM_BYTES, TABLES, TABLES_END);
  f->ctx = (struct paging_ctx){.cr3 = f->pt.cr3, .nxe = true, .wp = true, .gbpages = true};
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  free(f->mem);
  free(f);
  return 0;
}

static const struct paging_access SR = {PAGING_READ, PAGING_SUPERVISOR};
static const struct paging_access SW = {PAGING_WRITE, PAGING_SUPERVISOR};
static const struct paging_access SX = {PAGING_FETCH, PAGING_SUPERVISOR};
static const struct paging_access SIR = {PAGING_READ, PAGING_SUPERVISOR_IMPLICIT};
static const struct paging_access UR = {PAGING_READ, PAGING_USER};
static const struct paging_access UW = {PAGING_WRITE, PAGING_USER};
static const struct paging_access UX = {PAGING_FETCH, PAGING_USER};

static struct paging_walk walk(struct fx *f, uint64_t va, struct paging_access a) {
  struct paging_walk w;
  paging_walk(&f->gm, &f->ctx, va, a, 0, &w);
  return w;
}

/* The error code of a faulting access; fails the test if it does not fault. */
static uint32_t ec_of(struct fx *f, uint64_t va, struct paging_access a) {
  struct paging_walk w = walk(f, va, a);
  assert_int_equal(w.status, PAGING_FAULT);
  return w.error_code;
}

static void translates_4k_page_and_reports_effective_rights(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_RW | PTE_US);
  struct paging_walk w = walk(f, DATA + 0x123, UW);
  assert_int_equal(w.status, PAGING_OK);
  assert_int_equal(w.pa, DATA + 0x123);
  assert_int_equal(w.page_size, PAGING_PAGE_SIZE);
  assert_true(w.writable && w.user && !w.nx);
  assert_int_equal(w.level, 1);
  assert_int_equal(w.n_entries, 4);
  assert_int_equal(w.entry_pa[0], f->pt.cr3 + ((DATA >> 39) & 511) * 8);
  /* A non-identity leaf still translates: the walker is architectural. */
  gpt_map(&f->pt, DATA + 0x1000, 0x7000, 1, PTE_P);
  w = walk(f, DATA + 0x1008, SR);
  assert_int_equal(w.status, PAGING_OK);
  assert_int_equal(w.pa, 0x7008);
}

static void rights_combine_across_levels(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_RW | PTE_US);
  /* Clearing R/W in the PDE makes the page read-only; U/S in the PDPTE makes it supervisor;
   * XD in the PML4E makes it non-executable. */
  uint64_t pde = gpt_entry(&f->pt, DATA, 2);
  gpt_set(&f->pt, pde, gpt_get(&f->pt, pde) & ~PTE_RW);
  struct paging_walk w = walk(f, DATA, UR);
  assert_true(!w.writable && w.user && !w.nx);
  uint64_t pdpte = gpt_entry(&f->pt, DATA, 3);
  gpt_set(&f->pt, pdpte, gpt_get(&f->pt, pdpte) & ~PTE_US);
  uint64_t pml4e = gpt_entry(&f->pt, DATA, 4);
  gpt_set(&f->pt, pml4e, gpt_get(&f->pt, pml4e) | PTE_XD);
  w = walk(f, DATA, SR);
  assert_int_equal(w.status, PAGING_OK);
  assert_true(!w.writable && !w.user && w.nx);
  assert_int_equal(ec_of(f, DATA, UR), PF_EC_P | PF_EC_U);
  assert_int_equal(ec_of(f, DATA, SX), PF_EC_P | PF_EC_I);
}

static void not_present_at_each_level_has_p_clear(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_RW | PTE_US);
  for (int level = 1; level <= 4; level++) {
    uint64_t epa = gpt_entry(&f->pt, DATA, level);
    uint64_t saved = gpt_get(&f->pt, epa);
    /* Not-present entries may hold anything, reserved bits included: P=0 wins. */
    gpt_set(&f->pt, epa, (saved & ~PTE_P) | (UINT64_C(1) << 50) | PTE_PS);
    struct paging_walk w = walk(f, DATA, SR);
    assert_int_equal(w.status, PAGING_FAULT);
    assert_int_equal(w.error_code, 0);
    assert_int_equal(w.level, level);
    assert_int_equal(ec_of(f, DATA, UW), PF_EC_W | PF_EC_U);
    assert_int_equal(ec_of(f, DATA, UX), PF_EC_U | PF_EC_I);
    gpt_set(&f->pt, epa, saved);
  }
}

static void write_to_read_only_and_user_to_supervisor(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_US);      /* user, read-only */
  gpt_map(&f->pt, DATA + 0x1000, DATA + 0x1000, 1, PTE_P | PTE_RW); /* supervisor */
  assert_int_equal(ec_of(f, DATA, UW), PF_EC_P | PF_EC_W | PF_EC_U);
  assert_int_equal(walk(f, DATA, UR).status, PAGING_OK);
  assert_int_equal(ec_of(f, DATA + 0x1000, UR), PF_EC_P | PF_EC_U);
  assert_int_equal(ec_of(f, DATA + 0x1000, UW), PF_EC_P | PF_EC_W | PF_EC_U);
  assert_int_equal(walk(f, DATA + 0x1000, SW).status, PAGING_OK);
}

static void reserved_bits_give_rsvd_with_p(void **state) {
  struct fx *f = *state;
  const uint64_t high = UINT64_C(1) << PAGING_MAXPHYADDR_DEFAULT; /* first bit above MAXPHYADDR */
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_RW | PTE_US);
  for (int level = 1; level <= 4; level++) {
    uint64_t epa = gpt_entry(&f->pt, DATA, level);
    uint64_t saved = gpt_get(&f->pt, epa);
    gpt_set(&f->pt, epa, saved | high);
    assert_int_equal(ec_of(f, DATA, SR), PF_EC_P | PF_EC_RSVD);
    assert_int_equal(ec_of(f, DATA, UW), PF_EC_P | PF_EC_RSVD | PF_EC_W | PF_EC_U);
    assert_int_equal(walk(f, DATA, SR).level, level);
    gpt_set(&f->pt, epa, saved);
  }
  /* PS in a PML4E is reserved. */
  uint64_t pml4e = gpt_entry(&f->pt, DATA, 4);
  gpt_set(&f->pt, pml4e, gpt_get(&f->pt, pml4e) | PTE_PS);
  assert_int_equal(ec_of(f, DATA, SX), PF_EC_P | PF_EC_RSVD | PF_EC_I);
  gpt_set(&f->pt, pml4e, gpt_get(&f->pt, pml4e) & ~PTE_PS);
  /* XD without EFER.NXE is reserved; with NXE it is a permission. */
  uint64_t pte = gpt_entry(&f->pt, DATA, 1);
  gpt_set(&f->pt, pte, gpt_get(&f->pt, pte) | PTE_XD);
  f->ctx.nxe = false;
  assert_int_equal(ec_of(f, DATA, SR), PF_EC_P | PF_EC_RSVD);
  f->ctx.nxe = true;
  assert_int_equal(walk(f, DATA, SR).status, PAGING_OK);
  /* A smaller MAXPHYADDR makes lower bits reserved. */
  gpt_set(&f->pt, pte, (gpt_get(&f->pt, pte) & ~PTE_XD) | (UINT64_C(1) << 40));
  assert_int_equal(walk(f, DATA, SR).status, PAGING_OK);
  f->gm.maxphyaddr = 40;
  assert_int_equal(ec_of(f, DATA, SR), PF_EC_P | PF_EC_RSVD);
}

static void large_page_reserved_bits(void **state) {
  struct fx *f = *state;
  /* 2 MiB page: bits 20:13 reserved; bit 12 is PAT. */
  uint64_t pde = gpt_map(&f->pt, 0x600000, 0x600000, 2, PTE_P | PTE_RW);
  gpt_set(&f->pt, pde, gpt_get(&f->pt, pde) | (UINT64_C(1) << 12));
  assert_int_equal(walk(f, 0x600000, SR).status, PAGING_OK);
  gpt_set(&f->pt, pde, gpt_get(&f->pt, pde) | (UINT64_C(1) << 13));
  assert_int_equal(ec_of(f, 0x600000, SR), PF_EC_P | PF_EC_RSVD);
  /* 1 GiB page: bits 29:13 reserved; PS reserved entirely without 1 GiB pages. */
  uint64_t pdpte = gpt_map(&f->pt, UINT64_C(1) << 30, 0, 3, PTE_P);
  assert_int_equal(walk(f, (UINT64_C(1) << 30) + 0x5000, SR).pa, 0x5000);
  f->ctx.gbpages = false;
  assert_int_equal(ec_of(f, UINT64_C(1) << 30, SR), PF_EC_P | PF_EC_RSVD);
  f->ctx.gbpages = true;
  gpt_set(&f->pt, pdpte, gpt_get(&f->pt, pdpte) | (UINT64_C(1) << 29));
  assert_int_equal(ec_of(f, UINT64_C(1) << 30, SR), PF_EC_P | PF_EC_RSVD);
}

static void instruction_fetch_bit_needs_nxe_or_smep(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_XD);
  gpt_map(&f->pt, DATA + 0x1000, DATA + 0x1000, 1, PTE_P | PTE_US);
  /* NXE: a fetch from an XD page is a protection fault with I/D. */
  assert_int_equal(ec_of(f, DATA, SX), PF_EC_P | PF_EC_I);
  assert_int_equal(ec_of(f, DATA + 0x2000, SX), PF_EC_I); /* not present */
  assert_int_equal(walk(f, DATA, SR).status, PAGING_OK);
  /* Without NXE and SMEP, a fetch fault carries no I/D. */
  f->ctx.nxe = false;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P);
  assert_int_equal(walk(f, DATA, SX).status, PAGING_OK);
  assert_int_equal(ec_of(f, DATA + 0x2000, SX), 0);
  assert_int_equal(ec_of(f, DATA + 0x2000, UX), PF_EC_U);
  /* SMEP alone makes I/D reported. */
  f->ctx.smep = true;
  assert_int_equal(ec_of(f, DATA + 0x2000, SX), PF_EC_I);
  assert_int_equal(ec_of(f, DATA + 0x1000, SX), PF_EC_P | PF_EC_I);
}

static void cr0_wp_governs_supervisor_writes_only(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P);                 /* supervisor read-only */
  gpt_map(&f->pt, DATA + 0x1000, DATA + 0x1000, 1, PTE_P | PTE_US); /* user read-only */
  assert_int_equal(ec_of(f, DATA, SW), PF_EC_P | PF_EC_W);
  assert_int_equal(ec_of(f, DATA + 0x1000, SW), PF_EC_P | PF_EC_W);
  f->ctx.wp = false;
  assert_int_equal(walk(f, DATA, SW).status, PAGING_OK);
  assert_int_equal(walk(f, DATA + 0x1000, SW).status, PAGING_OK);
  assert_int_equal(ec_of(f, DATA + 0x1000, UW), PF_EC_P | PF_EC_W | PF_EC_U);
}

static void smep_and_smap(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_RW | PTE_US);
  f->ctx.smep = true;
  assert_int_equal(ec_of(f, DATA, SX), PF_EC_P | PF_EC_I);
  assert_int_equal(walk(f, DATA, UX).status, PAGING_OK);
  assert_int_equal(walk(f, DATA, SR).status, PAGING_OK); /* SMEP is about fetches only */
  f->ctx.smap = true;
  assert_int_equal(ec_of(f, DATA, SR), PF_EC_P);
  assert_int_equal(ec_of(f, DATA, SW), PF_EC_P | PF_EC_W);
  f->ctx.ac = true; /* stac: explicit accesses allowed, implicit ones still refused */
  assert_int_equal(walk(f, DATA, SR).status, PAGING_OK);
  assert_int_equal(walk(f, DATA, SW).status, PAGING_OK);
  assert_int_equal(ec_of(f, DATA, SIR), PF_EC_P); /* implicit: U/S bit clear */
  assert_int_equal(walk(f, DATA, UR).status, PAGING_OK);
}

static void large_pages_translate_with_offset(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, 0x600000, 0x600000, 2, PTE_P | PTE_RW);
  struct paging_walk w = walk(f, 0x7abcde, SW);
  assert_int_equal(w.status, PAGING_OK);
  assert_int_equal(w.pa, 0x7abcde);
  assert_int_equal(w.page_size, PAGING_SIZE_2M);
  assert_int_equal(w.level, 2);
  assert_int_equal(w.n_entries, 3);
  gpt_map(&f->pt, UINT64_C(3) << 30, UINT64_C(1) << 30, 3, PTE_P);
  w = walk(f, (UINT64_C(3) << 30) + 0x12345678, SR);
  assert_int_equal(w.pa, (UINT64_C(1) << 30) + 0x12345678);
  assert_int_equal(w.page_size, PAGING_SIZE_1G);
  assert_int_equal(w.level, 3);
}

static void accessed_and_dirty_bits_follow_the_hardware(void **state) {
  struct fx *f = *state;
  uint64_t pte = gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_RW);
  struct paging_walk w;
  /* Without the flag nothing is written. */
  paging_walk(&f->gm, &f->ctx, DATA, SW, 0, &w);
  for (unsigned i = 0; i < w.n_entries; i++) assert_false(gpt_get(&f->pt, w.entry_pa[i]) & PTE_A);
  /* A read sets A everywhere, D nowhere. */
  paging_walk(&f->gm, &f->ctx, DATA, SR, PAGING_SET_AD, &w);
  for (unsigned i = 0; i < w.n_entries; i++) {
    assert_true(gpt_get(&f->pt, w.entry_pa[i]) & PTE_A);
    assert_false(gpt_get(&f->pt, w.entry_pa[i]) & PTE_D);
  }
  assert_false(w.dirty);
  /* A faulting write sets nothing. */
  gpt_set(&f->pt, pte, gpt_get(&f->pt, pte) & ~(PTE_A | PTE_RW));
  assert_int_equal(paging_walk(&f->gm, &f->ctx, DATA, UW, PAGING_SET_AD, &w), PAGING_FAULT);
  assert_int_equal(gpt_get(&f->pt, pte) & (PTE_A | PTE_D), 0);
  /* A write sets D in the leaf only — for a 2 MiB page, in the PDE. */
  gpt_set(&f->pt, pte, gpt_get(&f->pt, pte) | PTE_RW);
  paging_walk(&f->gm, &f->ctx, DATA, SW, PAGING_SET_AD, &w);
  assert_true(w.dirty);
  assert_true(gpt_get(&f->pt, pte) & PTE_D);
  assert_false(gpt_get(&f->pt, w.entry_pa[2]) & PTE_D);
  uint64_t pde = gpt_map(&f->pt, 0x600000, 0x600000, 2, PTE_P | PTE_RW);
  paging_walk(&f->gm, &f->ctx, 0x600010, SW, PAGING_SET_AD, &w);
  assert_int_equal(gpt_get(&f->pt, pde) & (PTE_A | PTE_D), PTE_A | PTE_D);
}

static void noncanonical_is_the_callers_gp(void **state) {
  struct fx *f = *state;
  struct paging_walk w = walk(f, UINT64_C(0x0000800000000000), SR);
  assert_int_equal(w.status, PAGING_NONCANONICAL);
  assert_int_equal(w.n_entries, 0);
  assert_true(paging_is_canonical(UINT64_C(0xffff800000000000)));
  assert_true(paging_is_canonical(UINT64_C(0x00007fffffffffff)));
  assert_false(paging_is_canonical(UINT64_C(0xfff0800000000000)));
  /* The upper half walks by bits 47:12 like any other address. */
  gpt_map(&f->pt, UINT64_C(0xffff800000000000) + DATA, DATA, 1, PTE_P);
  assert_int_equal(walk(f, UINT64_C(0xffff800000000000) + DATA, SR).pa, DATA);
}

static void tables_outside_ram_and_nonresident_tables(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P);
  struct paging_walk w;
  /* The PT page is not resident on the host: a host fault on that table, not a #PF. */
  uint64_t pte = gpt_entry(&f->pt, DATA, 1);
  f->nonresident_gfn = pte >> 12;
  assert_int_equal(paging_walk(&f->gm, &f->ctx, DATA, SR, PAGING_SET_AD, &w), PAGING_HOST_FAULT);
  assert_int_equal(w.gfn, pte >> 12);
  assert_true(w.in_walk);
  assert_int_equal(w.level, 1);
  assert_false(gpt_get(&f->pt, w.entry_pa[0]) & PTE_A);
  f->nonresident_gfn = ~UINT64_C(0);
  /* A PDE pointing past guest RAM. */
  uint64_t pde = gpt_entry(&f->pt, DATA, 2);
  gpt_set(&f->pt, pde, (MEM_BYTES + 0x3000) | PTE_P | PTE_RW);
  assert_int_equal(paging_walk(&f->gm, &f->ctx, DATA, SR, 0, &w), PAGING_BAD_TABLE);
  assert_int_equal(w.bad_pa, MEM_BYTES + 0x3000 + ((DATA >> 12) & 511) * 8);
  f->ctx.cr3 = MEM_BYTES;
  assert_int_equal(walk(f, DATA, SR).status, PAGING_BAD_TABLE);
}

static void accessors_check_every_page_before_copying(void **state) {
  struct fx *f = *state;
  gpt_identity(&f->pt, DATA, DATA + 0x2000, PTE_P | PTE_RW);
  gpt_map(&f->pt, DATA + 0x2000, DATA + 0x2000, 1, PTE_P); /* read-only */
  uint8_t buf[64];
  memset(buf, 0xab, sizeof buf);
  struct paging_walk w;
  /* Spanning two writable pages. */
  assert_int_equal(paging_write(&f->gm, &f->ctx, DATA + 0x1000 - 8, buf, 16, PAGING_SUPERVISOR, &w), PAGING_OK);
  assert_int_equal(f->mem[DATA + 0x1000 - 8], 0xab);
  assert_int_equal(f->mem[DATA + 0x1007], 0xab);
  assert_true(gpt_get(&f->pt, gpt_entry(&f->pt, DATA + 0x1000, 1)) & PTE_D);
  /* The second page is read-only: nothing is written, the first page gets no D. */
  uint64_t pte1 = gpt_entry(&f->pt, DATA + 0x1000, 1);
  gpt_set(&f->pt, pte1, gpt_get(&f->pt, pte1) & ~(PTE_A | PTE_D));
  memset(buf, 0xcd, sizeof buf);
  assert_int_equal(paging_write(&f->gm, &f->ctx, DATA + 0x2000 - 8, buf, 16, PAGING_SUPERVISOR, &w),
                   PAGING_FAULT);
  assert_int_equal(w.error_code, PF_EC_P | PF_EC_W);
  assert_int_equal(w.va, DATA + 0x2000); /* CR2 = first byte in the faulting page */
  assert_int_equal(f->mem[DATA + 0x2000 - 8], 0);
  assert_int_equal(gpt_get(&f->pt, pte1) & (PTE_A | PTE_D), 0);
  /* Reads across into the read-only page are fine. */
  f->mem[DATA + 0x2000] = 0x5a;
  assert_int_equal(paging_read(&f->gm, &f->ctx, DATA + 0x2000 - 1, buf, 2, PAGING_SUPERVISOR, &w), PAGING_OK);
  assert_int_equal(buf[1], 0x5a);
  /* A non-resident data page is a host fault, after the guest's own check. */
  f->nonresident_gfn = (DATA + 0x2000) >> 12;
  assert_int_equal(paging_read(&f->gm, &f->ctx, DATA + 0x2000, buf, 4, PAGING_SUPERVISOR, &w), PAGING_HOST_FAULT);
  assert_int_equal(w.gfn, (DATA + 0x2000) >> 12);
  assert_false(w.in_walk);
  assert_int_equal(paging_write(&f->gm, &f->ctx, DATA + 0x2000, buf, 4, PAGING_SUPERVISOR, &w), PAGING_FAULT);
  f->nonresident_gfn = ~UINT64_C(0);
  /* A non-identity leaf breaks the rule Unicorn needs. */
  gpt_map(&f->pt, DATA + 0x3000, DATA, 1, PTE_P);
  assert_int_equal(paging_read(&f->gm, &f->ctx, DATA + 0x3000, buf, 4, PAGING_SUPERVISOR, &w), PAGING_BAD_MAPPING);
  assert_int_equal(w.pa, DATA);
  assert_int_equal(paging_read(&f->gm, &f->ctx, DATA, buf, 0, PAGING_USER, &w), PAGING_OK);
}

static void error_code_decoding_and_cr3_validity(void **state) {
  (void)state;
  struct paging_access a = paging_access_from_error_code(PF_EC_P | PF_EC_W | PF_EC_U, 3);
  assert_int_equal(a.op, PAGING_WRITE);
  assert_int_equal(a.mode, PAGING_USER);
  a = paging_access_from_error_code(PF_EC_I, 0);
  assert_int_equal(a.op, PAGING_FETCH);
  assert_int_equal(a.mode, PAGING_SUPERVISOR);
  a = paging_access_from_error_code(0, 3);
  assert_int_equal(a.op, PAGING_READ);
  assert_int_equal(a.mode, PAGING_SUPERVISOR_IMPLICIT);
  assert_true(paging_cr3_valid(UINT64_C(0x1000) | 0x18, 46));
  assert_false(paging_cr3_valid(UINT64_C(1) << 46, 46));
  assert_string_equal(paging_status_name(PAGING_HOST_FAULT), "host fault");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(translates_4k_page_and_reports_effective_rights, setup, teardown),
      cmocka_unit_test_setup_teardown(rights_combine_across_levels, setup, teardown),
      cmocka_unit_test_setup_teardown(not_present_at_each_level_has_p_clear, setup, teardown),
      cmocka_unit_test_setup_teardown(write_to_read_only_and_user_to_supervisor, setup, teardown),
      cmocka_unit_test_setup_teardown(reserved_bits_give_rsvd_with_p, setup, teardown),
      cmocka_unit_test_setup_teardown(large_page_reserved_bits, setup, teardown),
      cmocka_unit_test_setup_teardown(instruction_fetch_bit_needs_nxe_or_smep, setup, teardown),
      cmocka_unit_test_setup_teardown(cr0_wp_governs_supervisor_writes_only, setup, teardown),
      cmocka_unit_test_setup_teardown(smep_and_smap, setup, teardown),
      cmocka_unit_test_setup_teardown(large_pages_translate_with_offset, setup, teardown),
      cmocka_unit_test_setup_teardown(accessed_and_dirty_bits_follow_the_hardware, setup, teardown),
      cmocka_unit_test_setup_teardown(noncanonical_is_the_callers_gp, setup, teardown),
      cmocka_unit_test_setup_teardown(tables_outside_ram_and_nonresident_tables, setup, teardown),
      cmocka_unit_test_setup_teardown(accessors_check_every_page_before_copying, setup, teardown),
      cmocka_unit_test(error_code_decoding_and_cr3_validity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
