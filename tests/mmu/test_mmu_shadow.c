/* test_mmu_shadow.c — the shadow MMU's verdicts and bookkeeping: fills mirror the
 * guest's rights, exact dirty bits, INVLPG/CR3 drops, eviction via the reverse map,
 * host faults, identity violations, code-coherence states across vCPUs, the table
 * pool running dry, pins, access tracking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_pt.h"
#include "mmu/paging.h"
#include "mmu/shadow.h"

#define GUEST_BYTES (UINT64_C(8) << 20)
#define TABLES UINT64_C(0x100000)
#define TABLES_END UINT64_C(0x200000)
#define DATA UINT64_C(0x400000)
#define SHADOW_BASE GUEST_BYTES
#define SHADOW_BYTES (UINT64_C(1) << 20)
#define PIN (SHADOW_BASE + SHADOW_BYTES) /* the host buffer keeps a page above the pool */
#define ENTRY_ADDR_MASK UINT64_C(0x000ffffffffff000)

#define RWU (PTE_P | PTE_RW | PTE_US)

struct fx {
  uint8_t *mem;
  uint64_t host_bytes;
  struct guest_pt pt;
  struct shadow_mmu *m;
  struct paging_ctx ctx;
  uint64_t evicted; /* one non-resident gfn, ~0 for none */
};

static bool fx_resident(void *c, uint64_t gfn) { return gfn != ((struct fx *)c)->evicted; }

/* guest RAM, then the shadow pool, then one spare page (for a pin). */
static struct fx *make(unsigned n_vcpus, uint64_t guest_bytes, uint64_t shadow_bytes) {
  struct fx *f = calloc(1, sizeof *f);
  f->host_bytes = guest_bytes + shadow_bytes + PAGING_PAGE_SIZE;
  f->mem = calloc(1, f->host_bytes);
  gpt_init(&f->pt, f->mem, guest_bytes, TABLES, TABLES_END);
  struct shadow_config cfg = {f->mem, guest_bytes, PAGING_MAXPHYADDR_DEFAULT, guest_bytes, shadow_bytes, n_vcpus};
  struct diag d;
  f->m = shadow_create(&cfg, &d);
  if (!f->m) fail_msg("%s", d.msg);
  f->evicted = ~UINT64_C(0);
  shadow_set_residency(f->m, fx_resident, f);
  f->ctx = (struct paging_ctx){.cr3 = f->pt.cr3, .nxe = true, .wp = true, .gbpages = true};
  return f;
}

static int setup(void **state) {
  *state = make(3, GUEST_BYTES, SHADOW_BYTES);
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  shadow_destroy(f->m);
  free(f->mem);
  free(f);
  return 0;
}

static const struct paging_access SR = {PAGING_READ, PAGING_SUPERVISOR};
static const struct paging_access SW = {PAGING_WRITE, PAGING_SUPERVISOR};
static const struct paging_access SX = {PAGING_FETCH, PAGING_SUPERVISOR};
static const struct paging_access UR = {PAGING_READ, PAGING_USER};
static const struct paging_access UW = {PAGING_WRITE, PAGING_USER};
static const struct paging_access UX = {PAGING_FETCH, PAGING_USER};

static struct shadow_fault_info fault(struct fx *f, unsigned v, uint64_t va, struct paging_access a) {
  struct shadow_fault_info i;
  shadow_fault(f->m, v, &f->ctx, va, a, &i);
  return i;
}

static bool flushes(struct fx *f, unsigned v, uint64_t va, struct paging_access a) {
  struct shadow_fault_info i = fault(f, v, va, a);
  return shadow_flush_needed(&i.flush);
}

static enum shadow_verdict verdict(struct fx *f, unsigned v, uint64_t va, struct paging_access a) {
  return fault(f, v, va, a).verdict;
}

/* What Unicorn would decide on the shadow: the walk of the shadow root under the
 * controls the vCPU runs Unicorn with (WP=1, NXE=1, the guest's SMEP/SMAP). */
static bool unicorn_allows(struct fx *f, unsigned v, uint64_t va, struct paging_access a) {
  struct guest_mem whole = {f->mem, f->host_bytes, PAGING_MAXPHYADDR_DEFAULT, NULL, NULL};
  struct paging_ctx u = f->ctx;
  u.cr3 = shadow_root(f->m, v);
  u.wp = true;
  u.nxe = true;
  struct paging_walk w;
  return paging_walk(&whole, &u, va, a, 0, &w) == PAGING_OK;
}

static uint64_t leaf(struct fx *f, unsigned v, uint64_t va) { return shadow_leaf(f->m, v, va); }

static uint64_t guest_pte(struct fx *f, uint64_t va) { return gpt_get(&f->pt, gpt_entry(&f->pt, va, 1)); }

static void fill_mirrors_the_guests_effective_rights(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  struct shadow_fault_info i = fault(f, 0, DATA + 0x10, UR);
  assert_int_equal(i.verdict, SHADOW_FILLED);
  assert_false(shadow_flush_needed(&i.flush));
  uint64_t e = leaf(f, 0, DATA);
  assert_int_equal(e & ENTRY_ADDR_MASK, DATA); /* identity leaf */
  assert_int_equal(e & (PTE_P | PTE_RW | PTE_US), PTE_P | PTE_RW | PTE_US);
  assert_true(e & PTE_XD); /* DATA state: not executable until fetched */
  assert_true(unicorn_allows(f, 0, DATA, UW));
  /* Guest A flags were set by the fill, in every level. */
  for (unsigned k = 0; k < i.walk.n_entries; k++) assert_true(gpt_get(&f->pt, i.walk.entry_pa[k]) & PTE_A);
  /* Rights are ANDed over the guest levels: R/W=0 in the PDE, U/S=0 in the PDPTE. */
  uint64_t va2 = DATA + PAGING_SIZE_2M;
  gpt_map(&f->pt, va2, va2, 1, RWU | PTE_D);
  uint64_t pde = gpt_entry(&f->pt, va2, 2);
  gpt_set(&f->pt, pde, gpt_get(&f->pt, pde) & ~PTE_RW);
  assert_int_equal(verdict(f, 0, va2, UR), SHADOW_FILLED);
  assert_int_equal(leaf(f, 0, va2) & (PTE_RW | PTE_US), PTE_US);
  uint64_t pdpte = gpt_entry(&f->pt, DATA, 3);
  gpt_set(&f->pt, pdpte, gpt_get(&f->pt, pdpte) & ~PTE_US);
  shadow_cr3_load(f->m, 0, f->ctx.cr3);
  assert_int_equal(verdict(f, 0, DATA, SR), SHADOW_FILLED);
  assert_int_equal(leaf(f, 0, DATA) & (PTE_RW | PTE_US), PTE_RW);
  assert_false(unicorn_allows(f, 0, DATA, UR));
}

static void read_only_until_the_first_write_keeps_dirty_exact(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU);
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_false(leaf(f, 0, DATA) & PTE_RW);
  assert_int_equal(guest_pte(f, DATA) & (PTE_A | PTE_D), PTE_A);
  assert_false(unicorn_allows(f, 0, DATA, UW)); /* the first write traps... */
  assert_int_equal(verdict(f, 0, DATA, UW), SHADOW_FILLED);
  assert_true(guest_pte(f, DATA) & PTE_D); /* ...and sets D */
  assert_true(unicorn_allows(f, 0, DATA, UW));
  assert_int_equal(shadow_stats(f->m)->dirty_upgrades, 1);
  /* A read of an already dirty page maps it writable at once. */
  shadow_cr3_load(f->m, 0, f->ctx.cr3);
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_true(leaf(f, 0, DATA) & PTE_RW);
  /* Guest clears D and flushes: the next write sets it again. */
  gpt_set(&f->pt, gpt_entry(&f->pt, DATA, 1), guest_pte(f, DATA) & ~PTE_D);
  shadow_invlpg(f->m, 0, DATA);
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_false(leaf(f, 0, DATA) & PTE_RW);
  assert_int_equal(verdict(f, 0, DATA, SW), SHADOW_FILLED);
  assert_true(guest_pte(f, DATA) & PTE_D);
}

static void guest_faults_carry_the_walks_error_code(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_US | PTE_XD); /* user, read-only, no-execute */
  struct shadow_fault_info i = fault(f, 0, DATA + 0x1000, UR); /* not mapped */
  assert_int_equal(i.verdict, SHADOW_GUEST_FAULT);
  assert_int_equal(i.error_code, PF_EC_U);
  assert_int_equal(leaf(f, 0, DATA + 0x1000), 0);
  assert_int_equal(fault(f, 0, DATA, UW).error_code, PF_EC_P | PF_EC_W | PF_EC_U);
  assert_int_equal(fault(f, 0, DATA, UX).error_code, PF_EC_P | PF_EC_U | PF_EC_I);
  assert_int_equal(leaf(f, 0, DATA), 0); /* refused accesses fill nothing */
  assert_int_equal(guest_pte(f, DATA) & PTE_A, 0);
  gpt_set(&f->pt, gpt_entry(&f->pt, DATA, 1), guest_pte(f, DATA) | (UINT64_C(1) << 48));
  assert_int_equal(fault(f, 0, DATA, SR).error_code, PF_EC_P | PF_EC_RSVD);
  f->ctx.nxe = false; /* XD becomes reserved; fetch faults lose I/D */
  gpt_map(&f->pt, DATA + 0x2000, DATA + 0x2000, 1, PTE_P);
  assert_int_equal(verdict(f, 0, DATA + 0x2000, SX), SHADOW_FILLED);
  assert_int_equal(fault(f, 0, DATA + 0x3000, SX).error_code, 0);
  char buf[256];
  i = fault(f, 0, DATA + 0x3000, UW);
  shadow_describe(&i, buf, sizeof buf);
  assert_non_null(strstr(buf, "guest page fault: user write of va 0x403000, error code 0x6"));
  assert_int_equal(shadow_stats(f->m)->guest_faults, 6);
}

static void invlpg_and_cr3_load_drop_entries(void **state) {
  struct fx *f = *state;
  gpt_identity(&f->pt, DATA, DATA + 0x2000, RWU | PTE_D);
  uint64_t root = shadow_root(f->m, 0);
  uint64_t tables0 = shadow_stats(f->m)->tables_in_use;
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_int_equal(verdict(f, 0, DATA + 0x1000, UR), SHADOW_FILLED);
  assert_int_equal(shadow_stats(f->m)->tables_in_use, tables0 + 3);
  shadow_invlpg(f->m, 0, DATA);
  assert_int_equal(leaf(f, 0, DATA), 0);
  assert_true(leaf(f, 0, DATA + 0x1000) & PTE_P);
  shadow_invlpg(f->m, 0, UINT64_C(0x0000900000000000)); /* non-canonical: no-op */
  shadow_cr3_load(f->m, 0, f->ctx.cr3);
  assert_int_equal(leaf(f, 0, DATA + 0x1000), 0);
  assert_int_equal(shadow_root(f->m, 0), root);
  assert_int_equal(shadow_stats(f->m)->tables_in_use, tables0);
  /* Another vCPU's shadow is untouched by this vCPU's CR3 load. */
  assert_int_equal(verdict(f, 1, DATA, UR), SHADOW_FILLED);
  shadow_cr3_load(f->m, 0, f->ctx.cr3);
  assert_true(leaf(f, 1, DATA) & PTE_P);
}

static void invlpg_drops_every_piece_of_a_guest_large_page(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, 0x600000, 0x600000, 2, RWU | PTE_D);
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  for (uint64_t off = 0; off < PAGING_SIZE_2M; off += 0x80000)
    assert_int_equal(verdict(f, 0, 0x600000 + off, UW), SHADOW_FILLED);
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_true(leaf(f, 0, 0x680000) & PTE_RW);
  shadow_invlpg(f->m, 0, 0x7ff000);
  for (uint64_t off = 0; off < PAGING_SIZE_2M; off += 0x80000) assert_int_equal(leaf(f, 0, 0x600000 + off), 0);
  assert_true(leaf(f, 0, DATA) & PTE_P); /* a 4 KiB neighbour is not part of it */
  /* A 1 GiB guest page (only its first 8 MiB are guest RAM) behaves the same way. */
  shadow_cr3_load(f->m, 0, f->ctx.cr3);
  f->pt.cr3 = gpt_new_root(&f->pt);
  gpt_map(&f->pt, 0, 0, 3, RWU | PTE_D);
  f->ctx.cr3 = f->pt.cr3;
  assert_int_equal(verdict(f, 0, 0x5000, UR), SHADOW_FILLED);
  assert_int_equal(verdict(f, 0, 0x700000, UR), SHADOW_FILLED);
  shadow_invlpg(f->m, 0, 0x2000);
  assert_int_equal(leaf(f, 0, 0x5000), 0);
  assert_int_equal(leaf(f, 0, 0x700000), 0);
  /* Beyond guest RAM the same guest page is refused, not filled. */
  struct shadow_fault_info i = fault(f, 0, GUEST_BYTES, UR);
  assert_int_equal(i.verdict, SHADOW_BAD_MAPPING);
  assert_int_equal(i.bad, SHADOW_BAD_OUTSIDE_RAM);
}

static void zap_clears_every_vcpus_entry_through_the_reverse_map(void **state) {
  struct fx *f = *state;
  gpt_identity(&f->pt, DATA, DATA + 0x2000, RWU | PTE_D);
  for (unsigned v = 0; v < 3; v++) assert_int_equal(verdict(f, v, DATA, UR), SHADOW_FILLED);
  assert_int_equal(verdict(f, 0, DATA + 0x1000, UR), SHADOW_FILLED);
  f->evicted = DATA >> 12;
  struct shadow_flush fl;
  shadow_zap_gfn(f->m, DATA >> 12, &fl);
  assert_int_equal(fl.va, DATA);
  assert_int_equal(fl.tlb_vcpus, 7);
  assert_int_equal(fl.full_tlb_vcpus | fl.code_vcpus, 0);
  for (unsigned v = 0; v < 3; v++) assert_int_equal(leaf(f, v, DATA), 0);
  assert_true(leaf(f, 0, DATA + 0x1000) & PTE_P);
  assert_int_equal(shadow_stats(f->m)->zaps, 3);
  /* Non-resident: an EPT violation, and still no present entry. */
  struct shadow_fault_info i = fault(f, 1, DATA + 8, UW);
  assert_int_equal(i.verdict, SHADOW_HOST_FAULT);
  assert_int_equal(i.gfn, DATA >> 12);
  assert_false(i.in_walk);
  assert_int_equal(leaf(f, 1, DATA), 0);
  assert_false(unicorn_allows(f, 1, DATA, SR));
  /* A guest refusal still wins over the host: the guest's #PF comes first. */
  assert_int_equal(verdict(f, 1, DATA + 8, SX), SHADOW_HOST_FAULT);
  gpt_set(&f->pt, gpt_entry(&f->pt, DATA, 1), guest_pte(f, DATA) | PTE_XD);
  shadow_invlpg(f->m, 1, DATA);
  assert_int_equal(verdict(f, 1, DATA + 8, SX), SHADOW_GUEST_FAULT);
  /* Back in: filled again. A zap of a page nobody maps changes nothing. */
  f->evicted = ~UINT64_C(0);
  assert_int_equal(verdict(f, 1, DATA + 8, UW), SHADOW_FILLED);
  shadow_zap_gfn(f->m, (DATA >> 12) + 7, &fl);
  assert_false(shadow_flush_needed(&fl));
  shadow_zap_gfn(f->m, GUEST_BYTES >> 12, &fl);
  assert_false(shadow_flush_needed(&fl));
}

static void nonresident_guest_page_table_is_a_host_fault_on_the_table(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU);
  uint64_t pt_page = gpt_entry(&f->pt, DATA, 1) >> 12;
  f->evicted = pt_page;
  struct shadow_fault_info i = fault(f, 0, DATA, UR);
  assert_int_equal(i.verdict, SHADOW_HOST_FAULT);
  assert_int_equal(i.gfn, pt_page);
  assert_true(i.in_walk);
  char buf[256];
  shadow_describe(&i, buf, sizeof buf);
  assert_non_null(strstr(buf, "reading the guest page table"));
  assert_int_equal(guest_pte(f, DATA) & PTE_A, 0);
}

static void zap_of_a_guest_page_table_drops_every_shadow(void **state) {
  struct fx *f = *state;
  gpt_identity(&f->pt, DATA, DATA + 0x2000, RWU | PTE_D);
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_int_equal(verdict(f, 2, DATA + 0x1000, UR), SHADOW_FILLED);
  struct shadow_flush fl;
  shadow_zap_gfn(f->m, gpt_entry(&f->pt, DATA, 2) >> 12, &fl); /* the page directory */
  assert_int_equal(fl.full_tlb_vcpus, 7);
  assert_int_equal(leaf(f, 0, DATA), 0);
  assert_int_equal(leaf(f, 2, DATA + 0x1000), 0);
  assert_int_equal(shadow_stats(f->m)->table_zaps, 1);
  assert_int_equal(shadow_stats(f->m)->tables_in_use, 3);
}

static void identity_violations_are_reported_clearly(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA + 0x5000, 1, RWU);
  struct shadow_fault_info i = fault(f, 0, DATA + 0x10, UR);
  assert_int_equal(i.verdict, SHADOW_BAD_MAPPING);
  assert_int_equal(i.bad, SHADOW_BAD_NOT_IDENTITY);
  assert_int_equal(i.walk.pa, DATA + 0x5010);
  assert_int_equal(leaf(f, 0, DATA), 0);
  char buf[256];
  shadow_describe(&i, buf, sizeof buf);
  assert_non_null(strstr(buf, "map va 0x400010 to pa 0x405010"));
  /* The shadow area itself must never be reachable from the guest. */
  gpt_map(&f->pt, SHADOW_BASE, SHADOW_BASE, 1, RWU);
  i = fault(f, 0, SHADOW_BASE, SW);
  assert_int_equal(i.bad, SHADOW_BAD_OUTSIDE_RAM);
  /* Upper-half kernel addresses can never be identity. */
  gpt_map(&f->pt, UINT64_C(0xffff800000400000), DATA, 1, RWU);
  assert_int_equal(fault(f, 0, UINT64_C(0xffff800000400000), SR).bad, SHADOW_BAD_NOT_IDENTITY);
  /* A table outside guest RAM. */
  gpt_set(&f->pt, gpt_entry(&f->pt, DATA, 2), SHADOW_BASE | RWU);
  i = fault(f, 0, DATA, SR);
  assert_int_equal(i.bad, SHADOW_BAD_TABLE_OUTSIDE);
  shadow_describe(&i, buf, sizeof buf);
  assert_non_null(strstr(buf, "outside guest RAM"));
  assert_int_equal(shadow_stats(f->m)->bad_mappings, 4);
}

/* ---- code coherence ---- */

static void single_vcpu_page_is_owned_writable_and_executable(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  /* Code and data on one page, one instruction writing its own page: fetch, write, and
   * nothing more faults — no livelock, no flush (Unicorn handles its own engine's SMC). */
  struct shadow_fault_info i = fault(f, 0, DATA, SX);
  assert_int_equal(i.verdict, SHADOW_FILLED);
  assert_false(shadow_flush_needed(&i.flush));
  assert_true(unicorn_allows(f, 0, DATA, SX));
  assert_true(unicorn_allows(f, 0, DATA, SW));
  assert_true(unicorn_allows(f, 0, DATA, UX));
  assert_int_equal(shadow_stats(f->m)->flips, 0);
  /* A data page written first, then fetched, ends up the same way. */
  gpt_map(&f->pt, DATA + 0x1000, DATA + 0x1000, 1, RWU);
  assert_int_equal(verdict(f, 0, DATA + 0x1000, UW), SHADOW_FILLED);
  assert_false(unicorn_allows(f, 0, DATA + 0x1000, UX));
  i = fault(f, 0, DATA + 0x1000, UX);
  assert_false(shadow_flush_needed(&i.flush));
  assert_true(unicorn_allows(f, 0, DATA + 0x1000, UX));
  assert_true(unicorn_allows(f, 0, DATA + 0x1000, UW));
}

static void shared_code_is_never_writable_beside_an_executor(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  assert_int_equal(verdict(f, 0, DATA, SX), SHADOW_FILLED); /* owned by vCPU 0: W+X there */
  assert_true(unicorn_allows(f, 0, DATA, SW));
  /* vCPU 1 runs it too: the page becomes CODE, vCPU 0 loses write (TLB flush), nobody's
   * translated code is stale (only vCPU 0 wrote it, and its engine tracks its writes). */
  struct shadow_fault_info i = fault(f, 1, DATA, SX);
  assert_int_equal(i.flush.tlb_vcpus, 1u << 0);
  assert_int_equal(i.flush.code_vcpus, 0);
  assert_false(unicorn_allows(f, 0, DATA, SW));
  assert_true(unicorn_allows(f, 0, DATA, SX));
  assert_false(unicorn_allows(f, 1, DATA, SW));
  assert_int_equal(verdict(f, 2, DATA, SX), SHADOW_FILLED);
  /* vCPU 2 writes it: owned by 2; 0 and 1 lose execution and drop their code. */
  i = fault(f, 2, DATA + 8, SW);
  assert_int_equal(i.verdict, SHADOW_FILLED);
  assert_int_equal(i.flush.tlb_vcpus, (1u << 0) | (1u << 1));
  assert_int_equal(i.flush.code_vcpus, (1u << 0) | (1u << 1));
  assert_false(unicorn_allows(f, 0, DATA, SX));
  assert_true(unicorn_allows(f, 0, DATA, SR));
  assert_true(unicorn_allows(f, 2, DATA, SX));
  assert_true(unicorn_allows(f, 2, DATA, SW));
  /* vCPU 0 writes it: ownership moves; only 2 can hold code of it. */
  i = fault(f, 0, DATA, SW);
  assert_int_equal(i.flush.tlb_vcpus, 1u << 2);
  assert_int_equal(i.flush.code_vcpus, 1u << 2);
  assert_false(unicorn_allows(f, 2, DATA, SX));
  assert_false(unicorn_allows(f, 2, DATA, SW));
  assert_int_equal(shadow_stats(f->m)->flips, 3);
  assert_int_equal(shadow_stats(f->m)->code_flushes, 3);
}

static void shared_data_is_never_executable_beside_a_writer(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  assert_int_equal(verdict(f, 0, DATA, UW), SHADOW_FILLED);
  assert_int_equal(verdict(f, 1, DATA, UW), SHADOW_FILLED); /* two writers: fine, no code anywhere */
  assert_int_equal(shadow_stats(f->m)->flips, 0);
  struct shadow_fault_info i = fault(f, 1, DATA, UX);
  assert_int_equal(i.flush.tlb_vcpus, 1u << 0); /* the other writer loses write */
  assert_int_equal(i.flush.code_vcpus, 0);
  assert_false(unicorn_allows(f, 0, DATA, UW));
  assert_true(unicorn_allows(f, 1, DATA, UW));
  /* The guest's own NX still rules: a fetch from a guest-NX page is the guest's #PF. */
  gpt_map(&f->pt, DATA + 0x1000, DATA + 0x1000, 1, RWU | PTE_XD);
  i = fault(f, 0, DATA + 0x1000, UX);
  assert_int_equal(i.verdict, SHADOW_GUEST_FAULT);
  assert_int_equal(i.error_code, PF_EC_P | PF_EC_U | PF_EC_I);
}

static void host_writes_name_the_engines_holding_code(void **state) {
  struct fx *f = *state;
  gpt_identity(&f->pt, DATA, DATA + 0x3000, RWU | PTE_D);
  struct shadow_flush fl;
  assert_int_equal(verdict(f, 0, DATA, UW), SHADOW_FILLED); /* DATA */
  shadow_host_write(f->m, DATA >> 12, &fl);
  assert_int_equal(fl.code_vcpus, 0);
  assert_int_equal(verdict(f, 1, DATA + 0x1000, SX), SHADOW_FILLED); /* owned by 1 */
  shadow_host_write(f->m, (DATA >> 12) + 1, &fl);
  assert_int_equal(fl.code_vcpus, 1u << 1);
  assert_int_equal(verdict(f, 1, DATA + 0x2000, SX), SHADOW_FILLED);
  assert_int_equal(verdict(f, 0, DATA + 0x2000, SX), SHADOW_FILLED); /* CODE */
  shadow_host_write(f->m, (DATA >> 12) + 2, &fl);
  assert_int_equal(fl.code_vcpus, 7);
  assert_int_equal(fl.va, DATA + 0x2000);
}

/* ---- pool, controls, pins, accessed ---- */

static void free_fx(struct fx *f) {
  shadow_destroy(f->m);
  free(f->mem);
  free(f);
}

/* One page in each of n 2 MiB regions from 2 MiB up: a shadow PT each. */
static uint64_t region(int k) { return PAGING_SIZE_2M * (uint64_t)(k + 1) + 0x5000; }

static void pool_exhaustion_drops_a_shadow_and_refills(void **state) {
  (void)state;
  /* One vCPU, 8 pool pages: root, PDPT, PD and 5 PTs; the 6th region runs dry. */
  struct fx *f = make(1, UINT64_C(64) << 20, shadow_min_bytes(1));
  for (int k = 0; k < 6; k++) gpt_map(&f->pt, region(k), region(k), 1, RWU | PTE_D);
  for (int k = 0; k < 5; k++) assert_false(flushes(f, 0, region(k), UR));
  assert_int_equal(shadow_stats(f->m)->tables_in_use, 8);
  struct shadow_fault_info i = fault(f, 0, region(5), UR);
  assert_int_equal(i.verdict, SHADOW_FILLED);
  assert_int_equal(i.flush.full_tlb_vcpus, 1u << 0); /* Unicorn's TLB still holds the dropped ones */
  assert_int_equal(shadow_stats(f->m)->exhaustion_resets, 1);
  assert_int_equal(shadow_stats(f->m)->tables_in_use, 4);
  assert_int_equal(leaf(f, 0, region(0)), 0);
  assert_true(unicorn_allows(f, 0, region(5), UW));
  free_fx(f);

  /* Two vCPUs, 12 pages. vCPU 1 holds 3, vCPU 0 fills the rest: dropping vCPU 0's own
   * shadow is enough, vCPU 1 keeps its entries. */
  f = make(2, UINT64_C(64) << 20, shadow_min_bytes(2));
  for (int k = 0; k < 10; k++) gpt_map(&f->pt, region(k), region(k), 1, RWU | PTE_D);
  assert_int_equal(verdict(f, 1, region(0), UR), SHADOW_FILLED);
  for (int k = 1; k <= 5; k++) assert_int_equal(verdict(f, 0, region(k), UR), SHADOW_FILLED);
  assert_int_equal(shadow_stats(f->m)->tables_in_use, 12);
  i = fault(f, 0, region(6), UR);
  assert_int_equal(i.flush.full_tlb_vcpus, 1u << 0);
  assert_true(leaf(f, 1, region(0)) & PTE_P);
  /* vCPU 1 emptied by a CR3 load, vCPU 0 owning every other page: the largest shadow
   * (vCPU 0's) goes, and vCPU 0 flushes its TLB before it runs again. */
  shadow_cr3_load(f->m, 1, f->ctx.cr3);
  for (int k = 7; k <= 9; k++) assert_int_equal(verdict(f, 0, region(k), UR), SHADOW_FILLED);
  for (int k = 1; k <= 4; k++) assert_int_equal(verdict(f, 0, region(k), UR), SHADOW_FILLED);
  assert_int_equal(shadow_stats(f->m)->tables_in_use, 12);
  i = fault(f, 1, region(0), UR);
  assert_int_equal(i.verdict, SHADOW_FILLED);
  assert_int_equal(i.flush.full_tlb_vcpus, 1u << 0);
  assert_int_equal(leaf(f, 0, region(7)), 0);
  assert_true(unicorn_allows(f, 1, region(0), UR));
  assert_int_equal(shadow_stats(f->m)->exhaustion_resets, 2);
  free_fx(f);
}

static void changed_paging_controls_reset_the_shadow(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_D);
  assert_int_equal(verdict(f, 0, DATA, SR), SHADOW_FILLED);
  assert_int_equal(fault(f, 0, DATA, SW).verdict, SHADOW_GUEST_FAULT);
  /* The guest cleared CR0.WP and the vCPU did not say so: caught at the next fault. */
  f->ctx.wp = false;
  struct shadow_fault_info i = fault(f, 0, DATA, SW);
  assert_int_equal(i.verdict, SHADOW_FILLED);
  assert_int_equal(i.flush.full_tlb_vcpus, 1u << 0);
  assert_int_equal(shadow_stats(f->m)->ctx_resets, 1);
  /* CR0.WP=0: the supervisor may write the read-only page — mapped for it alone. */
  assert_int_equal(leaf(f, 0, DATA) & (PTE_RW | PTE_US), PTE_RW);
  assert_true(guest_pte(f, DATA) & PTE_D);
  /* RFLAGS.AC is not a paging control: no reset. */
  f->ctx.ac = true;
  assert_false(flushes(f, 0, DATA, SR));
  assert_int_equal(shadow_stats(f->m)->ctx_resets, 1);
}

static void cr0_wp_clear_keeps_user_rights_exact(void **state) {
  struct fx *f = *state;
  f->ctx.wp = false;
  f->ctx.smep = true;
  gpt_map(&f->pt, DATA, DATA, 1, PTE_P | PTE_US); /* user read-only */
  assert_int_equal(verdict(f, 0, DATA, SW), SHADOW_FILLED);
  assert_true(unicorn_allows(f, 0, DATA, SW));
  assert_false(unicorn_allows(f, 0, DATA, UR)); /* hidden from the user until it refaults */
  assert_false(unicorn_allows(f, 0, DATA, SX)); /* still no supervisor execution (SMEP) */
  /* The user's leaf takes write back: this vCPU's own TLB must forget it. */
  struct shadow_fault_info i = fault(f, 0, DATA, UR);
  assert_int_equal(i.verdict, SHADOW_FILLED);
  assert_int_equal(i.flush.tlb_vcpus, 1u << 0);
  assert_true(unicorn_allows(f, 0, DATA, UR));
  assert_false(unicorn_allows(f, 0, DATA, UW));
  assert_int_equal(fault(f, 0, DATA, UW).verdict, SHADOW_GUEST_FAULT);
}

static void pins_live_in_every_shadow_and_survive_resets(void **state) {
  struct fx *f = *state;
  struct diag d;
  assert_true(shadow_pin(f->m, PIN, false, true, &d));
  for (unsigned v = 0; v < 3; v++) {
    assert_int_equal(leaf(f, v, PIN) & (ENTRY_ADDR_MASK | PTE_P | PTE_US | PTE_XD | PTE_RW), PIN | PTE_P);
    assert_true(unicorn_allows(f, v, PIN, SX));
    assert_false(unicorn_allows(f, v, PIN, UX));
  }
  shadow_cr3_load(f->m, 1, f->ctx.cr3);
  shadow_invlpg(f->m, 1, PIN);
  assert_true(unicorn_allows(f, 1, PIN, SX));
  struct shadow_flush fl;
  gpt_map(&f->pt, DATA, DATA, 1, RWU);
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  shadow_zap_gfn(f->m, gpt_entry(&f->pt, DATA, 1) >> 12, &fl); /* every shadow dropped */
  assert_true(unicorn_allows(f, 2, PIN, SX));
  assert_false(shadow_pin(f->m, DATA, false, true, &d));
  assert_non_null(strstr(d.msg, "outside guest RAM"));
  assert_false(shadow_pin(f->m, SHADOW_BASE + 0x3000, false, true, &d));
  assert_false(shadow_pin(f->m, PIN + 1, false, true, &d));
}

static void accessed_tracking_for_reclaim(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  struct shadow_flush fl;
  assert_false(shadow_test_and_clear_accessed(f->m, DATA >> 12, &fl));
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_int_equal(verdict(f, 2, DATA, UR), SHADOW_FILLED);
  assert_true(shadow_test_and_clear_accessed(f->m, DATA >> 12, &fl));
  assert_int_equal(fl.tlb_vcpus, 5);
  assert_false(shadow_test_and_clear_accessed(f->m, DATA >> 12, &fl));
  assert_true(leaf(f, 0, DATA) & PTE_P); /* still mapped, just not young */
}

static void accessed_flags_survive_dropped_leaves(void **state) {
  struct fx *f = *state;
  gpt_identity(&f->pt, DATA, DATA + 0x3000, RWU | PTE_D);
  struct shadow_flush fl;
  for (unsigned k = 0; k < 3; k++) assert_int_equal(verdict(f, 0, DATA + k * 0x1000, UR), SHADOW_FILLED);
  /* An INVLPG, a CR3 load (context switch) or a reset drops leaves: their accessed flags
   * are kept for reclaim, and consumed by the next test-and-clear. */
  shadow_invlpg(f->m, 0, DATA);
  assert_int_equal(leaf(f, 0, DATA), 0);
  assert_true(shadow_test_and_clear_accessed(f->m, DATA >> 12, &fl));
  assert_int_equal(fl.tlb_vcpus, 0); /* no leaf left to clear */
  assert_false(shadow_test_and_clear_accessed(f->m, DATA >> 12, &fl));
  assert_true(shadow_test_and_clear_accessed(f->m, (DATA >> 12) + 1, &fl)); /* clears the live leaf */
  shadow_cr3_load(f->m, 0, f->ctx.cr3);
  assert_false(shadow_test_and_clear_accessed(f->m, (DATA >> 12) + 1, &fl)); /* it was not young */
  assert_true(shadow_test_and_clear_accessed(f->m, (DATA >> 12) + 2, &fl));  /* young, harvested */
  /* Eviction forgets the page's history. */
  assert_int_equal(verdict(f, 1, DATA, UR), SHADOW_FILLED);
  shadow_reset(f->m, 1);
  shadow_zap_gfn(f->m, DATA >> 12, &fl);
  assert_false(shadow_test_and_clear_accessed(f->m, DATA >> 12, &fl));
}

static void host_clean_pages_are_filled_read_only_until_written(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  struct shadow_flush fl;
  /* Pages start dirty for the host: a read of a guest-dirty page maps it writable. */
  assert_int_equal(verdict(f, 0, DATA, UR), SHADOW_FILLED);
  assert_true(leaf(f, 0, DATA) & PTE_RW);
  /* The host cleans it (a swap-in made it equal to the device copy): write-protected. */
  assert_true(shadow_test_and_clear_dirty(f->m, DATA >> 12, &fl));
  assert_int_equal(fl.tlb_vcpus, 1);
  assert_false(leaf(f, 0, DATA) & PTE_RW);
  assert_int_equal(shadow_stats(f->m)->write_protects, 1);
  assert_int_equal(verdict(f, 1, DATA, UR), SHADOW_FILLED);
  assert_false(leaf(f, 1, DATA) & PTE_RW);
  assert_false(unicorn_allows(f, 1, DATA, UW));
  /* The first write faults once and marks it dirty again. */
  assert_int_equal(verdict(f, 1, DATA, UW), SHADOW_FILLED);
  assert_true(leaf(f, 1, DATA) & PTE_RW);
  assert_true(shadow_test_and_clear_dirty(f->m, DATA >> 12, &fl));
  assert_false(shadow_test_and_clear_dirty(f->m, DATA >> 12, &fl));
  /* A host write (delivery frame, APF area) counts as dirty too. */
  shadow_host_write(f->m, DATA >> 12, &fl);
  assert_true(shadow_test_and_clear_dirty(f->m, DATA >> 12, &fl));
  assert_false(shadow_test_and_clear_dirty(f->m, GUEST_BYTES >> 12, &fl)); /* outside RAM */
  assert_int_equal(shadow_n_vcpus(f->m), 3);
}

static void spurious_faults_fill_nothing_new(void **state) {
  struct fx *f = *state;
  gpt_map(&f->pt, DATA, DATA, 1, RWU | PTE_D);
  assert_int_equal(verdict(f, 0, DATA, UW), SHADOW_FILLED);
  struct shadow_fault_info i = fault(f, 0, DATA, UR); /* e.g. a stale Unicorn TLB entry */
  assert_true(i.spurious);
  assert_int_equal(shadow_stats(f->m)->spurious_fills, 1);
}

static void create_rejects_bad_geometry(void **state) {
  (void)state;
  uint8_t *mem = calloc(1, 0x100000);
  struct diag d;
  struct shadow_config ok = {mem, 0x80000, 46, 0x80000, 0x40000, 2};
  struct shadow_mmu *m = shadow_create(&ok, &d);
  assert_non_null(m);
  assert_int_equal(shadow_root(m, 0), 0x80000);
  assert_int_equal(shadow_root(m, 1), 0x81000);
  shadow_destroy(m);
  struct shadow_config c = ok;
  c.shadow_base = 0x7f000;
  assert_null(shadow_create(&c, &d));
  assert_non_null(strstr(d.msg, "above guest RAM"));
  c = ok;
  c.shadow_bytes = shadow_min_bytes(2) - 0x1000;
  assert_null(shadow_create(&c, &d));
  c = ok;
  c.n_vcpus = 0;
  assert_null(shadow_create(&c, &d));
  c = ok;
  c.guest_bytes = 0x80001;
  assert_null(shadow_create(&c, &d));
  c = ok;
  c.maxphyaddr = 19;
  assert_null(shadow_create(&c, &d));
  free(mem);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(fill_mirrors_the_guests_effective_rights),
      T(read_only_until_the_first_write_keeps_dirty_exact),
      T(guest_faults_carry_the_walks_error_code),
      T(invlpg_and_cr3_load_drop_entries),
      T(invlpg_drops_every_piece_of_a_guest_large_page),
      T(zap_clears_every_vcpus_entry_through_the_reverse_map),
      T(nonresident_guest_page_table_is_a_host_fault_on_the_table),
      T(zap_of_a_guest_page_table_drops_every_shadow),
      T(identity_violations_are_reported_clearly),
      T(single_vcpu_page_is_owned_writable_and_executable),
      T(shared_code_is_never_writable_beside_an_executor),
      T(shared_data_is_never_executable_beside_a_writer),
      T(host_writes_name_the_engines_holding_code),
      cmocka_unit_test(pool_exhaustion_drops_a_shadow_and_refills),
      T(changed_paging_controls_reset_the_shadow),
      T(cr0_wp_clear_keeps_user_rights_exact),
      T(pins_live_in_every_shadow_and_survive_resets),
      T(accessed_tracking_for_reclaim),
      T(accessed_flags_survive_dropped_leaves),
      T(host_clean_pages_are_filled_read_only_until_written),
      T(spurious_faults_fill_nothing_new),
      cmocka_unit_test(create_rejects_bad_geometry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
