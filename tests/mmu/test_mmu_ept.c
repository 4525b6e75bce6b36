/* test_mmu_ept.c — the EPT's page state machine and its contract with the shadow MMU:
 * every legal transition and what it reports, every illegal request refused with a
 * message and no change, classification of EPT violations, exact host dirty bits, zaps
 * on every vCPU (a non-resident page never has a present shadow entry), reads in flight
 * and their waiters, pins, the DAX window (file offsets, truncation, restore), and
 * 100k+ non-resident pages costing no memory. No clock anywhere. */
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
#define NV 3

static struct hfx *fx(void **state) { return *state; }

static int setup(void **state) {
  struct hfx *f = hfx_new(RAM, NV, POOL);
  hfx_map(f, 0, 64);
  hfx_load_tables(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  hfx_free(fx(state));
  return 0;
}

static struct shadow_fault_info sfault(struct hfx *f, unsigned v, uint64_t page, enum paging_op op) {
  struct shadow_fault_info i;
  shadow_fault(f->m, v, &f->ctx, HFX_DATA + page * PAGING_PAGE_SIZE, (struct paging_access){op, PAGING_USER}, &i);
  return i;
}

static uint64_t leaf(struct hfx *f, unsigned v, uint64_t page) {
  return shadow_leaf(f->m, v, HFX_DATA + page * PAGING_PAGE_SIZE);
}

static void check_counts(struct hfx *f, uint64_t dax_pages) {
  const struct ept_stats *s = ept_stats(f->e);
  uint64_t sum = 0;
  for (int k = 0; k < EPT_N_STATES; k++) sum += s->pages[k];
  assert_int_equal(sum, ept_ram_pages(f->e) + dax_pages);
  assert_int_equal(s->pages[EPT_NOT_MEMORY], 0);
  assert_int_equal(ept_resident_pages(f->e), s->pages[EPT_RESIDENT]);
}

/* ---- the state machine ---- */

static void ram_starts_absent_or_swapped(void **state) {
  struct hfx *f = fx(state);
  uint64_t tables = (f->pt.next_table - HFX_TABLES) / PAGING_PAGE_SIZE;
  assert_int_equal(ept_stats(f->e)->pages[EPT_RESIDENT], tables); /* the loaded tables */
  assert_int_equal(ept_stats(f->e)->pages[EPT_ABSENT], RAM / PAGING_PAGE_SIZE - tables);
  assert_int_equal(ept_state(f->e, hfx_gfn(0)), EPT_ABSENT);
  assert_int_equal(ept_state(f->e, RAM / PAGING_PAGE_SIZE), EPT_NOT_MEMORY);
  check_counts(f, 0);

  struct shadow_config sc = {f->mem, RAM, PAGING_MAXPHYADDR_DEFAULT, RAM, POOL, 1};
  struct diag d;
  struct shadow_mmu *m = shadow_create(&sc, &d);
  struct ept_config ec = {m, RAM / 2, EPT_INITIAL_SWAPPED};
  struct ept *e = ept_create(&ec, &d);
  assert_non_null(e);
  assert_int_equal(ept_state(e, 5), EPT_SWAPPED);
  assert_int_equal(ept_state(e, RAM / 2 / PAGING_PAGE_SIZE), EPT_NOT_MEMORY); /* shadow range beyond RAM */
  assert_int_equal(ept_stats(e)->pages[EPT_SWAPPED], RAM / 2 / PAGING_PAGE_SIZE);
  ept_destroy(e);
  shadow_destroy(m);
}

static void every_legal_ram_transition(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  struct ept_change c;
  uint64_t g = hfx_gfn(0);

  /* ABSENT -> RESIDENT (zero fill) -> ABSENT (evicted unwritten: nothing to store). */
  assert_true(ept_zero_fill(f->e, g, &d));
  assert_int_equal(ept_state(f->e, g), EPT_RESIDENT);
  assert_true(ept_evict(f->e, g, 0, &c, &d));
  assert_int_equal(c.from, EPT_RESIDENT);
  assert_int_equal(c.to, EPT_ABSENT);
  assert_false(c.dirty);

  /* ABSENT -> SWAPPED when a scenario says so; SWAPPED -> IN_FLIGHT -> RESIDENT. */
  assert_true(ept_evict(f->e, g, EPT_EVICT_TO_SWAP, &c, &d));
  assert_int_equal(c.to, EPT_SWAPPED);
  assert_false(c.dirty);
  assert_true(ept_start_fetch(f->e, g, 1, 5000, &d));
  assert_int_equal(ept_state(f->e, g), EPT_IN_FLIGHT);
  assert_true(ept_join_fetch(f->e, g, 2, &d));
  assert_true(ept_complete_fetch(f->e, g, &c, &d));
  assert_int_equal(c.from, EPT_IN_FLIGHT);
  assert_int_equal(c.to, EPT_RESIDENT);
  assert_int_equal(c.waiters, 6);
  assert_int_equal(c.ready_ns, 5000);

  /* A page read back from swap and not written is clean, and goes back to SWAPPED. */
  assert_true(ept_evict(f->e, g, 0, &c, &d));
  assert_int_equal(c.to, EPT_SWAPPED);
  assert_false(c.dirty);

  /* Loaded by the simulator: dirty (stored nowhere else); evicting it needs a write. */
  uint64_t g2 = hfx_gfn(1);
  assert_true(ept_host_loaded(f->e, g2 << 12, PAGING_PAGE_SIZE, &d));
  assert_int_equal(ept_state(f->e, g2), EPT_RESIDENT);
  assert_true(ept_host_loaded(f->e, g2 << 12, PAGING_PAGE_SIZE, &d)); /* resident: allowed again */
  assert_true(ept_evict(f->e, g2, 0, &c, &d));
  assert_true(c.dirty);
  assert_int_equal(c.to, EPT_SWAPPED);

  /* Into UNRESOLVABLE from every memory state, with the loss kept. */
  enum ept_state from[] = {EPT_ABSENT, EPT_RESIDENT, EPT_SWAPPED, EPT_IN_FLIGHT};
  for (unsigned k = 0; k < 4; k++) {
    uint64_t p = hfx_gfn(10 + k);
    if (from[k] != EPT_ABSENT) assert_true(ept_zero_fill(f->e, p, &d));
    if (from[k] == EPT_SWAPPED || from[k] == EPT_IN_FLIGHT)
      assert_true(ept_evict(f->e, p, EPT_EVICT_TO_SWAP, NULL, &d));
    if (from[k] == EPT_IN_FLIGHT) assert_true(ept_start_fetch(f->e, p, 0, 77, &d));
    assert_int_equal(ept_state(f->e, p), from[k]);
    assert_true(ept_mark_unresolvable(f->e, p, k == 1 ? EPT_LOSS_MEMORY_ERROR : EPT_LOSS_IO_ERROR, &c, &d));
    assert_int_equal(c.from, from[k]);
    assert_int_equal(c.to, EPT_UNRESOLVABLE);
    if (from[k] == EPT_IN_FLIGHT) {
      assert_int_equal(c.waiters, 1); /* the read failed: vCPU 0 must hear it */
      assert_int_equal(c.ready_ns, 77);
    }
    struct ept_fault ft;
    ept_classify(f->e, p, &ft);
    assert_int_equal(ft.kind, EPT_FAULT_UNRESOLVABLE);
    assert_int_equal(ft.loss, k == 1 ? EPT_LOSS_MEMORY_ERROR : EPT_LOSS_IO_ERROR);
  }
  const struct ept_stats *s = ept_stats(f->e);
  assert_int_equal(s->zero_fills, 4);
  assert_int_equal(s->fetches_started, 2);
  assert_int_equal(s->fetches_completed, 1);
  assert_int_equal(s->fetches_failed, 1);
  assert_int_equal(s->fetch_joins, 1);
  assert_int_equal(s->evictions, 5);
  assert_int_equal(s->evictions_dirty, 1);
  assert_int_equal(s->evictions_to_absent, 1);
  assert_int_equal(s->absent_to_swapped, 1);
  assert_int_equal(s->marked_unresolvable, 4);
  assert_int_equal(s->refused, 0);
  assert_int_equal(s->in_flight_peak, 1);
  check_counts(f, 0);
}

/* Puts RAM page g into state s by legal steps. */
static void make_state(struct hfx *f, uint64_t g, enum ept_state s) {
  struct diag d;
  switch (s) {
  case EPT_ABSENT: break;
  case EPT_RESIDENT: assert_true(ept_zero_fill(f->e, g, &d)); break;
  case EPT_SWAPPED: assert_true(ept_evict(f->e, g, EPT_EVICT_TO_SWAP, NULL, &d)); break;
  case EPT_IN_FLIGHT:
    assert_true(ept_evict(f->e, g, EPT_EVICT_TO_SWAP, NULL, &d));
    assert_true(ept_start_fetch(f->e, g, 0, 1, &d));
    break;
  case EPT_UNRESOLVABLE: assert_true(ept_mark_unresolvable(f->e, g, EPT_LOSS_IO_ERROR, NULL, &d)); break;
  default: fail();
  }
  assert_int_equal(ept_state(f->e, g), s);
}

enum op { OP_ZERO_FILL, OP_LOAD, OP_START, OP_JOIN, OP_COMPLETE, OP_EVICT, OP_EVICT_TO_SWAP, OP_UNRESOLVABLE,
          OP_DAX_MAP, OP_DAX_UNMAP, OP_DAX_RESTORE, N_OPS };

static bool apply(struct hfx *f, enum op op, uint64_t g, struct diag *d) {
  switch (op) {
  case OP_ZERO_FILL: return ept_zero_fill(f->e, g, d);
  case OP_LOAD: return ept_host_loaded(f->e, g << 12, PAGING_PAGE_SIZE, d);
  case OP_START: return ept_start_fetch(f->e, g, 0, 1, d);
  case OP_JOIN: return ept_join_fetch(f->e, g, 1, d);
  case OP_COMPLETE: return ept_complete_fetch(f->e, g, NULL, d);
  case OP_EVICT: return ept_evict(f->e, g, 0, NULL, d);
  case OP_EVICT_TO_SWAP: return ept_evict(f->e, g, EPT_EVICT_TO_SWAP, NULL, d);
  case OP_UNRESOLVABLE: return ept_mark_unresolvable(f->e, g, EPT_LOSS_IO_ERROR, NULL, d);
  case OP_DAX_MAP: return ept_dax_map(f->e, g, d);
  case OP_DAX_UNMAP: return ept_dax_unmap(f->e, g, NULL, d);
  case OP_DAX_RESTORE: return ept_dax_restore(f->e, g, d);
  case N_OPS: break;
  }
  return false;
}

/* The whole RAM legality table: a row per state of ram_states[], a column per op. */
static const enum ept_state ram_states[] = {EPT_ABSENT, EPT_RESIDENT, EPT_SWAPPED, EPT_IN_FLIGHT, EPT_UNRESOLVABLE};
static const bool legal[5][N_OPS] = {
    /* ZERO  LOAD   START  JOIN   COMPL  EVICT  E2SW   UNRES  MAP    UNMAP  RESTORE */
    {true, true, false, false, false, false, true, true, false, false, false},   /* absent */
    {false, true, false, false, false, true, true, true, false, false, false},   /* resident */
    {false, true, true, false, false, false, false, true, false, false, false},  /* swapped */
    {false, false, false, true, true, false, false, true, false, false, false},  /* in flight */
    {false, false, false, false, false, false, false, false, false, false, false}, /* unresolvable */
};

static void illegal_ram_requests_are_refused_with_a_message(void **state) {
  struct hfx *f = fx(state);
  uint64_t page = 0, refused = 0;
  for (unsigned si = 0; si < 5; si++) {
    for (unsigned op = 0; op < N_OPS; op++) {
      uint64_t g = hfx_gfn(page++);
      make_state(f, g, ram_states[si]);
      struct diag d = {{0}};
      bool ok = apply(f, (enum op)op, g, &d);
      if (ok != legal[si][op])
        fail_msg("state %s op %u: got %d want %d (%s)", ept_state_name(ram_states[si]), op, ok, legal[si][op], d.msg);
      if (!ok) {
        refused++;
        assert_int_equal(ept_state(f->e, g), ram_states[si]); /* nothing changed */
        char gfn[32];
        snprintf(gfn, sizeof gfn, "gfn %#llx", (unsigned long long)g);
        assert_non_null(strstr(d.msg, "EPT: cannot "));
        assert_non_null(strstr(d.msg, gfn));
      }
    }
  }
  assert_int_equal(ept_stats(f->e)->refused, refused);
  /* Messages name the state and what is legal. */
  struct diag d;
  assert_false(ept_start_fetch(f->e, hfx_gfn(200), 0, 0, &d));
  assert_string_equal(d.msg, "EPT: cannot start a read of gfn 0x4c8: it is absent (legal from swapped RAM)");
  assert_false(ept_evict(f->e, hfx_gfn(200), 0, NULL, &d));
  assert_string_equal(d.msg, "EPT: cannot evict gfn 0x4c8: it is absent (legal from resident RAM; absent RAM with "
                             "EPT_EVICT_TO_SWAP)");
  assert_false(ept_zero_fill(f->e, RAM / PAGING_PAGE_SIZE, &d));
  assert_non_null(strstr(d.msg, "not guest memory"));
  assert_false(ept_mark_unresolvable(f->e, hfx_gfn(200), EPT_LOSS_NONE, NULL, &d));
  assert_non_null(strstr(d.msg, "no reason given"));
  make_state(f, hfx_gfn(201), EPT_SWAPPED);
  assert_false(ept_start_fetch(f->e, hfx_gfn(201), NV, 0, &d));
  assert_non_null(strstr(d.msg, "no such vCPU"));
  assert_false(ept_host_loaded(f->e, RAM - PAGING_PAGE_SIZE, 2 * PAGING_PAGE_SIZE, &d));
  assert_non_null(strstr(d.msg, "inside guest RAM"));
  check_counts(f, 0);
}

/* ---- the contract with the shadow MMU ---- */

static void evicted_pages_leave_every_vcpus_shadow(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  for (unsigned v = 0; v < NV; v++) hfx_access(f, v, 3, false);
  uint64_t g = hfx_gfn(3);
  for (unsigned v = 0; v < NV; v++) assert_true(leaf(f, v, 3) & PTE_P);
  struct ept_change c;
  assert_true(ept_evict(f->e, g, 0, &c, &d));
  assert_int_equal(c.flush.tlb_vcpus, 7); /* every vCPU must drop its TLB entry */
  assert_int_equal(c.flush.va, g << 12);
  for (unsigned v = 0; v < NV; v++) assert_false(leaf(f, v, 3) & PTE_P);
  assert_true(hfx_shadow_consistent(f, 0, RAM / PAGING_PAGE_SIZE, NV));

  /* Non-resident: the shadow refuses to fill it, on every vCPU, for every access. */
  for (unsigned v = 0; v < NV; v++) {
    struct shadow_fault_info i = sfault(f, v, 3, v == 1 ? PAGING_WRITE : PAGING_READ);
    assert_int_equal(i.verdict, SHADOW_HOST_FAULT);
    assert_int_equal(i.gfn, g);
    assert_false(leaf(f, v, 3) & PTE_P);
  }
  struct ept_fault ft;
  ept_classify(f->e, g, &ft);
  assert_int_equal(ft.kind, EPT_FAULT_ZERO_FILL); /* unwritten zero fill: back to absent */
  hfx_access(f, 1, 3, true);
  assert_true(leaf(f, 1, 3) & PTE_RW);
  assert_true(ept_evict(f->e, g, 0, &c, &d));
  assert_true(c.dirty);
  assert_int_equal(c.flush.tlb_vcpus, 2); /* only vCPU 1 mapped it this time */
  ept_classify(f->e, g, &ft);
  assert_int_equal(ft.kind, EPT_FAULT_SWAP_IN);
  char buf[160];
  ept_describe_fault(&ft, buf, sizeof buf);
  assert_string_equal(buf, "EPT violation on gfn 0x403: swapped out: read it from the swap device");
  /* In flight: still refused; resident again: filled. */
  assert_true(ept_start_fetch(f->e, g, 0, 100, &d));
  assert_int_equal(sfault(f, 0, 3, PAGING_READ).verdict, SHADOW_HOST_FAULT);
  ept_classify(f->e, g, &ft);
  assert_int_equal(ft.kind, EPT_FAULT_IN_FLIGHT);
  assert_int_equal(ft.waiters, 1);
  assert_int_equal(ft.ready_ns, 100);
  assert_true(ept_complete_fetch(f->e, g, NULL, &d));
  assert_int_equal(sfault(f, 0, 3, PAGING_READ).verdict, SHADOW_FILLED);
  const struct ept_stats *s = ept_stats(f->e);
  assert_int_equal(s->faults[EPT_FAULT_ZERO_FILL], 3); /* first touch, the check above, the refill */
  assert_int_equal(s->faults[EPT_FAULT_SWAP_IN], 1);
  assert_int_equal(s->faults[EPT_FAULT_IN_FLIGHT], 1);
}

static void dirty_bits_are_exact(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  struct ept_change c;
  uint64_t g = hfx_gfn(5);
  /* Swapped in and only read: clean, though the guest's D flag is set (pages are mapped
   * with D=1): the shadow leaf stays read-only until the first write. */
  make_state(f, g, EPT_SWAPPED);
  hfx_access(f, 0, 5, false);
  hfx_access(f, 1, 5, false);
  assert_false(leaf(f, 0, 5) & PTE_RW);
  assert_true(ept_evict(f->e, g, 0, &c, &d));
  assert_false(c.dirty);
  assert_int_equal(c.to, EPT_SWAPPED);
  /* Swapped in and written by one vCPU: dirty. */
  hfx_access(f, 0, 5, false);
  hfx_access(f, 1, 5, true);
  assert_true(leaf(f, 1, 5) & PTE_RW);
  assert_true(ept_evict(f->e, g, 0, &c, &d));
  assert_true(c.dirty);
  /* Written by the simulator (APF shared area, delivery frame): dirty too. */
  hfx_access(f, 2, 5, false);
  struct shadow_flush fl;
  shadow_host_write(f->m, g, &fl);
  assert_true(ept_evict(f->e, g, 0, &c, &d));
  assert_true(c.dirty);
  /* Host-clean costs one extra fault per page and round: the first write after a read. */
  hfx_access(f, 0, 5, false);
  uint64_t upgrades = shadow_stats(f->m)->dirty_upgrades;
  hfx_access(f, 0, 5, true);
  assert_int_equal(shadow_stats(f->m)->dirty_upgrades, upgrades + 1);
  hfx_access(f, 0, 5, true);
  assert_int_equal(shadow_stats(f->m)->dirty_upgrades, upgrades + 1);
  /* shadow_test_and_clear_dirty write-protects live leaves and names their TLBs. */
  hfx_access(f, 2, 5, true);
  assert_true(shadow_test_and_clear_dirty(f->m, g, &fl));
  assert_int_equal(fl.tlb_vcpus, 5);
  assert_false(leaf(f, 0, 5) & PTE_RW);
  assert_false(shadow_test_and_clear_dirty(f->m, g, &fl));
  assert_int_equal(fl.tlb_vcpus, 0);
}

static void evicting_a_guest_page_table_drops_every_shadow(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  for (unsigned v = 0; v < NV; v++) hfx_access(f, v, 0, false);
  uint64_t pt_gfn = gpt_entry(&f->pt, HFX_DATA, 1) >> 12; /* the guest PT mapping the data */
  struct ept_change c;
  assert_true(ept_evict(f->e, pt_gfn, 0, &c, &d));
  assert_int_equal(c.flush.full_tlb_vcpus, 7);
  assert_true(c.dirty); /* loaded by the simulator, never stored */
  for (unsigned v = 0; v < NV; v++) assert_false(leaf(f, v, 0) & PTE_P);
  struct shadow_fault_info i = sfault(f, 0, 0, PAGING_READ);
  assert_int_equal(i.verdict, SHADOW_HOST_FAULT);
  assert_true(i.in_walk);
  assert_int_equal(i.gfn, pt_gfn);
  hfx_access(f, 0, 0, false); /* the host reads the table back; the access completes */
  assert_int_equal(ept_state(f->e, pt_gfn), EPT_RESIDENT);
}

/* ---- reads in flight ---- */

static void reads_in_flight_keep_waiters_and_due_times(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  const unsigned n = 300; /* well past the table's initial size */
  for (unsigned k = 0; k < n; k++) {
    uint64_t g = hfx_gfn(3 * k); /* scattered gfns */
    make_state(f, g, EPT_SWAPPED);
    assert_true(ept_start_fetch(f->e, g, k % NV, 1000 + k, &d));
    if (k % 3 == 0) assert_true(ept_join_fetch(f->e, g, (k + 1) % NV, &d));
  }
  assert_int_equal(ept_stats(f->e)->pages[EPT_IN_FLIGHT], n);
  assert_int_equal(ept_stats(f->e)->in_flight_peak, n);
  size_t grown = ept_memory_bytes(f->e);
  /* Complete every other one, then check the rest are all still found intact. */
  for (unsigned k = 0; k < n; k += 2) {
    uint64_t g = hfx_gfn(3 * k);
    struct ept_change c;
    assert_true(ept_complete_fetch(f->e, g, &c, &d));
    uint64_t want = (UINT64_C(1) << (k % NV)) | (k % 3 == 0 ? UINT64_C(1) << ((k + 1) % NV) : 0);
    assert_int_equal(c.waiters, want);
    assert_int_equal(c.ready_ns, 1000 + k);
  }
  for (unsigned k = 1; k < n; k += 2) {
    uint64_t g = hfx_gfn(3 * k);
    struct ept_fault ft;
    ept_classify(f->e, g, &ft);
    assert_int_equal(ft.kind, EPT_FAULT_IN_FLIGHT);
    assert_int_equal(ft.ready_ns, 1000 + k);
    assert_true(ept_complete_fetch(f->e, g, NULL, &d));
  }
  assert_int_equal(ept_stats(f->e)->pages[EPT_IN_FLIGHT], 0);
  /* The table keeps its peak size: reads never allocate again below the peak. */
  assert_int_equal(ept_memory_bytes(f->e), grown);
  assert_false(ept_join_fetch(f->e, hfx_gfn(1), 0, &d));
  assert_non_null(strstr(d.msg, "legal from a page being read"));
}

/* ---- pins ---- */

static void pins_are_counted_and_block_eviction(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  uint64_t g = hfx_gfn(7);
  make_state(f, g, EPT_RESIDENT);
  assert_true(ept_candidate(f->e, g));
  assert_true(ept_pin(f->e, g, &d));
  assert_true(ept_pin(f->e, g, &d));
  assert_true(ept_pinned(f->e, g));
  assert_false(ept_candidate(f->e, g));
  assert_false(ept_evict(f->e, g, 0, NULL, &d));
  assert_string_equal(d.msg, "EPT: cannot evict gfn 0x407: it is pinned");
  assert_true(ept_unpin(f->e, g, &d));
  assert_false(ept_evict(f->e, g, EPT_EVICT_TO_SWAP, NULL, &d)); /* one pin left */
  assert_true(ept_unpin(f->e, g, &d));
  assert_false(ept_unpin(f->e, g, &d));
  assert_non_null(strstr(d.msg, "not pinned"));
  assert_true(ept_candidate(f->e, g));
  assert_true(ept_evict(f->e, g, 0, NULL, &d));
  assert_false(ept_pin(f->e, RAM / PAGING_PAGE_SIZE, &d));
  assert_int_equal(ept_stats(f->e)->pinned, 0);
}

/* ---- DAX window ---- */

#define WIN_GPA (RAM + 4 * MIB) /* a hole between RAM and the window */
#define WIN_PAGES 16

static int setup_dax(void **state) {
  /* The shadow's guest range covers RAM, the hole and the window. */
  struct hfx *f = hfx_new(WIN_GPA + WIN_PAGES * PAGING_PAGE_SIZE, NV, POOL);
  ept_destroy(f->e);
  struct diag d;
  struct ept_config ec = {f->m, RAM, EPT_INITIAL_ABSENT};
  f->e = ept_create(&ec, &d);
  gpt_identity(&f->pt, WIN_GPA, WIN_GPA + WIN_PAGES * PAGING_PAGE_SIZE, HFX_RWU | PTE_D);
  gpt_identity(&f->pt, RAM, RAM + PAGING_PAGE_SIZE, HFX_RWU | PTE_D); /* a page in the hole */
  hfx_load_tables(f);
  unsigned w = 9;
  assert_true(ept_add_dax_window(f->e, WIN_GPA, WIN_PAGES * PAGING_PAGE_SIZE, 0x3000, &w, &d));
  assert_int_equal(w, 0);
  *state = f;
  return 0;
}

static struct shadow_fault_info wfault(struct hfx *f, unsigned v, uint64_t page) {
  struct shadow_fault_info i;
  shadow_fault(f->m, v, &f->ctx, WIN_GPA + page * PAGING_PAGE_SIZE, (struct paging_access){PAGING_READ, PAGING_USER},
               &i);
  return i;
}

static void dax_window_pages_map_file_offsets(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  uint64_t g0 = WIN_GPA >> 12;
  check_counts(f, WIN_PAGES);
  assert_int_equal(ept_state(f->e, g0), EPT_DAX_UNMAPPED);
  assert_int_equal(ept_dax_gfn(f->e, 0, 0x3000), g0);
  assert_int_equal(ept_dax_gfn(f->e, 0, 0x3000 + 5 * PAGING_PAGE_SIZE + 12), g0 + 5);
  assert_int_equal(ept_dax_gfn(f->e, 0, 0x2000), EPT_NO_GFN);
  assert_int_equal(ept_dax_gfn(f->e, 0, 0x3000 + WIN_PAGES * PAGING_PAGE_SIZE), EPT_NO_GFN);
  assert_int_equal(ept_dax_gfn(f->e, 1, 0x3000), EPT_NO_GFN);

  /* Unmapped: an EPT violation asking the page cache about file offset 0x5000. */
  struct shadow_fault_info i = wfault(f, 0, 2);
  assert_int_equal(i.verdict, SHADOW_HOST_FAULT);
  struct ept_fault ft;
  ept_classify(f->e, g0 + 2, &ft);
  assert_int_equal(ft.kind, EPT_FAULT_DAX);
  assert_true(ft.dax);
  assert_int_equal(ft.window, 0);
  assert_int_equal(ft.file_offset, 0x5000);
  char buf[200];
  ept_describe_fault(&ft, buf, sizeof buf);
  assert_string_equal(buf, "EPT violation on gfn 0xc02 (DAX window 0, file offset 0x5000): not mapped: ask the "
                           "host page cache");
  /* Page-cache hit: mapped at once; the shadow fills it. */
  assert_true(ept_dax_map(f->e, g0 + 2, &d));
  assert_int_equal(wfault(f, 0, 2).verdict, SHADOW_FILLED);
  assert_int_equal(wfault(f, 1, 2).verdict, SHADOW_FILLED);
  /* The host drops the page-cache page: zapped on both vCPUs. */
  struct ept_change c;
  assert_true(ept_dax_unmap(f->e, g0 + 2, &c, &d));
  assert_int_equal(c.flush.tlb_vcpus, 3);
  assert_int_equal(wfault(f, 0, 2).verdict, SHADOW_HOST_FAULT);
  /* Page-cache miss: a read, then mapped. */
  assert_true(ept_start_fetch(f->e, g0 + 2, 0, 2000, &d));
  assert_true(ept_complete_fetch(f->e, g0 + 2, &c, &d));
  assert_int_equal(c.to, EPT_DAX_MAPPED);
  assert_int_equal(ept_resident_pages(f->e), (f->pt.next_table - HFX_TABLES) >> 12); /* DAX is not RAM */
  assert_false(ept_evict(f->e, g0 + 2, 0, NULL, &d)); /* the page cache's, not reclaim's */
  assert_false(ept_pin(f->e, g0 + 2, &d));

  /* The hole is not memory. */
  i = (struct shadow_fault_info){0};
  shadow_fault(f->m, 0, &f->ctx, RAM, (struct paging_access){PAGING_READ, PAGING_USER}, &i);
  assert_int_equal(i.verdict, SHADOW_HOST_FAULT);
  ept_classify(f->e, RAM >> 12, &ft);
  assert_int_equal(ft.kind, EPT_FAULT_NOT_MEMORY);
  check_counts(f, WIN_PAGES);
}

static void dax_truncation_makes_pages_unresolvable(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  uint64_t g0 = WIN_GPA >> 12;
  /* File pages 3.. are the window's pages 0..: page 4 mapped on two vCPUs, page 5 being read. */
  assert_true(ept_dax_map(f->e, g0 + 1, &d));
  assert_int_equal(wfault(f, 0, 1).verdict, SHADOW_FILLED);
  assert_int_equal(wfault(f, 2, 1).verdict, SHADOW_FILLED);
  assert_true(ept_start_fetch(f->e, g0 + 2, 1, 500, &d));
  /* truncate: file pages 4.. gone (the file model's first_gone_page = 4). */
  struct shadow_flush fl;
  uint64_t n = ept_dax_truncate(f->e, 0, 4, 100, &fl);
  assert_int_equal(n, WIN_PAGES - 1 - 1); /* all but window page 0 and the page in flight */
  assert_int_equal(fl.full_tlb_vcpus, 5);
  assert_int_equal(ept_state(f->e, g0), EPT_DAX_UNMAPPED);
  assert_int_equal(ept_state(f->e, g0 + 1), EPT_UNRESOLVABLE);
  assert_int_equal(ept_state(f->e, g0 + 2), EPT_IN_FLIGHT);
  assert_false(wfault(f, 0, 1).verdict == SHADOW_FILLED);
  struct ept_fault ft;
  ept_classify(f->e, g0 + 1, &ft);
  assert_int_equal(ft.kind, EPT_FAULT_UNRESOLVABLE);
  assert_int_equal(ft.loss, EPT_LOSS_TRUNCATED);
  assert_int_equal(ft.file_offset, 0x4000);
  char buf[200];
  ept_describe_fault(&ft, buf, sizeof buf);
  assert_string_equal(buf, "EPT violation on gfn 0xc01 (DAX window 0, file offset 0x4000): unresolvable (truncated)");
  /* The read in flight fails when the file model says so. */
  struct ept_change c;
  assert_true(ept_mark_unresolvable(f->e, g0 + 2, EPT_LOSS_TRUNCATED, &c, &d));
  assert_int_equal(c.waiters, 2);
  /* Truncating again changes nothing; growing the file back restores pages. */
  assert_int_equal(ept_dax_truncate(f->e, 0, 4, 100, NULL), 0);
  assert_true(ept_dax_restore(f->e, g0 + 1, &d));
  assert_int_equal(ept_state(f->e, g0 + 1), EPT_DAX_UNMAPPED);
  assert_false(ept_dax_restore(f->e, g0 + 1, &d));
  assert_non_null(strstr(d.msg, "only a truncated DAX page"));
  /* An I/O-error page of RAM never comes back. */
  assert_true(ept_mark_unresolvable(f->e, hfx_gfn(0), EPT_LOSS_IO_ERROR, NULL, &d));
  assert_false(ept_dax_restore(f->e, hfx_gfn(0), &d));
  /* Ranges outside the window are clipped. */
  assert_int_equal(ept_dax_truncate(f->e, 0, 0, 2, NULL), 0); /* file pages 0, 1: not in the window */
  assert_int_equal(ept_dax_truncate(f->e, 0, 3, 1, NULL), 1);            /* window page 0 */
  assert_int_equal(ept_dax_truncate(f->e, 7, 3, 1, NULL), 0);            /* no such window */
  check_counts(f, WIN_PAGES);
}

static void dax_window_geometry_is_checked(void **state) {
  struct hfx *f = fx(state);
  struct diag d;
  assert_false(ept_add_dax_window(f->e, RAM - PAGING_PAGE_SIZE, 2 * PAGING_PAGE_SIZE, 0, NULL, &d));
  assert_non_null(strstr(d.msg, "overlaps guest RAM"));
  assert_false(ept_add_dax_window(f->e, WIN_GPA + PAGING_PAGE_SIZE, PAGING_PAGE_SIZE, 0, NULL, &d));
  assert_non_null(strstr(d.msg, "overlaps DAX window 0"));
  assert_false(ept_add_dax_window(f->e, WIN_GPA + WIN_PAGES * PAGING_PAGE_SIZE, PAGING_PAGE_SIZE, 0, NULL, &d));
  assert_non_null(strstr(d.msg, "outside the shadow MMU's guest range"));
  assert_false(ept_add_dax_window(f->e, RAM + 0x800, PAGING_PAGE_SIZE, 0, NULL, &d));
  assert_non_null(strstr(d.msg, "4 KiB aligned"));
  unsigned w;
  assert_true(ept_add_dax_window(f->e, RAM, PAGING_PAGE_SIZE, 0, &w, &d));
  assert_int_equal(w, 1);
  assert_int_equal(ept_state(f->e, RAM >> 12), EPT_DAX_UNMAPPED);

  struct ept_config bad = {f->m, RAM + 1, EPT_INITIAL_ABSENT};
  assert_null(ept_create(&bad, &d));
  assert_non_null(strstr(d.msg, "positive multiple of 4 KiB"));
  bad.ram_bytes = WIN_GPA + (WIN_PAGES + 1) * PAGING_PAGE_SIZE;
  assert_null(ept_create(&bad, &d));
  bad.shadow = NULL;
  assert_null(ept_create(&bad, &d));
}

/* ---- scale ---- */

static void hundred_thousand_non_resident_pages_cost_nothing_per_page(void **state) {
  (void)state;
  const uint64_t ram = 512 * MIB; /* 131072 pages */
  struct hfx *f = hfx_new(ram, 2, POOL);
  hfx_map(f, 0, 1);
  hfx_load_tables(f);
  struct diag d;
  const uint64_t first = hfx_gfn(16), n = 120000;
  for (uint64_t g = first; g < first + n; g++) assert_true(ept_zero_fill(f->e, g, &d));
  hfx_access(f, 0, 0, true);
  hfx_access(f, 1, 0, false);
  size_t ept_bytes = ept_memory_bytes(f->e);
  assert_int_equal(ept_bytes, ept_memory_bytes(f->e));
  struct mallinfo2 before = mallinfo2();
  /* 120k evictions, a swap-in of each of 1000 pages, classifications of all: no heap growth. */
  for (uint64_t g = first; g < first + n; g++) {
    struct ept_change c;
    assert_true(ept_evict(f->e, g, EPT_EVICT_TO_SWAP, &c, &d));
  }
  for (uint64_t g = first; g < first + n; g++) {
    struct ept_fault ft;
    ept_classify(f->e, g, &ft);
    assert_int_equal(ft.kind, EPT_FAULT_SWAP_IN);
  }
  for (uint64_t g = first; g < first + 1000; g++) {
    assert_true(ept_start_fetch(f->e, g, 0, g, &d));
    assert_true(ept_complete_fetch(f->e, g, NULL, &d));
  }
  struct mallinfo2 after = mallinfo2();
  assert_int_equal(after.uordblks, before.uordblks);
  assert_int_equal(ept_memory_bytes(f->e), ept_bytes);
  /* The shadow still works for the resident page, and the zaps touched one entry each. */
  assert_int_equal(ept_stats(f->e)->pages[EPT_SWAPPED], n - 1000);
  assert_int_equal(shadow_stats(f->m)->zaps, 0); /* those pages were never mapped */
  struct ept_change c;
  assert_true(ept_evict(f->e, hfx_gfn(0), 0, &c, &d));
  assert_int_equal(c.flush.tlb_vcpus, 3);
  assert_true(c.dirty);
  hfx_access(f, 0, 0, false);
  assert_int_equal(ept_state(f->e, hfx_gfn(0)), EPT_RESIDENT);
  /* What the EPT holds: one byte per page plus a fixed part. */
  assert_true(ept_bytes < ram / PAGING_PAGE_SIZE + 8192);
  hfx_free(f);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define TD(name) cmocka_unit_test_setup_teardown(name, setup_dax, teardown)
  const struct CMUnitTest tests[] = {
      T(ram_starts_absent_or_swapped),
      T(every_legal_ram_transition),
      T(illegal_ram_requests_are_refused_with_a_message),
      T(evicted_pages_leave_every_vcpus_shadow),
      T(dirty_bits_are_exact),
      T(evicting_a_guest_page_table_drops_every_shadow),
      T(reads_in_flight_keep_waiters_and_due_times),
      T(pins_are_counted_and_block_eviction),
      TD(dax_window_pages_map_file_offsets),
      TD(dax_truncation_makes_pages_unresolvable),
      TD(dax_window_geometry_is_checked),
      cmocka_unit_test(hundred_thousand_non_resident_pages_cost_nothing_per_page),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
