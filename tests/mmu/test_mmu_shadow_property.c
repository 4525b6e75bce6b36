/* test_mmu_shadow_property.c — seeded random guests against the walker.
 *
 * Random guest page tables (two address spaces, 4 KiB and 2 MiB pages, random rights,
 * reserved bits, non-identity leaves, a mapping of the shadow area itself), three vCPUs
 * and a pinned simulator page,
 * random accesses, CR3 loads, INVLPGs, guest table edits (followed by the flush a guest
 * would do), evictions, host writes and control-register changes. For every access:
 *  - if Unicorn would allow it on the shadow, the guest's own tables allow it too, the
 *    page is resident, and a write finds the guest's D flag already set (exact D);
 *  - otherwise the verdict of shadow_fault equals what the walker says, and after a fill
 *    the shadow allows the access with rights no wider than the guest's.
 * Translated code is modelled per engine (a version per page, dropped on the engine's
 * own writes and on code_vcpus); a fetch through a stale translation fails the test,
 * and no page is ever writable on one vCPU while executable on another.
 * Deterministic: fixed seeds, no clock. */
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

#define MIB (UINT64_C(1) << 20)
#define GUEST_BYTES (16 * MIB)
#define SPAN (18 * MIB) /* accesses also land in the shadow area above guest RAM */
#define REGIONS (SPAN / PAGING_SIZE_2M)
#define PAGES (GUEST_BYTES / PAGING_PAGE_SIZE)
#define N_VCPUS 3
#define N_ROOTS 2
#define POOL_PAGES 20 /* small enough that the pool runs dry now and then */
#define HOST_BYTES (GUEST_BYTES + POOL_PAGES * PAGING_PAGE_SIZE)
#define OPS 30000
#define ENTRY_MASK UINT64_C(0x000ffffffffff000)

struct rng {
  uint64_t s;
};

static uint64_t next(struct rng *r) { /* splitmix64 */
  uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static unsigned below(struct rng *r, unsigned n) { return (unsigned)(next(r) % n); }
static bool chance(struct rng *r, unsigned percent) { return below(r, 100) < percent; }

struct world {
  struct rng rng;
  uint8_t *mem;
  struct guest_pt pt;
  struct shadow_mmu *m;
  uint64_t roots[N_ROOTS];
  unsigned root_of[N_VCPUS];
  struct paging_ctx ctl; /* the guest's controls (cr3 per vCPU from roots[root_of[v]]) */
  bool evicted[PAGES];
  uint32_t ver[PAGES];          /* content version of each guest page */
  uint32_t tb[N_VCPUS][PAGES];  /* version an engine translated, 0 = no translated code */
  uint64_t hot[48]; /* the working set most accesses go to */
  unsigned verdicts[4];
  unsigned allowed_directly;
};

static bool world_resident(void *c, uint64_t gfn) {
  struct world *w = c;
  return gfn >= PAGES || !w->evicted[gfn];
}

static struct paging_ctx ctx_of(const struct world *w, unsigned v) {
  struct paging_ctx c = w->ctl;
  c.cr3 = w->roots[w->root_of[v]];
  return c;
}

/* Random rights for an entry; P nearly always for upper levels. */
static uint64_t random_flags(struct rng *r, unsigned p_percent) {
  uint64_t f = 0;
  if (chance(r, p_percent)) f |= PTE_P;
  if (chance(r, 75)) f |= PTE_RW;
  if (chance(r, 80)) f |= PTE_US;
  if (chance(r, 15)) f |= PTE_XD;
  if (chance(r, 30)) f |= PTE_A;
  if (chance(r, 2)) f |= UINT64_C(1) << 49; /* reserved above MAXPHYADDR */
  return f;
}

static uint64_t random_leaf(struct rng *r, uint64_t va, unsigned level) {
  uint64_t size = level == 2 ? PAGING_SIZE_2M : PAGING_PAGE_SIZE;
  uint64_t pa = va;
  if (chance(r, 3)) pa = (va + size * (1 + below(r, 3))) % GUEST_BYTES; /* breaks the identity rule */
  uint64_t f = random_flags(r, 88);
  if (chance(r, 30)) f |= PTE_D;
  return pa | f;
}

/* A random address space: one PML4E and PDPTE, then per 2 MiB region either nothing,
 * a 2 MiB page, or a page table of random 4 KiB leaves. */
static uint64_t build_root(struct world *w) {
  struct rng *r = &w->rng;
  uint64_t cr3 = gpt_new_root(&w->pt);
  for (uint64_t k = 0; k < REGIONS; k++) {
    uint64_t base = k * PAGING_SIZE_2M;
    unsigned kind = below(r, 100);
    if (kind < 10) continue;
    if (kind < 30) {
      gpt_set(&w->pt, gpt_entry(&w->pt, base, 2), random_leaf(r, base, 2) | PTE_PS);
      continue;
    }
    for (uint64_t va = base; va < base + PAGING_SIZE_2M; va += PAGING_PAGE_SIZE) {
      if (chance(r, 15)) continue;
      gpt_set(&w->pt, gpt_entry(&w->pt, va, 1), random_leaf(r, va, 1));
    }
    uint64_t pde = gpt_entry(&w->pt, base, 2);
    gpt_set(&w->pt, pde, (gpt_get(&w->pt, pde) & ENTRY_MASK) | random_flags(r, 97));
  }
  uint64_t pml4e = gpt_entry(&w->pt, 0, 4), pdpte = gpt_entry(&w->pt, 0, 3);
  gpt_set(&w->pt, pml4e, (gpt_get(&w->pt, pml4e) & ENTRY_MASK) | (random_flags(r, 100) & ~(PTE_XD | (UINT64_C(1) << 49))) | PTE_RW | PTE_US);
  gpt_set(&w->pt, pdpte, (gpt_get(&w->pt, pdpte) & ENTRY_MASK) | (random_flags(r, 100) & ~(UINT64_C(1) << 49)) | PTE_US);
  return cr3;
}

/* The entry for va at level in root, only through tables that exist; 0 if none. */
static uint64_t existing_entry(struct world *w, uint64_t root, uint64_t va, int level) {
  uint64_t table = root;
  for (int l = 4;; l--) {
    uint64_t epa = table + ((va >> (12 + 9 * (l - 1))) & 511) * 8;
    if (l == level) return epa;
    uint64_t e = gpt_get(&w->pt, epa);
    if (!(e & PTE_P) || (e & PTE_PS) || (e & ENTRY_MASK) >= GUEST_BYTES) return 0;
    table = e & ENTRY_MASK;
  }
}

static bool unicorn_allows(struct world *w, unsigned v, uint64_t va, struct paging_access a,
                           struct paging_walk *sw) {
  struct guest_mem whole = {w->mem, HOST_BYTES, PAGING_MAXPHYADDR_DEFAULT, NULL, NULL};
  struct paging_ctx u = w->ctl; /* SMEP/SMAP/AC mirrored; WP and NXE forced on */
  u.cr3 = shadow_root(w->m, v);
  u.wp = true;
  u.nxe = true;
  return paging_walk(&whole, &u, va, a, 0, sw) == PAGING_OK;
}

/* The access really happens on engine v: the translated-code model. */
static void perform(struct world *w, unsigned v, uint64_t g, enum paging_op op) {
  if (op == PAGING_FETCH) {
    if (w->tb[v][g] && w->tb[v][g] != w->ver[g])
      fail_msg("vCPU %u runs stale code of page %#llx (translated v%u, now v%u)", v,
               (unsigned long long)g << 12, w->tb[v][g], w->ver[g]);
    w->tb[v][g] = w->ver[g];
  } else if (op == PAGING_WRITE) {
    w->ver[g]++;
    if (w->tb[v][g]) w->tb[v][g] = w->ver[g]; /* Unicorn tracks its own engine's writes */
  }
}

static void apply_flush(struct world *w, const struct shadow_flush *fl) {
  uint64_t g = fl->va >> 12;
  for (unsigned v = 0; v < N_VCPUS; v++)
    if ((fl->code_vcpus >> v) & 1) w->tb[v][g] = 0;
  /* TLB flushes: the model's TLB is the shadow itself. */
}

static void check_no_writer_beside_executor(struct world *w, uint64_t g) {
  int writer = -1;
  for (unsigned v = 0; v < N_VCPUS; v++)
    if ((shadow_leaf(w->m, v, g << 12) & (PTE_P | PTE_RW)) == (PTE_P | PTE_RW)) writer = (int)v;
  if (writer < 0) return;
  for (unsigned v = 0; v < N_VCPUS; v++) {
    uint64_t e = shadow_leaf(w->m, v, g << 12);
    if ((int)v != writer && (e & PTE_P) && !(e & PTE_XD))
      fail_msg("page %#llx writable on vCPU %d and executable on vCPU %u", (unsigned long long)g << 12, writer, v);
  }
}

static struct paging_access random_access(struct rng *r) {
  struct paging_access a = {(enum paging_op)below(r, 3), (enum paging_mode)below(r, 3)};
  return a;
}

static uint64_t some_page(struct world *w) {
  struct rng *r = &w->rng;
  if (chance(r, 85)) return w->hot[below(r, sizeof w->hot / sizeof w->hot[0])];
  return (next(r) % SPAN) & ~UINT64_C(0xfff);
}

static void one_access(struct world *w) {
  struct rng *r = &w->rng;
  unsigned v = below(r, N_VCPUS);
  uint64_t va = some_page(w) + (next(r) & 0xff8);
  struct paging_access a = random_access(r);
  if ((va & ~UINT64_C(0xfff)) == HOST_BYTES) return; /* the pin is the simulator's, not the guest's */
  struct paging_ctx c = ctx_of(w, v);
  uint64_t g = va >> 12;
  struct paging_walk sw, gw;
  enum paging_status gs = paging_walk(shadow_guest_mem(w->m), &c, va, a, 0, &gw);

  if (unicorn_allows(w, v, va, a, &sw)) {
    w->allowed_directly++;
    if (gs != PAGING_OK) fail_msg("shadow allows what the guest refuses: vCPU %u %s %s of %#llx, guest %s ec %#x level %d, "
      "leaf %#llx, ctl nxe%d wp%d smep%d smap%d ac%d", v, paging_mode_name(a.mode), paging_op_name(a.op),
      (unsigned long long)va, paging_status_name(gs), gw.error_code, gw.level,
      (unsigned long long)shadow_leaf(w->m, v, va), w->ctl.nxe, w->ctl.wp, w->ctl.smep, w->ctl.smap, w->ctl.ac);
    assert_int_equal(gw.pa, va);
    assert_true(g < PAGES && !w->evicted[g]);
    if (a.op == PAGING_WRITE) assert_true(gw.dirty);
    perform(w, v, g, a.op);
    return;
  }

  struct shadow_fault_info i;
  enum shadow_verdict got = shadow_fault(w->m, v, &c, va, a, &i);
  w->verdicts[got]++;
  apply_flush(w, &i.flush);
  switch (gs) {
  case PAGING_FAULT:
    assert_int_equal(got, SHADOW_GUEST_FAULT);
    assert_int_equal(i.error_code, gw.error_code);
    return;
  case PAGING_BAD_TABLE:
    assert_int_equal(got, SHADOW_BAD_MAPPING);
    return;
  case PAGING_HOST_FAULT:
    assert_int_equal(got, SHADOW_HOST_FAULT);
    assert_true(i.in_walk);
    assert_int_equal(i.gfn, gw.gfn);
    return;
  case PAGING_OK:
    break;
  default:
    fail_msg("unexpected walker status %d", gs);
  }
  if ((gw.pa >> 12) != g || g >= PAGES) {
    assert_int_equal(got, SHADOW_BAD_MAPPING);
    assert_int_equal(i.bad, (gw.pa >> 12) != g ? SHADOW_BAD_NOT_IDENTITY : SHADOW_BAD_OUTSIDE_RAM);
    return;
  }
  if (w->evicted[g]) {
    assert_int_equal(got, SHADOW_HOST_FAULT);
    assert_false(i.in_walk);
    assert_int_equal(i.gfn, g);
    assert_false(shadow_leaf(w->m, v, va) & PTE_P);
    return;
  }
  assert_int_equal(got, SHADOW_FILLED);
  /* Progress: the retried instruction passes. Rights: the shadow's walk gives the
   * guest's U/S (unless the CR0.WP=0 supervisor-write leaf) and nothing wider. */
  if (!unicorn_allows(w, v, va, a, &sw))
    fail_msg("no progress: vCPU %u %s %s of %#llx still faults after a fill", v, paging_mode_name(a.mode),
             paging_op_name(a.op), (unsigned long long)va);
  bool wp0_leaf = !w->ctl.wp && sw.writable && !gw.writable;
  if (!wp0_leaf) assert_int_equal(sw.user, gw.user);
  else assert_false(sw.user);
  if (sw.writable) assert_true(gw.writable || !w->ctl.wp);
  if (!sw.nx) assert_false(gw.nx);
  struct paging_walk after;
  paging_walk(shadow_guest_mem(w->m), &c, va, a, 0, &after);
  assert_true(after.status == PAGING_OK);
  if (sw.writable) assert_true(after.dirty);
  perform(w, v, g, a.op);
  check_no_writer_beside_executor(w, g);
}

static void flush_all(struct world *w) {
  for (unsigned v = 0; v < N_VCPUS; v++) shadow_cr3_load(w->m, v, ctx_of(w, v).cr3);
}

static void guest_edit(struct world *w) {
  struct rng *r = &w->rng;
  uint64_t root = w->roots[below(r, N_ROOTS)];
  uint64_t va = some_page(w);
  int level = chance(r, 95) ? 1 : chance(r, 75) ? 2 : 3;
  uint64_t epa = existing_entry(w, root, va, level);
  if (!epa) return;
  uint64_t e = gpt_get(&w->pt, epa);
  if (level == 1 && (e & PTE_P) == 0 && (e & ENTRY_MASK) == 0) return;
  static const uint64_t flips[] = {PTE_P, PTE_RW, PTE_US, PTE_XD, PTE_D, PTE_A};
  /* Upper entries keep P, so one edit cannot unmap half of the world. */
  gpt_set(&w->pt, epa, e ^ flips[level == 1 ? below(r, 6) : 1 + below(r, 3)]);
  /* The guest flushes what it changed, as it must for the change to be seen. */
  if (level == 1) {
    for (unsigned v = 0; v < N_VCPUS; v++) shadow_invlpg(w->m, v, va);
  } else {
    flush_all(w);
  }
}

static void run_seed(uint64_t seed) {
  struct world *w = calloc(1, sizeof *w);
  w->rng.s = seed;
  w->mem = calloc(1, HOST_BYTES);
  gpt_init(&w->pt, w->mem, GUEST_BYTES, MIB, 2 * MIB);
  for (unsigned k = 0; k < N_ROOTS; k++) w->roots[k] = build_root(w);
  struct shadow_config cfg = {w->mem, GUEST_BYTES, PAGING_MAXPHYADDR_DEFAULT, GUEST_BYTES,
                              POOL_PAGES * PAGING_PAGE_SIZE, N_VCPUS};
  struct diag d;
  w->m = shadow_create(&cfg, &d);
  if (!w->m) fail_msg("%s", d.msg);
  shadow_set_residency(w->m, world_resident, w);
  /* A pinned simulator page beside the pool shares its PDPT and PD with the guest's. */
  if (!shadow_pin(w->m, HOST_BYTES, false, true, &d)) fail_msg("%s", d.msg);
  w->ctl = (struct paging_ctx){.nxe = chance(&w->rng, 80), .wp = chance(&w->rng, 70),
                               .smep = chance(&w->rng, 30), .smap = chance(&w->rng, 30), .gbpages = true};
  /* Unsupported (docs/mmu.md): SMAP with CR0.WP=0 — the supervisor-write leaf hides a
   * user page from SMAP. */
  if (!w->ctl.wp) w->ctl.smap = false;
  for (unsigned g = 0; g < PAGES; g++) w->ver[g] = 1;
  for (size_t k = 0; k < sizeof w->hot / sizeof w->hot[0]; k++)
    w->hot[k] = (next(&w->rng) % SPAN) & ~UINT64_C(0xfff);

  for (int op = 0; op < OPS; op++) {
    struct rng *r = &w->rng;
    unsigned k = below(r, 1000);
    if (k < 870) {
      one_access(w);
    } else if (k < 880) {
      unsigned v = below(r, N_VCPUS);
      w->root_of[v] = below(r, N_ROOTS);
      shadow_cr3_load(w->m, v, ctx_of(w, v).cr3);
    } else if (k < 900) {
      shadow_invlpg(w->m, below(r, N_VCPUS), some_page(w));
    } else if (k < 940) {
      guest_edit(w);
    } else if (k < 975) {
      uint64_t g = (some_page(w) >> 12) % PAGES;
      w->evicted[g] = !w->evicted[g];
      if (w->evicted[g]) {
        struct shadow_flush fl;
        shadow_zap_gfn(w->m, g, &fl);
        for (unsigned v = 0; v < N_VCPUS; v++) assert_false(shadow_leaf(w->m, v, g << 12) & PTE_P);
      }
    } else if (k < 990) {
      uint64_t g = (some_page(w) >> 12) % PAGES;
      struct shadow_flush fl;
      w->ver[g]++;
      shadow_host_write(w->m, g, &fl);
      apply_flush(w, &fl);
    } else if (k < 997) {
      w->ctl.ac = !w->ctl.ac; /* STAC/CLAC: no shadow change needed */
    } else {
      switch (below(r, 4)) { /* paging controls change: the vCPU layer resets every shadow */
      case 0: w->ctl.wp = !w->ctl.wp; break;
      case 1: w->ctl.nxe = !w->ctl.nxe; break;
      case 2: w->ctl.smep = !w->ctl.smep; break;
      default: w->ctl.smap = !w->ctl.smap; break;
      }
      if (!w->ctl.wp) w->ctl.smap = false;
      for (unsigned v = 0; v < N_VCPUS; v++) shadow_reset(w->m, v);
    }
    for (unsigned v = 0; v < N_VCPUS; v++)
      if (!(shadow_leaf(w->m, v, HOST_BYTES) & PTE_P)) fail_msg("pin lost on vCPU %u at op %d", v, op);
  }

  const struct shadow_stats *st = shadow_stats(w->m);
  print_message("seed %llu: direct %u filled %u guest %u host %u bad %u | flips %llu code %llu exhaust %llu "
                "table_zaps %llu spurious %llu\n",
                (unsigned long long)seed, w->allowed_directly, w->verdicts[SHADOW_FILLED],
                w->verdicts[SHADOW_GUEST_FAULT], w->verdicts[SHADOW_HOST_FAULT], w->verdicts[SHADOW_BAD_MAPPING],
                (unsigned long long)st->flips, (unsigned long long)st->code_flushes,
                (unsigned long long)st->exhaustion_resets, (unsigned long long)st->table_zaps,
                (unsigned long long)st->spurious_fills);
  /* The run must have exercised every verdict and the interesting paths. */
  for (int k = 0; k < 4; k++) assert_true(w->verdicts[k] > 0);
  assert_true(w->allowed_directly > 0);
  assert_true(st->flips > 0);
  assert_true(st->exhaustion_resets > 0);
  assert_int_equal(st->spurious_fills, 0); /* the model's TLB is exact */
  shadow_destroy(w->m);
  free(w->mem);
  free(w);
}

static void random_guests_agree_with_the_walker(void **state) {
  (void)state;
  static const uint64_t seeds[] = {1, 2, 3, 42, 1234, 0xdeadbeef, 99991, 7};
  for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) run_seed(seeds[k]);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(random_guests_agree_with_the_walker)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
