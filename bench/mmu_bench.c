/* mmu_bench.c — host-side cost of memory virtualization (sim/mmu), without Unicorn:
 *  - shadow_fill: one Unicorn #PF that the shadow MMU resolves (guest walk, residency
 *    callback into the EPT, leaf install), after an INVLPG dropped the leaf;
 *  - shadow_refill_after_cr3_load/64: a guest context switch (shadow reset, accessed-flag
 *    harvest) and the 64 fills that follow it;
 *  - evict_restore/nonresident:N: evict one mapped page (zap on 2 vCPUs, dirty check),
 *    classify the EPT violation, start and complete its swap-in, refill — with N other
 *    pages swapped out. Must not grow with N;
 *  - reclaim_fault/<policy>/nonresident:N: the steady state of a working set larger than
 *    memory (512 pages through 256) — a fault on a swapped page, its swap-in, a victim
 *    chosen by the policy and evicted, the refill — with N other pages swapped out
 *    (the counter shows all non-resident pages, the working set's included);
 *  - ept_classify: the answer to one EPT violation.
 * Guest RAM is 512 MiB (131072 pages) in every variant, so only N changes.
 * Run: build/bench/mmu_bench --benchmark_counters_tabular=true */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "mmu/ept.h"
#include "mmu/paging.h"
#include "mmu/reclaim.h"
#include "mmu/shadow.h"

#define MIB (UINT64_C(1) << 20)
#define RAM (512 * MIB)
#define POOL (4 * MIB)
#define PAGE PAGING_PAGE_SIZE
#define TABLES UINT64_C(0x100000) /* guest page tables: a bump region */
#define DATA UINT64_C(0x400000)   /* mapped data pages */
#define SWAPPED_FROM (64 * MIB)   /* the N idle swapped pages start here */
#define N_VCPUS 2

struct machine {
  uint8_t *mem;
  uint64_t next_table, cr3;
  struct shadow_mmu *m;
  struct ept *e;
  struct reclaim *r;
  struct paging_ctx ctx;
};

static void die(const char *what, const char *msg) {
  fprintf(stderr, "mmu_bench: %s: %s\n", what, msg);
  exit(1);
}

static uint64_t ld(const struct machine *x, uint64_t pa) {
  uint64_t e;
  memcpy(&e, x->mem + pa, 8);
  return e;
}

static uint64_t new_table(struct machine *x) {
  uint64_t t = x->next_table;
  x->next_table += PAGE;
  if (x->next_table > DATA) die("guest tables", "table region full");
  return t;
}

/* The guest's own identity mapping of one 4 KiB page, user RW, A and D set. */
static void guest_map(struct machine *x, uint64_t va) {
  uint64_t table = x->cr3;
  for (int level = 4; level > 1; level--) {
    uint64_t epa = table + ((va >> (12 + 9 * (level - 1))) & 511) * 8;
    uint64_t e = ld(x, epa);
    if (!(e & PTE_P)) {
      e = new_table(x) | PTE_P | PTE_RW | PTE_US;
      memcpy(x->mem + epa, &e, 8);
    }
    table = e & UINT64_C(0x000ffffffffff000);
  }
  uint64_t leaf = va | PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
  memcpy(x->mem + table + ((va >> 12) & 511) * 8, &leaf, 8);
}

/* 512 MiB of RAM, `mapped` data pages mapped by the guest (resident, or swapped),
 * `swapped` idle pages declared swapped, optional reclaim with a budget. */
static void machine_init(struct machine *x, uint64_t mapped, bool resident, uint64_t swapped, uint64_t budget,
                         enum reclaim_policy policy) {
  memset(x, 0, sizeof *x);
  x->mem = calloc(1, RAM + POOL);
  if (!x->mem) die("memory", "out of memory");
  x->next_table = TABLES;
  x->cr3 = new_table(x);
  for (uint64_t p = 0; p < mapped; p++) guest_map(x, DATA + p * PAGE);
  struct diag d;
  struct shadow_config sc = {x->mem, RAM, PAGING_MAXPHYADDR_DEFAULT, RAM, POOL, N_VCPUS};
  if (!(x->m = shadow_create(&sc, &d))) die("shadow", d.msg);
  struct ept_config ec = {x->m, RAM, EPT_INITIAL_ABSENT};
  if (!(x->e = ept_create(&ec, &d))) die("ept", d.msg);
  if (!ept_host_loaded(x->e, TABLES, x->next_table - TABLES, &d)) die("load", d.msg);
  for (uint64_t t = TABLES; t < x->next_table; t += PAGE)
    if (!ept_pin(x->e, t / PAGE, &d)) die("pin", d.msg);
  /* The mapped pages start resident (zero fills), or on swap so that every miss reads. */
  for (uint64_t p = 0; p < mapped; p++)
    if (!(resident ? ept_zero_fill(x->e, DATA / PAGE + p, &d)
                   : ept_evict(x->e, DATA / PAGE + p, EPT_EVICT_TO_SWAP, NULL, &d)))
      die("fill", d.msg);
  for (uint64_t g = SWAPPED_FROM / PAGE; g < SWAPPED_FROM / PAGE + swapped; g++)
    if (!ept_evict(x->e, g, EPT_EVICT_TO_SWAP, NULL, &d)) die("swap", d.msg);
  if (budget) {
    uint64_t pinned = (x->next_table - TABLES) / PAGE;
    struct reclaim_params rp = {(budget + pinned) * PAGE, policy, 1, 0};
    if (!(x->r = reclaim_create(x->e, &rp, &d))) die("reclaim", d.msg);
  }
  x->ctx = (struct paging_ctx){.cr3 = x->cr3, .nxe = true, .wp = true, .gbpages = true};
}

static void machine_free(struct machine *x) {
  reclaim_destroy(x->r);
  ept_destroy(x->e);
  shadow_destroy(x->m);
  free(x->mem);
}

static const struct paging_access UR = {PAGING_READ, PAGING_USER};

static void fill(struct machine *x, unsigned v, uint64_t va) {
  struct shadow_fault_info i;
  if (shadow_fault(x->m, v, &x->ctx, va, UR, &i) != SHADOW_FILLED) die("fill", shadow_verdict_name(i.verdict));
}

/* ---- benchmarks ---- */

static void bm_shadow_fill(struct bench_state *st, void *arg) {
  (void)arg;
  struct machine x;
  machine_init(&x, 512, true, 0, 0, RECLAIM_FIFO);
  int64_t items = 0;
  uint64_t p = 0;
  while (bench_keep_running(st)) {
    uint64_t va = DATA + p * PAGE;
    shadow_invlpg(x.m, 0, va);
    fill(&x, 0, va);
    p = (p + 1) & 511;
    items++;
  }
  bench_set_items_processed(st, items);
  machine_free(&x);
}

static void bm_refill_after_cr3_load(struct bench_state *st, void *arg) {
  (void)arg;
  struct machine x;
  machine_init(&x, 64, true, 0, 0, RECLAIM_FIFO);
  int64_t items = 0;
  while (bench_keep_running(st)) {
    shadow_cr3_load(x.m, 0, x.cr3);
    for (uint64_t p = 0; p < 64; p++) fill(&x, 0, DATA + p * PAGE);
    items++;
  }
  bench_set_items_processed(st, items);
  machine_free(&x);
}

static void bm_evict_restore(struct bench_state *st, void *arg) {
  uint64_t n = *(const uint64_t *)arg;
  struct machine x;
  machine_init(&x, 1, true, n, 0, RECLAIM_FIFO);
  const uint64_t g = DATA / PAGE;
  struct diag d;
  int64_t items = 0;
  for (unsigned v = 0; v < N_VCPUS; v++) fill(&x, v, DATA);
  while (bench_keep_running(st)) {
    struct ept_change c;
    struct ept_fault f;
    if (!ept_evict(x.e, g, EPT_EVICT_TO_SWAP, &c, &d)) die("evict", d.msg);
    ept_classify(x.e, g, &f);
    if (f.kind != EPT_FAULT_SWAP_IN) die("classify", ept_fault_kind_name(f.kind));
    if (!ept_start_fetch(x.e, g, 0, 0, &d) || !ept_complete_fetch(x.e, g, &c, &d)) die("fetch", d.msg);
    fill(&x, 0, DATA);
    fill(&x, 1, DATA);
    items++;
  }
  bench_set_items_processed(st, items);
  bench_set_counter(st, "nonresident", (double)ept_stats(x.e)->pages[EPT_SWAPPED], false);
  machine_free(&x);
}

struct reclaim_case {
  enum reclaim_policy policy;
  uint64_t nonresident;
};

/* 512 mapped pages cycled through 256 pages of memory: every access misses. */
static void bm_reclaim_fault(struct bench_state *st, void *arg) {
  const struct reclaim_case *rc = arg;
  struct machine x;
  machine_init(&x, 512, false, rc->nonresident, 256, rc->policy);
  struct diag d;
  int64_t items = 0;
  uint64_t p = 0, victims = 0;
  while (bench_keep_running(st)) {
    uint64_t va = DATA + p * PAGE, g = va / PAGE;
    unsigned v = (unsigned)(p & 1);
    struct shadow_fault_info i;
    if (shadow_fault(x.m, v, &x.ctx, va, UR, &i) == SHADOW_HOST_FAULT) {
      struct ept_fault f;
      ept_classify(x.e, g, &f);
      if (f.kind != EPT_FAULT_SWAP_IN) die("classify", ept_fault_kind_name(f.kind));
      if (!ept_start_fetch(x.e, g, v, 0, &d) || !ept_complete_fetch(x.e, g, NULL, &d)) die("fetch", d.msg);
      victims += reclaim_balance(x.r, g, NULL, NULL);
      fill(&x, v, va);
    }
    p = (p + 1) & 511;
    items++;
  }
  bench_set_items_processed(st, items);
  bench_set_counter(st, "nonresident", (double)ept_stats(x.e)->pages[EPT_SWAPPED], false);
  bench_set_counter(st, "victims/op", items ? (double)victims / (double)items : 0, false);
  machine_free(&x);
}

static void bm_classify(struct bench_state *st, void *arg) {
  (void)arg;
  struct machine x;
  machine_init(&x, 1, true, 100000, 0, RECLAIM_FIFO);
  int64_t items = 0;
  uint64_t k = 0, acc = 0;
  while (bench_keep_running(st)) {
    struct ept_fault f;
    ept_classify(x.e, SWAPPED_FROM / PAGE + k, &f);
    acc += f.kind;
    k = (k + 7919) % 100000; /* scattered over the swapped pages */
    items++;
  }
  bench_do_not_optimize(&acc);
  bench_set_items_processed(st, items);
  machine_free(&x);
}

static uint64_t nonresident[] = {1000, 10000, 100000};
static struct reclaim_case cases[] = {
    {RECLAIM_FIFO, 1000},  {RECLAIM_FIFO, 100000},  {RECLAIM_CLOCK, 1000},
    {RECLAIM_CLOCK, 10000}, {RECLAIM_CLOCK, 100000}, {RECLAIM_RANDOM, 1000}, {RECLAIM_RANDOM, 100000},
};
static char names[16][96];

int main(int argc, char **argv) {
  bench_register("shadow_fill", bm_shadow_fill, NULL);
  bench_register("shadow_refill_after_cr3_load/64", bm_refill_after_cr3_load, NULL);
  unsigned k = 0;
  for (unsigned i = 0; i < 3; i++) {
    snprintf(names[k], sizeof names[k], "evict_restore/nonresident:%llu", (unsigned long long)nonresident[i]);
    bench_register(names[k++], bm_evict_restore, &nonresident[i]);
  }
  for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(names[k], sizeof names[k], "reclaim_fault/%s/nonresident:%llu", reclaim_policy_name(cases[i].policy),
             (unsigned long long)cases[i].nonresident);
    bench_register(names[k++], bm_reclaim_fault, &cases[i]);
  }
  bench_register("ept_classify", bm_classify, NULL);
  return bench_main(argc, argv);
}
