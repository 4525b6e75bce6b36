/* test_mmu_reclaim.c — the host memory limit and victim choice, driven through the
 * shadow MMU and the EPT as the vCPU and host layer will drive them (host_fx.h):
 * exact victim sequences for FIFO and CLOCK on scripted access patterns, CLOCK's
 * second chances (also across CR3 loads) and its scan bound, RANDOM reproducible per
 * seed, the budget never exceeded, pinned / in-flight / just-faulted pages never chosen,
 * scripted evictions in time order, whole runs byte-identical, and 100k+ swapped pages
 * costing no memory. No clock anywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>

#include "host_fx.h"

#define MIB (UINT64_C(1) << 20)
#define RAM (8 * MIB)
#define POOL (1 * MIB)
#define PAGE PAGING_PAGE_SIZE

/* RAM with data pages 0..pages-1 mapped, the guest's tables loaded and pinned (so the
 * victims the tests assert are data pages), and reclaim with room for `budget` data
 * pages (0: unlimited). */
static struct hfx *machine(unsigned n_vcpus, uint64_t pages, uint64_t budget, enum reclaim_policy p, uint64_t seed) {
  struct hfx *f = hfx_new(RAM, n_vcpus, POOL);
  hfx_map(f, 0, pages);
  hfx_load_tables(f);
  struct diag d;
  for (uint64_t t = HFX_TABLES; t < f->pt.next_table; t += PAGE)
    if (!ept_pin(f->e, t >> 12, &d)) fail_msg("%s", d.msg);
  uint64_t tables = (f->pt.next_table - HFX_TABLES) / PAGE; /* resident too: in the budget */
  hfx_reclaim(f, budget ? (budget + tables) * PAGE : 0, p, seed);
  return f;
}

static void r(struct hfx *f, uint64_t page) { hfx_access(f, 0, page, false); }
static void w(struct hfx *f, uint64_t page) { hfx_access(f, 0, page, true); }

/* ---- exact victim sequences ---- */

static void fifo_evicts_in_residency_order(void **state) {
  (void)state;
  struct hfx *f = machine(1, 16, 4, RECLAIM_FIFO, 1);
  r(f, 0), r(f, 1), r(f, 2), r(f, 3);
  assert_int_equal(f->log_len, 0);
  r(f, 0); /* FIFO ignores use */
  w(f, 3);
  r(f, 4);
  r(f, 5);
  r(f, 0); /* an unwritten zero page came back as a zero fill: no read */
  r(f, 6);
  r(f, 3); /* written before it went: read back from swap */
  assert_string_equal(f->log, "evict 0x400\n"
                              "evict 0x401\n"
                              "evict 0x402\n"
                              "evict 0x403 dirty\n"
                              "in 0x403\n"
                              "evict 0x404\n");
  const struct reclaim_stats *s = reclaim_stats(f->r);
  assert_int_equal(s->victims, 5);
  assert_int_equal(s->victims_dirty, 1);
  assert_int_equal(s->second_chances, 0);
  assert_int_equal(ept_stats(f->e)->evictions_to_absent, 4);
  hfx_free(f);
}

static void clock_gives_accessed_pages_a_second_chance(void **state) {
  (void)state;
  struct hfx *f = machine(1, 16, 4, RECLAIM_CLOCK, 1);
  r(f, 0), r(f, 1), r(f, 2), r(f, 3);
  /* Every page was just used: one full turn clears them all, then the oldest goes. */
  r(f, 4);
  assert_string_equal(f->log, "evict 0x400\n");
  /* 1 and 3 are used again; 2 is not: the hand passes 1 and takes 2. */
  r(f, 1), r(f, 3);
  r(f, 5);
  assert_string_equal(f->log, "evict 0x400\nevict 0x402\n");
  /* The hand passes 3 (used), 4 and 5 (used when filled) and takes 1 (not used since
   * its second chance). FIFO would have taken 1, then 3. */
  r(f, 6);
  assert_string_equal(f->log, "evict 0x400\nevict 0x402\nevict 0x401\n");
  const struct reclaim_stats *s = reclaim_stats(f->r);
  assert_int_equal(s->victims, 3);
  assert_int_equal(s->second_chances, 4 + 1 + 3);
  assert_int_equal(s->scanned, 5 + 2 + 4);
  assert_int_equal(s->forced, 0);
  assert_int_equal(ept_state(f->e, hfx_gfn(3)), EPT_RESIDENT);
  hfx_free(f);
}

static void clock_remembers_accesses_across_cr3_loads(void **state) {
  (void)state;
  struct hfx *f = machine(1, 16, 4, RECLAIM_CLOCK, 1);
  r(f, 0), r(f, 1), r(f, 2), r(f, 3), r(f, 4);
  assert_string_equal(f->log, "evict 0x400\n");
  r(f, 1);
  /* A guest context switch drops every shadow leaf; the use of page 1 must survive it. */
  shadow_cr3_load(f->m, 0, f->ctx.cr3);
  assert_false(shadow_leaf(f->m, 0, HFX_DATA + PAGE) & PTE_P);
  r(f, 5);
  assert_string_equal(f->log, "evict 0x400\nevict 0x402\n");
  hfx_free(f);
}

static void clock_scan_is_bounded(void **state) {
  (void)state;
  struct hfx *f = machine(1, 16, 8, RECLAIM_CLOCK, 1);
  reclaim_destroy(f->r);
  uint64_t tables = (f->pt.next_table - HFX_TABLES) / PAGE;
  struct reclaim_params rp = {(8 + tables) * PAGE, RECLAIM_CLOCK, 1, 3};
  struct diag d;
  f->r = reclaim_create(f->e, &rp, &d);
  for (uint64_t p = 0; p < 8; p++) r(f, p);
  /* All eight were used: after 3 second chances the page under the hand is taken. */
  r(f, 8);
  assert_string_equal(f->log, "evict 0x403\n");
  const struct reclaim_stats *s = reclaim_stats(f->r);
  assert_int_equal(s->forced, 1);
  assert_int_equal(s->scanned, 3);
  assert_int_equal(s->second_chances, 3);
  hfx_free(f);
}

/* ---- RANDOM ---- */

/* A fixed pseudo-random access pattern (the test's own, independent of the simulator's). */
static uint64_t mix(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static void random_run(struct hfx *f, unsigned n_vcpus, uint64_t pages, unsigned ops, uint64_t pattern_seed) {
  uint64_t x = pattern_seed;
  for (unsigned k = 0; k < ops; k++) {
    uint64_t z = mix(&x);
    unsigned v = (unsigned)(z % n_vcpus);
    uint64_t p = (z >> 8) % pages;
    hfx_access(f, v, p, (z >> 40) % 4 == 0);
    /* The page just faulted in is never the victim of its own fault. */
    assert_int_equal(ept_state(f->e, hfx_gfn(p)), EPT_RESIDENT);
    if ((z >> 48) % 64 == 0) shadow_cr3_load(f->m, v, f->ctx.cr3);
  }
}

static void random_is_reproducible_per_seed(void **state) {
  (void)state;
  struct hfx *a = machine(1, 32, 8, RECLAIM_RANDOM, 7);
  struct hfx *b = machine(1, 32, 8, RECLAIM_RANDOM, 7);
  struct hfx *c = machine(1, 32, 8, RECLAIM_RANDOM, 8);
  random_run(a, 1, 32, 400, 99);
  random_run(b, 1, 32, 400, 99);
  random_run(c, 1, 32, 400, 99);
  assert_true(a->log_len > 0);
  assert_string_equal(a->log, b->log);
  assert_true(strcmp(a->log, c->log) != 0);
  /* Every page of the working set was chosen at some point. */
  for (uint64_t p = 0; p < 32; p++) {
    char want[32];
    snprintf(want, sizeof want, "evict %#llx", (unsigned long long)hfx_gfn(p));
    assert_non_null(strstr(a->log, want));
  }
  hfx_free(a);
  hfx_free(b);
  hfx_free(c);
}

static void random_draws_uniformly_and_skips_the_protected_page(void **state) {
  (void)state;
  /* Eight candidates; evict one, refill it, many times: each page should be drawn about
   * equally often, the protected one never. */
  struct hfx *f = machine(1, 16, 8, RECLAIM_RANDOM, 3);
  for (uint64_t p = 0; p < 8; p++) r(f, p);
  unsigned count[8] = {0};
  const unsigned rounds = 8000;
  for (unsigned k = 0; k < rounds; k++) {
    struct reclaim_eviction ev;
    assert_true(reclaim_evict_one(f->r, hfx_gfn(5), &ev));
    uint64_t p = ev.change.gfn - hfx_gfn(0);
    assert_true(p < 8);
    assert_int_not_equal(p, 5);
    count[p]++;
    r(f, p);
  }
  for (unsigned p = 0; p < 8; p++) {
    if (p == 5) {
      assert_int_equal(count[p], 0);
      continue;
    }
    /* Expected rounds/7 = 1143, sd ~ 32: a 5-sigma band, and the draw is seeded. */
    assert_in_range(count[p], 1143 - 160, 1143 + 160);
  }
  hfx_free(f);
}

/* ---- invariants under load ---- */

static void budget_is_never_exceeded(void **state) {
  (void)state;
  const enum reclaim_policy policies[] = {RECLAIM_FIFO, RECLAIM_CLOCK, RECLAIM_RANDOM};
  for (unsigned k = 0; k < 3; k++) {
    struct hfx *f = machine(2, 48, 16, policies[k], 11);
    struct diag d;
    /* Two pinned data pages (say, APF shared areas). */
    r(f, 40), r(f, 41);
    assert_true(ept_pin(f->e, hfx_gfn(40), &d));
    assert_true(ept_pin(f->e, hfx_gfn(41), &d));
    uint64_t budget = reclaim_budget_pages(f->r);
    uint64_t x = 1234 + k;
    for (unsigned op = 0; op < 3000; op++) {
      uint64_t z = mix(&x);
      unsigned v = (unsigned)(z & 1);
      uint64_t p = (z >> 8) % 48;
      hfx_access(f, v, p, (z >> 40) % 3 == 0);
      assert_true(ept_resident_pages(f->e) <= budget);
      assert_int_equal(ept_state(f->e, hfx_gfn(40)), EPT_RESIDENT);
      assert_int_equal(ept_state(f->e, hfx_gfn(41)), EPT_RESIDENT);
      if (op % 97 == 0) assert_true(hfx_shadow_consistent(f, 0, RAM / PAGE, 2));
      if ((z >> 50) % 50 == 0) shadow_cr3_load(f->m, v, f->ctx.cr3);
    }
    assert_true(hfx_shadow_consistent(f, 0, RAM / PAGE, 2));
    assert_int_equal(f->max_resident_seen, budget);
    const struct reclaim_stats *s = reclaim_stats(f->r);
    assert_true(s->victims > 500);
    assert_true(s->victims_dirty > 100);
    assert_int_equal(s->stuck, 0);
    assert_int_equal(reclaim_candidates(f->r), ept_resident_pages(f->e) - ept_stats(f->e)->pinned);
    hfx_free(f);
  }
}

static void pinned_in_flight_and_protected_pages_are_never_victims(void **state) {
  (void)state;
  struct hfx *f = machine(1, 16, 3, RECLAIM_FIFO, 1);
  f->check_budget = false;
  struct diag d;
  r(f, 0);
  assert_true(ept_pin(f->e, hfx_gfn(0), &d)); /* the oldest page, pinned */
  r(f, 1), r(f, 2);
  /* Page 9 is being read: not resident, not a candidate. */
  assert_true(ept_evict(f->e, hfx_gfn(9), EPT_EVICT_TO_SWAP, NULL, &d));
  assert_true(ept_start_fetch(f->e, hfx_gfn(9), 0, 100, &d));
  r(f, 3);
  assert_string_equal(f->log, "evict 0x401\n");
  /* The read completes: the host balances, protecting page 9. */
  assert_true(ept_complete_fetch(f->e, hfx_gfn(9), NULL, &d));
  assert_int_equal(reclaim_balance(f->r, hfx_gfn(9), hfx_sink, f), 1);
  assert_string_equal(f->log, "evict 0x401\nevict 0x402\n");
  /* Everything else pinned: the new page cannot make room for itself. */
  assert_true(ept_pin(f->e, hfx_gfn(3), &d));
  assert_true(ept_pin(f->e, hfx_gfn(9), &d));
  r(f, 4);
  assert_int_equal(reclaim_stats(f->r)->stuck, 1);
  assert_true(reclaim_over_budget(f->r));
  struct reclaim_eviction ev;
  assert_false(reclaim_evict_one(f->r, hfx_gfn(4), &ev));
  assert_true(reclaim_evict_one(f->r, EPT_NO_GFN, &ev)); /* unprotected, it is the only candidate */
  assert_int_equal(ev.change.gfn, hfx_gfn(4));
  assert_false(reclaim_over_budget(f->r));
  assert_int_equal(ept_state(f->e, hfx_gfn(0)), EPT_RESIDENT);
  hfx_free(f);
}

/* ---- scripted evictions ---- */

static void scripted_evictions_run_in_time_order(void **state) {
  (void)state;
  struct hfx *f = machine(2, 32, 0, RECLAIM_FIFO, 1); /* unlimited: only the script evicts */
  struct diag d;
  w(f, 10);
  r(f, 0), r(f, 1), r(f, 5);
  assert_true(ept_pin(f->e, hfx_gfn(1), &d));
  assert_true(ept_evict(f->e, hfx_gfn(2), EPT_EVICT_TO_SWAP, NULL, &d));
  assert_true(ept_start_fetch(f->e, hfx_gfn(2), 1, 900, &d));
  assert_true(ept_evict(f->e, hfx_gfn(3), EPT_EVICT_TO_SWAP, NULL, &d));
  const struct scripted_eviction script[] = {
      {500, HFX_DATA, 4 * PAGE},               /* pages 0..3 */
      {100, HFX_DATA + 10 * PAGE, 2 * PAGE},   /* pages 10, 11 */
      {500, HFX_DATA + 20 * PAGE, PAGE},       /* page 20 (never touched) */
  };
  assert_true(reclaim_set_script(f->r, script, 3, &d));
  assert_int_equal(reclaim_script_next_ns(f->r), 100);
  struct reclaim_range_result res;
  assert_int_equal(reclaim_script_run_due(f->r, 99, hfx_sink, f, &res), 0);
  assert_int_equal(reclaim_script_run_due(f->r, 100, hfx_sink, f, &res), 1);
  assert_int_equal(res.evicted, 1);
  assert_int_equal(res.dirty, 1);
  assert_int_equal(res.declared_swapped, 1);
  assert_int_equal(res.tlb_vcpus, 1);
  assert_int_equal(reclaim_script_next_ns(f->r), 500);
  assert_int_equal(reclaim_script_run_due(f->r, 1000, hfx_sink, f, &res), 2);
  assert_int_equal(reclaim_script_next_ns(f->r), UINT64_MAX);
  assert_int_equal(res.evicted, 1);          /* page 0 */
  assert_int_equal(res.dirty, 0);
  assert_int_equal(res.declared_swapped, 1); /* page 20 */
  assert_int_equal(res.skipped_pinned, 1);   /* page 1 */
  assert_int_equal(res.skipped_in_flight, 1); /* page 2 */
  assert_int_equal(res.already_swapped, 1);  /* page 3 */
  assert_string_equal(f->log, "evict 0x40a dirty\n"
                              "evict 0x40b\n"
                              "evict 0x400\n"
                              "evict 0x414\n");
  /* A scripted eviction means "on swap": even an unwritten zero fill comes back by a read. */
  assert_int_equal(ept_state(f->e, hfx_gfn(0)), EPT_SWAPPED);
  assert_int_equal(ept_state(f->e, hfx_gfn(11)), EPT_SWAPPED);
  assert_int_equal(ept_state(f->e, hfx_gfn(20)), EPT_SWAPPED);
  assert_int_equal(ept_state(f->e, hfx_gfn(1)), EPT_RESIDENT);
  assert_int_equal(ept_state(f->e, hfx_gfn(5)), EPT_RESIDENT);
  assert_true(hfx_shadow_consistent(f, 0, RAM / PAGE, 2));
  const struct reclaim_stats *s = reclaim_stats(f->r);
  assert_int_equal(s->scripted_runs, 3);
  assert_int_equal(s->scripted_evicted, 2);
  assert_int_equal(s->scripted_declared, 2);
  assert_int_equal(s->scripted_skipped, 2);
  assert_int_equal(s->victims, 0);

  const struct scripted_eviction bad1[] = {{0, HFX_DATA + 12, PAGE}};
  assert_false(reclaim_set_script(f->r, bad1, 1, &d));
  assert_non_null(strstr(d.msg, "page aligned, non-empty and inside guest RAM"));
  const struct scripted_eviction bad2[] = {{0, RAM - PAGE, 2 * PAGE}};
  assert_false(reclaim_set_script(f->r, bad2, 1, &d));
  assert_false(reclaim_evict_range(f->r, HFX_DATA, 0, NULL, NULL, NULL, &d));
  assert_int_equal(reclaim_script_next_ns(f->r), UINT64_MAX); /* a refused script changes nothing */
  hfx_free(f);
}

/* ---- determinism, set-up ---- */

static void whole_runs_are_byte_identical(void **state) {
  (void)state;
  const enum reclaim_policy policies[] = {RECLAIM_FIFO, RECLAIM_CLOCK, RECLAIM_RANDOM};
  for (unsigned k = 0; k < 3; k++) {
    struct hfx *a = machine(2, 40, 12, policies[k], 5);
    struct hfx *b = machine(2, 40, 12, policies[k], 5);
    random_run(a, 2, 40, 1500, 77);
    random_run(b, 2, 40, 1500, 77);
    assert_true(a->log_len > 1000);
    assert_string_equal(a->log, b->log);
    assert_memory_equal(reclaim_stats(a->r), reclaim_stats(b->r), sizeof(struct reclaim_stats));
    assert_memory_equal(ept_stats(a->e), ept_stats(b->e), sizeof(struct ept_stats));
    assert_memory_equal(shadow_stats(a->m), shadow_stats(b->m), sizeof(struct shadow_stats));
    hfx_free(a);
    hfx_free(b);
  }
}

static void unlimited_memory_tracks_nothing(void **state) {
  (void)state;
  struct hfx *f = machine(1, 16, 0, RECLAIM_CLOCK, 1);
  for (uint64_t p = 0; p < 16; p++) w(f, p);
  assert_int_equal(reclaim_budget_pages(f->r), 0);
  assert_false(reclaim_over_budget(f->r));
  assert_int_equal(reclaim_candidates(f->r), 0);
  struct reclaim_eviction ev;
  assert_false(reclaim_evict_one(f->r, EPT_NO_GFN, &ev));
  assert_int_equal(reclaim_balance(f->r, EPT_NO_GFN, NULL, NULL), 0);
  assert_true(reclaim_memory_bytes(f->r) < 1024);
  assert_int_equal(f->log_len, 0);
  hfx_free(f);
}

static void create_rejects_bad_parameters_and_adopts_resident_pages(void **state) {
  (void)state;
  struct hfx *f = hfx_new(RAM, 1, POOL);
  hfx_map(f, 0, 8);
  hfx_load_tables(f);
  struct diag d;
  struct reclaim_params rp = {PAGE + 1, RECLAIM_FIFO, 1, 0};
  assert_null(reclaim_create(f->e, &rp, &d));
  assert_non_null(strstr(d.msg, "not a multiple of 4 KiB"));
  rp = (struct reclaim_params){PAGE, (enum reclaim_policy)9, 1, 0};
  assert_null(reclaim_create(f->e, &rp, &d));
  assert_non_null(strstr(d.msg, "unknown policy"));
  /* Pages resident before reclaim exists are candidates, oldest = lowest gfn. */
  assert_true(ept_host_loaded(f->e, HFX_DATA, 3 * PAGE, &d));
  rp = (struct reclaim_params){PAGE, RECLAIM_FIFO, 1, 0};
  f->r = reclaim_create(f->e, &rp, &d);
  assert_non_null(f->r);
  uint64_t resident = ept_resident_pages(f->e);
  assert_int_equal(reclaim_candidates(f->r), resident);
  /* Over budget from the start: the loaded tables go first (lowest gfns). */
  assert_int_equal(reclaim_balance(f->r, EPT_NO_GFN, hfx_sink, f), resident - 1);
  assert_int_equal(ept_state(f->e, hfx_gfn(2)), EPT_RESIDENT);
  assert_non_null(strstr(f->log, "evict 0x100 dirty\n"));
  assert_string_equal(reclaim_policy_name(RECLAIM_CLOCK), "clock");
  hfx_free(f);
}

/* ---- scale ---- */

static void hundred_thousand_swapped_pages_cost_nothing_per_page(void **state) {
  (void)state;
  const uint64_t ram = 512 * MIB; /* 131072 pages */
  struct hfx *f = hfx_new(ram, 2, POOL);
  hfx_map(f, 0, 100);
  hfx_load_tables(f);
  struct diag d;
  for (uint64_t t = HFX_TABLES; t < f->pt.next_table; t += PAGE) assert_true(ept_pin(f->e, t >> 12, &d));
  uint64_t tables = (f->pt.next_table - HFX_TABLES) / PAGE;
  hfx_reclaim(f, (64 + tables) * PAGE, RECLAIM_CLOCK, 1);
  /* At t=0 the scenario puts 120k pages on swap, the workload's 100 among them. */
  const struct scripted_eviction script[] = {{0, HFX_DATA, 120000 * PAGE}};
  assert_true(reclaim_set_script(f->r, script, 1, &d));
  struct reclaim_range_result res;
  assert_int_equal(reclaim_script_run_due(f->r, 0, NULL, NULL, &res), 1);
  assert_int_equal(res.declared_swapped, 120000);
  size_t ept_bytes = ept_memory_bytes(f->e), reclaim_bytes = reclaim_memory_bytes(f->r);
  /* Warm up once (the in-flight table's first use), then cycle a working set larger than
   * memory: every access a swap-in and an eviction, with 100k+ pages non-resident. */
  for (uint64_t p = 0; p < 100; p++) r(f, p);
  struct mallinfo2 before = mallinfo2();
  for (unsigned round = 0; round < 5; round++)
    for (uint64_t p = 0; p < 100; p++) hfx_access(f, round & 1, p, p % 3 == 0);
  struct mallinfo2 after = mallinfo2();
  assert_int_equal(after.uordblks, before.uordblks);
  assert_int_equal(ept_memory_bytes(f->e), ept_bytes);
  assert_int_equal(reclaim_memory_bytes(f->r), reclaim_bytes);
  assert_true(ept_stats(f->e)->pages[EPT_SWAPPED] > 100000);
  assert_true(reclaim_stats(f->r)->victims >= 500);
  assert_int_equal(ept_resident_pages(f->e), reclaim_budget_pages(f->r));
  hfx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fifo_evicts_in_residency_order),
      cmocka_unit_test(clock_gives_accessed_pages_a_second_chance),
      cmocka_unit_test(clock_remembers_accesses_across_cr3_loads),
      cmocka_unit_test(clock_scan_is_bounded),
      cmocka_unit_test(random_is_reproducible_per_seed),
      cmocka_unit_test(random_draws_uniformly_and_skips_the_protected_page),
      cmocka_unit_test(budget_is_never_exceeded),
      cmocka_unit_test(pinned_in_flight_and_protected_pages_are_never_victims),
      cmocka_unit_test(scripted_evictions_run_in_time_order),
      cmocka_unit_test(whole_runs_are_byte_identical),
      cmocka_unit_test(unlimited_memory_tracks_nothing),
      cmocka_unit_test(create_rejects_bad_parameters_and_adopts_resident_pages),
      cmocka_unit_test(hundred_thousand_swapped_pages_cost_nothing_per_page),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
