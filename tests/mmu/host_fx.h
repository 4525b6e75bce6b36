/* host_fx.h — a small machine for EPT and reclaim tests: guest memory with identity
 * page tables, the shadow MMU, the EPT and (optionally) reclaim, plus a model of what the
 * vCPU and the host layer will do on an access:
 *   1. the access goes through the vCPU's shadow root the way Unicorn's walker does
 *      (permissions, then A/D set in the shadow leaf);
 *   2. on a miss, shadow_fault; FILLED → retry; HOST_FAULT → the host handles the EPT
 *      violation (zero fill or a swap-in that completes at once, then reclaim_balance
 *      protecting the page) and retries.
 * Evictions are logged as text ("evict 0x12 dirty\n") so tests can assert exact victim
 * sequences and compare runs byte for byte. Test-only; no clock anywhere. */
#ifndef APFSIM_TESTS_HOST_FX_H
#define APFSIM_TESTS_HOST_FX_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_pt.h"
#include "mmu/ept.h"
#include "mmu/paging.h"
#include "mmu/reclaim.h"
#include "mmu/shadow.h"

#define HFX_TABLES UINT64_C(0x100000) /* guest page tables live here ... */
#define HFX_DATA UINT64_C(0x400000)   /* ... and the data pages the tests touch from here */
#define HFX_RWU (PTE_P | PTE_RW | PTE_US)

struct hfx {
  uint8_t *mem;
  uint64_t guest_bytes, host_bytes;
  struct guest_pt pt;
  struct shadow_mmu *m;
  struct ept *e;
  struct reclaim *r;
  struct paging_ctx ctx;
  uint64_t max_resident_seen;
  char log[1 << 16];
  size_t log_len;
  bool check_budget; /* abort if resident pages ever exceed the budget after a balance */
};

static inline void hfx_logf(struct hfx *f, const char *fmt, unsigned long long a, const char *b) {
  if (f->log_len < sizeof f->log)
    f->log_len += (size_t)snprintf(f->log + f->log_len, sizeof f->log - f->log_len, fmt, a, b);
}

static inline void hfx_sink(void *ctx, const struct reclaim_eviction *ev) {
  struct hfx *f = ctx;
  hfx_logf(f, "evict %#llx%s\n", (unsigned long long)ev->change.gfn, ev->change.dirty ? " dirty" : "");
}

/* guest_bytes of RAM (tables at HFX_TABLES, the rest free), n_vcpus, and a shadow pool. */
static inline struct hfx *hfx_new(uint64_t guest_bytes, unsigned n_vcpus, uint64_t pool_bytes) {
  struct hfx *f = calloc(1, sizeof *f);
  if (!f) abort();
  f->guest_bytes = guest_bytes;
  f->host_bytes = guest_bytes + pool_bytes;
  f->mem = calloc(1, f->host_bytes);
  if (!f->mem) abort();
  gpt_init(&f->pt, f->mem, guest_bytes, HFX_TABLES, HFX_DATA);
  struct shadow_config sc = {f->mem, guest_bytes, PAGING_MAXPHYADDR_DEFAULT, guest_bytes, pool_bytes, n_vcpus};
  struct diag d;
  f->m = shadow_create(&sc, &d);
  if (!f->m) {
    fprintf(stderr, "%s\n", d.msg);
    abort();
  }
  struct ept_config ec = {f->m, guest_bytes, EPT_INITIAL_ABSENT};
  f->e = ept_create(&ec, &d);
  if (!f->e) {
    fprintf(stderr, "%s\n", d.msg);
    abort();
  }
  f->ctx = (struct paging_ctx){.cr3 = f->pt.cr3, .nxe = true, .wp = true, .gbpages = true};
  f->check_budget = true;
  return f;
}

/* The guest's page tables are resident (loaded by the simulator before boot). */
static inline void hfx_load_tables(struct hfx *f) {
  struct diag d;
  if (!ept_host_loaded(f->e, HFX_TABLES, f->pt.next_table - HFX_TABLES, &d)) {
    fprintf(stderr, "%s\n", d.msg);
    abort();
  }
}

static inline void hfx_reclaim(struct hfx *f, uint64_t limit_bytes, enum reclaim_policy p, uint64_t seed) {
  struct reclaim_params rp = {limit_bytes, p, seed, 0};
  struct diag d;
  f->r = reclaim_create(f->e, &rp, &d);
  if (!f->r) {
    fprintf(stderr, "%s\n", d.msg);
    abort();
  }
}

static inline void hfx_free(struct hfx *f) {
  reclaim_destroy(f->r);
  ept_destroy(f->e);
  shadow_destroy(f->m);
  free(f->mem);
  free(f);
}

/* Identity-maps data pages [HFX_DATA + first*4K, +n pages), user RW, D set (so only the
 * host's dirty tracking makes a page read-only). */
static inline void hfx_map(struct hfx *f, uint64_t first, uint64_t n) {
  gpt_identity(&f->pt, HFX_DATA + first * PAGING_PAGE_SIZE, HFX_DATA + (first + n) * PAGING_PAGE_SIZE,
               HFX_RWU | PTE_D);
}

static inline uint64_t hfx_gfn(uint64_t page) { return (HFX_DATA >> PAGING_PAGE_SHIFT) + page; }

/* Does the vCPU's shadow allow it? Sets A (and D on a write) in the shadow leaf as
 * Unicorn's walker would. */
static inline bool hfx_shadow_allows(struct hfx *f, unsigned v, uint64_t va, struct paging_access a) {
  struct guest_mem whole = {f->mem, f->host_bytes, PAGING_MAXPHYADDR_DEFAULT, NULL, NULL};
  struct paging_ctx u = f->ctx;
  u.cr3 = shadow_root(f->m, v);
  u.wp = u.nxe = true;
  struct paging_walk w;
  return paging_walk(&whole, &u, va, a, PAGING_SET_AD, &w) == PAGING_OK;
}

/* The host layer's answer to an EPT violation, with reads completing at once. */
static inline void hfx_host_fault(struct hfx *f, unsigned v, uint64_t gfn) {
  struct ept_fault ft;
  struct diag d;
  ept_classify(f->e, gfn, &ft);
  bool ok = true;
  switch (ft.kind) {
  case EPT_FAULT_RETRY: return;
  case EPT_FAULT_ZERO_FILL: ok = ept_zero_fill(f->e, gfn, &d); break;
  case EPT_FAULT_SWAP_IN:
    ok = ept_start_fetch(f->e, gfn, v, 0, &d) && ept_complete_fetch(f->e, gfn, NULL, &d);
    if (ok) hfx_logf(f, "in %#llx%s\n", (unsigned long long)gfn, "");
    break;
  default:
    fprintf(stderr, "unexpected EPT fault kind %s on gfn %#llx\n", ept_fault_kind_name(ft.kind),
            (unsigned long long)gfn);
    abort();
  }
  if (!ok) {
    fprintf(stderr, "%s\n", d.msg);
    abort();
  }
  if (f->r) {
    reclaim_balance(f->r, gfn, hfx_sink, f);
    uint64_t b = reclaim_budget_pages(f->r);
    if (f->check_budget && b && ept_resident_pages(f->e) > b) {
      fprintf(stderr, "budget exceeded: %llu > %llu\n", (unsigned long long)ept_resident_pages(f->e),
              (unsigned long long)b);
      abort();
    }
  }
  if (ept_resident_pages(f->e) > f->max_resident_seen) f->max_resident_seen = ept_resident_pages(f->e);
}

/* One guest access by vCPU v to data page `page` (see hfx_map). */
static inline void hfx_access(struct hfx *f, unsigned v, uint64_t page, bool write) {
  uint64_t va = HFX_DATA + page * PAGING_PAGE_SIZE;
  struct paging_access a = {write ? PAGING_WRITE : PAGING_READ, PAGING_USER};
  for (int tries = 0; tries < 16; tries++) {
    if (hfx_shadow_allows(f, v, va, a)) return;
    struct shadow_fault_info i;
    switch (shadow_fault(f->m, v, &f->ctx, va, a, &i)) {
    case SHADOW_FILLED: continue;
    case SHADOW_HOST_FAULT: hfx_host_fault(f, v, i.gfn); continue;
    default: {
      char buf[256];
      shadow_describe(&i, buf, sizeof buf);
      fprintf(stderr, "unexpected: %s\n", buf);
      abort();
    }
    }
  }
  fprintf(stderr, "access to page %llu did not settle\n", (unsigned long long)page);
  abort();
}

/* No vCPU holds a present shadow leaf for a page the EPT says is not resident. */
static inline bool hfx_shadow_consistent(struct hfx *f, uint64_t first_gfn, uint64_t n, unsigned n_vcpus) {
  for (uint64_t g = first_gfn; g < first_gfn + n; g++) {
    if (ept_resident(f->e, g)) continue;
    for (unsigned v = 0; v < n_vcpus; v++)
      if (shadow_leaf(f->m, v, g << PAGING_PAGE_SHIFT) & PTE_P) return false;
  }
  return true;
}

#endif
