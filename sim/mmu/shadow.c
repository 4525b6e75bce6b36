/* shadow.c — the shadow MMU (see shadow.h and docs/mmu.md).
 *
 * Layout: each vCPU owns one shadow root (a PML4 page that never moves, so Unicorn's
 * CR3 is constant) and the table pages hanging under it, all drawn from a pool of
 * 4 KiB pages at shadow_base. Shadow tables only ever hold 4 KiB identity leaves, so a
 * page gfn is mapped, if at all, by the leaf for va = gfn << 12 in each root: the
 * reverse map is one 4-level lookup per vCPU, with no per-page bookkeeping.
 *
 * Per guest page the MMU keeps one byte of code-coherence state and three bits: "a fill
 * walked a guest page table here", "the host copy may be dirty" (host_dirty: a leaf was
 * writable since the host last cleaned the page) and "a dropped leaf had its accessed
 * flag set" (young: what a shadow reset would otherwise forget). All are sized by guest
 * RAM, never by the number of resident or non-resident pages. */
#include "mmu/shadow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define ENTRY_ADDR UINT64_C(0x000ffffffffff000)
/* Intermediate shadow entries grant everything: the leaf alone carries the rights,
 * so Unicorn's combination over levels equals the leaf. A is preset so Unicorn's
 * walker need not write it. */
#define UPPER (PTE_P | PTE_RW | PTE_US | PTE_A)
/* Software bit (ignored by the CPU) in a shadow PDPTE/PDE: the table below holds
 * 4 KiB pieces of a guest 1 GiB/2 MiB page, so INVLPG of any address in it drops all. */
#define SPLIT (UINT64_C(1) << 9)

/* Code-coherence state of a guest page (one byte each). */
enum {
  PS_DATA = 0,  /* no engine may execute it or hold translated code of it; any may write */
  PS_CODE = 1,  /* any engine may execute it and hold translated code; none may write */
  PS_OWNED = 2, /* PS_OWNED + v: vCPU v may write and execute; others read only, NX */
};

struct vcpu_shadow {
  uint32_t root;        /* pool index of the PML4 */
  uint32_t owned_head;  /* the vCPU's other table pages, chained through next[] */
  uint32_t owned;       /* how many */
  uint32_t pinned;      /* how many of them a reset keeps (the pins' tables) */
  bool have_ctx;        /* filled_ctx is valid: the shadow was filled under it */
  struct paging_ctx filled_ctx;
};

struct pin {
  uint64_t va;
  uint64_t leaf;
};

struct shadow_mmu {
  struct guest_mem gm;
  uint8_t *host;
  uint64_t guest_pages;
  uint64_t pool_base;
  uint32_t pool_pages;
  uint32_t *next;       /* per pool page: next page of the same owner */
  uint32_t *free_stack; /* free pool pages */
  uint32_t n_free;
  uint8_t *page_state;  /* per guest page: PS_* */
  uint64_t *table_bits; /* per guest page: walked as a guest page table by some fill */
  uint64_t *host_dirty; /* per guest page: may differ from the host's clean copy; a leaf is
                           writable only while this is set (so the host's dirty bit is exact) */
  uint64_t *young;      /* per guest page: accessed through a leaf that has since been dropped */
  struct pin pins[SHADOW_MAX_PINS];
  unsigned n_pins;
  struct shadow_stats stats;
  unsigned n_vcpus;
  struct vcpu_shadow vcpu[];
};

/* ---- small helpers ---- */

static uint64_t ld(const struct shadow_mmu *m, uint64_t pa) {
  uint64_t e;
  memcpy(&e, m->host + pa, sizeof e);
  return e;
}

static void st(struct shadow_mmu *m, uint64_t pa, uint64_t e) { memcpy(m->host + pa, &e, sizeof e); }

static uint64_t pool_pa(const struct shadow_mmu *m, uint32_t idx) {
  return m->pool_base + (uint64_t)idx * PAGING_PAGE_SIZE;
}

static uint64_t bit(unsigned v) { return UINT64_C(1) << v; }

static uint64_t all_vcpus(const struct shadow_mmu *m) {
  return m->n_vcpus == 64 ? ~UINT64_C(0) : bit(m->n_vcpus) - 1;
}

static unsigned index_at(uint64_t va, int level) {
  return (unsigned)((va >> (PAGING_PAGE_SHIFT + 9 * (level - 1))) & 511);
}

static unsigned popcount64(uint64_t x) { return (unsigned)__builtin_popcountll(x); }

static bool bm_test(const uint64_t *bm, uint64_t g) { return (bm[g / 64] >> (g % 64)) & 1; }
static void bm_set(uint64_t *bm, uint64_t g) { bm[g / 64] |= bit((unsigned)(g % 64)); }
static void bm_clear(uint64_t *bm, uint64_t g) { bm[g / 64] &= ~bit((unsigned)(g % 64)); }
static uint64_t bm_words(uint64_t pages) { return (pages + 63) / 64; }

/* A leaf about to be dropped: keep its accessed flag for reclaim (young), so that a CR3
 * load — every guest context switch — does not make every page look unused. */
static void harvest_leaf(struct shadow_mmu *m, uint64_t e) {
  if ((e & (PTE_P | PTE_A)) != (PTE_P | PTE_A)) return;
  uint64_t g = (e & ENTRY_ADDR) >> PAGING_PAGE_SHIFT;
  if (g < m->guest_pages) bm_set(m->young, g); /* pins lie outside guest RAM */
}

/* Harvests every leaf under the table at pa (level 4 = a root ... 1 = a leaf table). */
static void harvest_table(struct shadow_mmu *m, uint64_t pa, int level) {
  for (unsigned i = 0; i < 512; i++) {
    uint64_t e = ld(m, pa + i * 8u);
    if (!(e & PTE_P)) continue;
    if (level == 1) harvest_leaf(m, e);
    else harvest_table(m, e & ENTRY_ADDR, level - 1);
  }
}

/* Physical address of vCPU v's shadow entry for va at level, or 0 when a table on
 * the way is missing (0 is never a pool address: the pool lies above guest RAM). */
static uint64_t lookup(const struct shadow_mmu *m, unsigned v, uint64_t va, int level) {
  uint64_t table = pool_pa(m, m->vcpu[v].root);
  for (int l = 4;; l--) {
    uint64_t epa = table + index_at(va, l) * 8u;
    if (l == level) return epa;
    uint64_t e = ld(m, epa);
    if (!(e & PTE_P)) return 0;
    table = e & ENTRY_ADDR;
  }
}

static uint64_t leaf_of(const struct shadow_mmu *m, unsigned v, uint64_t va) {
  uint64_t epa = lookup(m, v, va, 1);
  return epa ? ld(m, epa) : 0;
}

/* ---- table pool ---- */

static bool alloc_table(struct shadow_mmu *m, unsigned v, uint64_t *pa) {
  if (m->n_free == 0) return false;
  uint32_t idx = m->free_stack[--m->n_free];
  m->next[idx] = m->vcpu[v].owned_head;
  m->vcpu[v].owned_head = idx;
  m->vcpu[v].owned++;
  if (++m->stats.tables_in_use > m->stats.tables_peak) m->stats.tables_peak = m->stats.tables_in_use;
  *pa = pool_pa(m, idx); /* pages are zeroed when freed, so a fresh one is empty */
  return true;
}

/* Address of v's leaf slot for va, creating tables on the way; 0 when the pool is dry.
 * split_level (2 or 3) marks the entry at that level as covering a guest large page. */
static uint64_t ensure_slot(struct shadow_mmu *m, unsigned v, uint64_t va, int split_level) {
  uint64_t table = pool_pa(m, m->vcpu[v].root);
  for (int l = 4; l > 1; l--) {
    uint64_t epa = table + index_at(va, l) * 8u;
    uint64_t e = ld(m, epa);
    if (!(e & PTE_P)) {
      uint64_t t;
      if (!alloc_table(m, v, &t)) return 0;
      e = t | UPPER;
    }
    if (l == split_level) e |= SPLIT;
    st(m, epa, e);
    table = e & ENTRY_ADDR;
  }
  return table + index_at(va, 1) * 8u;
}

static void install_pins(struct shadow_mmu *m, unsigned v) {
  for (unsigned i = 0; i < m->n_pins; i++) {
    uint64_t slot = ensure_slot(m, v, m->pins[i].va, 0);
    /* Cannot fail: shadow_pin sized the pool for every vCPU's pins, and the caller
     * has just freed this vCPU's tables (which held its pins before). */
    if (!slot) abort();
    st(m, slot, m->pins[i].leaf);
  }
}

/* Empties vCPU v's shadow: tables back to the pool (zeroed), root zeroed, pins back. */
static void reset_vcpu(struct shadow_mmu *m, unsigned v) {
  struct vcpu_shadow *s = &m->vcpu[v];
  harvest_table(m, pool_pa(m, s->root), 4);
  for (uint32_t idx = s->owned_head; idx != NONE;) {
    uint32_t nx = m->next[idx];
    memset(m->host + pool_pa(m, idx), 0, PAGING_PAGE_SIZE);
    m->free_stack[m->n_free++] = idx;
    m->stats.tables_in_use--;
    idx = nx;
  }
  s->owned_head = NONE;
  s->owned = 0;
  s->have_ctx = false;
  memset(m->host + pool_pa(m, s->root), 0, PAGING_PAGE_SIZE);
  install_pins(m, v);
  s->pinned = s->owned;
  m->stats.resets++;
}

/* The pool is dry while filling for vCPU v: drop the largest shadow — another vCPU's
 * on a tie, since a stopped vCPU flushes its TLB more cheaply than the running one. */
static unsigned exhaustion_victim(const struct shadow_mmu *m, unsigned v) {
  unsigned victim = v;
  uint32_t most = m->vcpu[v].owned - m->vcpu[v].pinned;
  for (unsigned u = 0; u < m->n_vcpus; u++) {
    uint32_t n = m->vcpu[u].owned - m->vcpu[u].pinned;
    if (n > most || (n == most && victim == v && u != v)) {
      victim = u;
      most = n;
    }
  }
  /* Unreachable with nothing to give back: shadow_create/shadow_pin sized the pool. */
  if (most == 0) abort();
  return victim;
}

static void reset_all(struct shadow_mmu *m) {
  for (unsigned v = 0; v < m->n_vcpus; v++) reset_vcpu(m, v);
}

/* ---- creation ---- */

uint64_t shadow_min_bytes(unsigned n_vcpus) {
  /* A root each plus room for one 3-table fill per vCPU and one more after a reset. */
  return ((uint64_t)n_vcpus * 4 + 4) * PAGING_PAGE_SIZE;
}

struct shadow_mmu *shadow_create(const struct shadow_config *cfg, struct diag *err) {
  const uint64_t page = PAGING_PAGE_SIZE;
  if (!cfg->mem) return diag_set(err, "shadow MMU: no host memory buffer"), NULL;
  if (cfg->n_vcpus < 1 || cfg->n_vcpus > SHADOW_MAX_VCPUS)
    return diag_set(err, "shadow MMU: %u vCPUs (supported: 1..%d)", cfg->n_vcpus, SHADOW_MAX_VCPUS), NULL;
  if (cfg->maxphyaddr < 32 || cfg->maxphyaddr > 52)
    return diag_set(err, "shadow MMU: MAXPHYADDR %u out of range 32..52", cfg->maxphyaddr), NULL;
  if (cfg->guest_bytes == 0 || cfg->guest_bytes % page)
    return diag_set(err, "shadow MMU: guest RAM size %#llx is not a positive multiple of 4 KiB",
                    (unsigned long long)cfg->guest_bytes), NULL;
  if (cfg->shadow_base % page || cfg->shadow_base < cfg->guest_bytes)
    return diag_set(err, "shadow MMU: shadow area at %#llx must be 4 KiB aligned and above guest RAM (%#llx bytes)",
                    (unsigned long long)cfg->shadow_base, (unsigned long long)cfg->guest_bytes), NULL;
  if (cfg->shadow_bytes % page || cfg->shadow_bytes < shadow_min_bytes(cfg->n_vcpus) ||
      cfg->shadow_bytes / page >= NONE)
    return diag_set(err, "shadow MMU: shadow area of %#llx bytes must be a multiple of 4 KiB, at least %#llx for %u vCPUs",
                    (unsigned long long)cfg->shadow_bytes, (unsigned long long)shadow_min_bytes(cfg->n_vcpus),
                    cfg->n_vcpus), NULL;
  if (cfg->shadow_base + cfg->shadow_bytes > (UINT64_C(1) << cfg->maxphyaddr))
    return diag_set(err, "shadow MMU: shadow area ends above the %u-bit physical address space", cfg->maxphyaddr),
           NULL;

  struct shadow_mmu *m = calloc(1, sizeof *m + cfg->n_vcpus * sizeof m->vcpu[0]);
  if (!m) return diag_set(err, "shadow MMU: out of memory"), NULL;
  m->gm = (struct guest_mem){cfg->mem, cfg->guest_bytes, cfg->maxphyaddr, NULL, NULL};
  m->host = cfg->mem;
  m->guest_pages = cfg->guest_bytes / page;
  m->pool_base = cfg->shadow_base;
  m->pool_pages = (uint32_t)(cfg->shadow_bytes / page);
  m->n_vcpus = cfg->n_vcpus;
  m->next = malloc(m->pool_pages * sizeof *m->next);
  m->free_stack = malloc(m->pool_pages * sizeof *m->free_stack);
  m->page_state = calloc(m->guest_pages, 1);
  m->table_bits = calloc(bm_words(m->guest_pages), sizeof *m->table_bits);
  m->host_dirty = malloc(bm_words(m->guest_pages) * sizeof *m->host_dirty);
  m->young = calloc(bm_words(m->guest_pages), sizeof *m->young);
  if (!m->next || !m->free_stack || !m->page_state || !m->table_bits || !m->host_dirty || !m->young) {
    shadow_destroy(m);
    return diag_set(err, "shadow MMU: out of memory"), NULL;
  }
  /* Every page starts dirty: its content exists only in guest memory until the host
   * says otherwise (shadow_test_and_clear_dirty after a swap-in or a zero fill). */
  memset(m->host_dirty, 0xff, bm_words(m->guest_pages) * sizeof *m->host_dirty);
  memset(m->host + m->pool_base, 0, cfg->shadow_bytes);
  /* Hand out low pages first: a deterministic, compact layout. */
  for (uint32_t i = 0; i < m->pool_pages; i++) m->free_stack[i] = m->pool_pages - 1 - i;
  m->n_free = m->pool_pages;
  for (unsigned v = 0; v < m->n_vcpus; v++) {
    uint32_t idx = m->free_stack[--m->n_free];
    m->vcpu[v].root = idx;
    m->vcpu[v].owned_head = NONE;
    m->stats.tables_in_use++;
  }
  m->stats.tables_peak = m->stats.tables_in_use;
  return m;
}

void shadow_destroy(struct shadow_mmu *m) {
  if (!m) return;
  free(m->next);
  free(m->free_stack);
  free(m->page_state);
  free(m->table_bits);
  free(m->host_dirty);
  free(m->young);
  free(m);
}

void shadow_set_residency(struct shadow_mmu *m, bool (*resident)(void *ctx, uint64_t gfn), void *ctx) {
  m->gm.resident = resident;
  m->gm.resident_ctx = ctx;
}

const struct guest_mem *shadow_guest_mem(const struct shadow_mmu *m) { return &m->gm; }

unsigned shadow_n_vcpus(const struct shadow_mmu *m) { return m->n_vcpus; }

uint64_t shadow_root(const struct shadow_mmu *m, unsigned vcpu) { return pool_pa(m, m->vcpu[vcpu].root); }

const struct shadow_stats *shadow_stats(const struct shadow_mmu *m) { return &m->stats; }

uint64_t shadow_leaf(const struct shadow_mmu *m, unsigned vcpu, uint64_t va) {
  if (vcpu >= m->n_vcpus || !paging_is_canonical(va)) return 0;
  return leaf_of(m, vcpu, va);
}

/* ---- CR3, INVLPG ---- */

void shadow_cr3_load(struct shadow_mmu *m, unsigned vcpu, uint64_t guest_cr3) {
  (void)guest_cr3; /* the fault path takes CR3 from paging_ctx; the load itself is the event */
  reset_vcpu(m, vcpu);
}

void shadow_reset(struct shadow_mmu *m, unsigned vcpu) { reset_vcpu(m, vcpu); }

/* Clears v's leaves for guest pages in [start, end). Pins (outside RAM) survive. */
static void drop_range(struct shadow_mmu *m, unsigned v, uint64_t start, uint64_t end) {
  uint64_t ram_end = m->guest_pages << PAGING_PAGE_SHIFT;
  if (end > ram_end) end = ram_end;
  for (uint64_t chunk = start; chunk < end; chunk += PAGING_SIZE_2M) {
    uint64_t pde = lookup(m, v, chunk, 2);
    if (!pde || !(ld(m, pde) & PTE_P)) continue;
    uint64_t pt = ld(m, pde) & ENTRY_ADDR;
    if (chunk + PAGING_SIZE_2M <= end) {
      harvest_table(m, pt, 1);
      memset(m->host + pt, 0, PAGING_PAGE_SIZE);
    } else {
      for (uint64_t va = chunk; va < end; va += PAGING_PAGE_SIZE) {
        uint64_t epa = pt + index_at(va, 1) * 8u;
        harvest_leaf(m, ld(m, epa));
        st(m, epa, 0);
      }
    }
  }
}

void shadow_invlpg(struct shadow_mmu *m, unsigned vcpu, uint64_t va) {
  m->stats.invlpgs++;
  if (!paging_is_canonical(va)) return; /* INVLPG of a non-canonical address is a no-op */
  for (int level = 3; level >= 2; level--) {
    uint64_t epa = lookup(m, vcpu, va, level);
    if (!epa) return;
    uint64_t e = ld(m, epa);
    if (e & SPLIT) {
      uint64_t size = level == 3 ? PAGING_SIZE_1G : PAGING_SIZE_2M;
      uint64_t base = va & ~(size - 1);
      drop_range(m, vcpu, base, base + size);
      st(m, epa, e & ~SPLIT);
      return;
    }
  }
  if ((va >> PAGING_PAGE_SHIFT) >= m->guest_pages) return; /* pins are not the guest's to drop */
  uint64_t epa = lookup(m, vcpu, va, 1);
  if (epa) {
    harvest_leaf(m, ld(m, epa));
    st(m, epa, 0);
  }
}

/* ---- code coherence ---- */

/* In every vCPU of `who` (the faulting one excluded by the caller), removes rights
 * from the leaf for va: clear_rw drops R/W, set_nx adds XD. Returns the vCPUs whose
 * leaf lost a right — their Unicorn TLB may still hold it. */
static uint64_t restrict_leaves(struct shadow_mmu *m, uint64_t who, uint64_t va, bool clear_rw, bool set_nx) {
  uint64_t lost = 0;
  for (unsigned v = 0; v < m->n_vcpus; v++) {
    if (!(who & bit(v))) continue;
    uint64_t epa = lookup(m, v, va, 1);
    if (!epa) continue;
    uint64_t e = ld(m, epa);
    if (!(e & PTE_P)) continue;
    uint64_t ne = e;
    if (clear_rw) ne &= ~PTE_RW;
    if (set_nx) ne |= PTE_XD;
    if (ne != e) {
      st(m, epa, ne);
      lost |= bit(v);
    }
  }
  return lost;
}

/* Moves page g into a state where vCPU v may perform op (the guest allows it).
 * Invariant kept: if some vCPU may write g, no other vCPU may execute it, and no other
 * engine holds translated code of it that predates that vCPU's writes. */
static void make_usable(struct shadow_mmu *m, unsigned v, uint64_t g, enum paging_op op, struct shadow_flush *fl) {
  uint8_t s = m->page_state[g];
  const uint8_t mine = (uint8_t)(PS_OWNED + v);
  const uint64_t va = g << PAGING_PAGE_SHIFT;
  const uint64_t others = all_vcpus(m) & ~bit(v);
  if (op == PAGING_WRITE) {
    if (s == PS_CODE) {
      /* Others may run it and hold code of it: revoke execution, drop their code. */
      fl->tlb_vcpus |= restrict_leaves(m, others, va, false, true);
      fl->code_vcpus |= others;
      m->page_state[g] = mine;
    } else if (s >= PS_OWNED && s != mine) {
      /* Only the old owner may hold code of it (it could also write it). */
      uint64_t old = bit((unsigned)(s - PS_OWNED));
      fl->tlb_vcpus |= restrict_leaves(m, old, va, true, true);
      fl->code_vcpus |= old;
      m->page_state[g] = mine;
    }
  } else if (op == PAGING_FETCH) {
    if (s == PS_DATA) {
      /* Nobody holds code of a DATA page; writers elsewhere must lose write. */
      fl->tlb_vcpus |= restrict_leaves(m, others, va, true, false);
      m->page_state[g] = mine;
    } else if (s >= PS_OWNED && s != mine) {
      /* The owner's code is fresh (its own writes); it just may not write any more. */
      uint64_t old = bit((unsigned)(s - PS_OWNED));
      fl->tlb_vcpus |= restrict_leaves(m, old, va, true, false);
      m->page_state[g] = PS_CODE;
    }
  }
  if (fl->tlb_vcpus | fl->code_vcpus) m->stats.flips++;
  m->stats.code_flushes += popcount64(fl->code_vcpus);
}

/* The leaf for page g on vCPU v, from the guest's walk and the page's state. */
static uint64_t leaf_for(const struct shadow_mmu *m, unsigned v, uint64_t g, const struct paging_ctx *ctx,
                         const struct paging_walk *w) {
  uint8_t s = m->page_state[g];
  bool mine = s == PS_OWNED + v;
  bool can_write = s == PS_DATA || mine;
  bool can_exec = s == PS_CODE || mine;
  bool user = w->user;
  /* Writable only once the guest's D flag is set, and only while the host counts the page
   * dirty: in either case the first write must fault, to set the flag. */
  bool host_w = bm_test(m->host_dirty, g) || w->access.op == PAGING_WRITE;
  bool writable = can_write && w->writable && w->dirty && host_w;
  bool nx = !can_exec || w->nx;
  if (w->access.op == PAGING_WRITE && !w->writable) {
    /* Allowed only by CR0.WP=0 for a supervisor write (Unicorn runs WP=1): writable for
     * the supervisor alone, as KVM does; a user access will fault and refill. U/S=0
     * would hide a user page from SMEP, so keep such a page non-executable. */
    writable = true;
    user = false;
    if (w->user && ctx->smep) nx = true;
  }
  uint64_t leaf = (g << PAGING_PAGE_SHIFT) | PTE_P | PTE_A | PTE_D;
  if (writable) leaf |= PTE_RW;
  if (user) leaf |= PTE_US;
  if (nx) leaf |= PTE_XD;
  return leaf;
}

/* A fill must not silently take a right back from the faulting vCPU's own leaf: its
 * Unicorn TLB may still hold it, and later state changes would not know to flush it.
 * Rights the page state still allows are kept (a guest that lowered its rights without
 * INVLPG may see the old ones, as with a TLB); a right that must go (the CR0.WP=0 leaf
 * changing hands between supervisor and user) names this vCPU for a TLB flush. */
static uint64_t keep_rights(const struct shadow_mmu *m, unsigned v, uint64_t g, uint64_t old, uint64_t leaf,
                            struct shadow_flush *fl) {
  uint8_t s = m->page_state[g];
  bool mine = s == PS_OWNED + v;
  if ((old & PTE_US) == (leaf & PTE_US)) {
    if ((old & PTE_RW) && (s == PS_DATA || mine)) leaf |= PTE_RW;
    if (!(old & PTE_XD) && (s == PS_CODE || mine)) leaf &= ~PTE_XD;
  }
  if (((old & PTE_RW) && !(leaf & PTE_RW)) || (!(old & PTE_XD) && (leaf & PTE_XD))) fl->tlb_vcpus |= bit(v);
  return leaf;
}

/* ---- the fault path ---- */

static bool same_controls(const struct paging_ctx *a, const struct paging_ctx *b) {
  return a->cr3 == b->cr3 && a->nxe == b->nxe && a->wp == b->wp && a->smep == b->smep && a->smap == b->smap &&
         a->gbpages == b->gbpages;
}

static enum shadow_verdict bad(struct shadow_mmu *m, struct shadow_fault_info *out, enum shadow_bad_reason r) {
  m->stats.bad_mappings++;
  out->bad = r;
  return out->verdict = SHADOW_BAD_MAPPING;
}

static void mark_tables(struct shadow_mmu *m, const struct paging_walk *w) {
  for (unsigned i = 0; i < w->n_entries; i++) {
    uint64_t g = w->entry_pa[i] >> PAGING_PAGE_SHIFT;
    m->table_bits[g / 64] |= bit((unsigned)(g % 64));
  }
}

enum shadow_verdict shadow_fault(struct shadow_mmu *m, unsigned vcpu, const struct paging_ctx *ctx, uint64_t va,
                                 struct paging_access access, struct shadow_fault_info *out) {
  memset(out, 0, sizeof *out);
  out->va = va;
  out->access = access;
  out->flush.va = va & ~(PAGING_PAGE_SIZE - 1);
  struct vcpu_shadow *s = &m->vcpu[vcpu];

  /* Leaves filled under other paging controls are wrong now: start over. */
  if (s->have_ctx && !same_controls(&s->filled_ctx, ctx)) {
    reset_vcpu(m, vcpu);
    m->stats.ctx_resets++;
    out->flush.full_tlb_vcpus |= bit(vcpu);
  }

  struct paging_walk *w = &out->walk;
  switch (paging_walk(&m->gm, ctx, va, access, 0, w)) {
  case PAGING_OK:
    break;
  case PAGING_FAULT:
    m->stats.guest_faults++;
    out->error_code = w->error_code;
    return out->verdict = SHADOW_GUEST_FAULT;
  case PAGING_HOST_FAULT:
    m->stats.host_faults++;
    out->gfn = w->gfn;
    out->in_walk = true;
    return out->verdict = SHADOW_HOST_FAULT;
  case PAGING_BAD_TABLE:
    return bad(m, out, SHADOW_BAD_TABLE_OUTSIDE);
  case PAGING_NONCANONICAL:
  default:
    return bad(m, out, SHADOW_BAD_NONCANONICAL);
  }

  const uint64_t g = va >> PAGING_PAGE_SHIFT;
  if ((w->pa >> PAGING_PAGE_SHIFT) != g) return bad(m, out, SHADOW_BAD_NOT_IDENTITY);
  if (g >= m->guest_pages) return bad(m, out, SHADOW_BAD_OUTSIDE_RAM);

  /* The access is the guest's to make: A/D as the hardware sets them, then EPT. */
  paging_set_accessed_dirty(&m->gm, w, access.op == PAGING_WRITE);
  if (m->gm.resident && !m->gm.resident(m->gm.resident_ctx, g)) {
    m->stats.host_faults++;
    out->gfn = g;
    return out->verdict = SHADOW_HOST_FAULT;
  }

  int split_level = w->page_size == PAGING_SIZE_1G ? 3 : w->page_size == PAGING_SIZE_2M ? 2 : 0;
  uint64_t slot;
  while (!(slot = ensure_slot(m, vcpu, va, split_level))) {
    unsigned victim = exhaustion_victim(m, vcpu);
    reset_vcpu(m, victim);
    out->flush.full_tlb_vcpus |= bit(victim);
    m->stats.exhaustion_resets++;
  }
  s->filled_ctx = *ctx;
  s->have_ctx = true;
  mark_tables(m, w);

  uint8_t before = m->page_state[g];
  make_usable(m, vcpu, g, access.op, &out->flush);
  uint64_t old = ld(m, slot);
  uint64_t leaf = leaf_for(m, vcpu, g, ctx, w);
  if (old & PTE_P) leaf = keep_rights(m, vcpu, g, old, leaf, &out->flush);
  st(m, slot, leaf);
  if (leaf & PTE_RW) bm_set(m->host_dirty, g); /* from here on a write need not trap */
  m->stats.fills++;
  if (leaf == old) {
    out->spurious = true;
    m->stats.spurious_fills++;
  } else if (access.op == PAGING_WRITE && (old & PTE_P) && before == m->page_state[g]) {
    m->stats.dirty_upgrades++;
  }
  return out->verdict = SHADOW_FILLED;
}

/* ---- host side ---- */

void shadow_zap_gfn(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out) {
  memset(out, 0, sizeof *out);
  out->va = gfn << PAGING_PAGE_SHIFT;
  if (gfn >= m->guest_pages) return;
  if (m->table_bits[gfn / 64] & bit((unsigned)(gfn % 64))) {
    /* Leaves anywhere may derive from this table: drop them all, as INVEPT would. */
    reset_all(m);
    memset(m->table_bits, 0, bm_words(m->guest_pages) * sizeof *m->table_bits);
    bm_clear(m->young, gfn);
    m->stats.table_zaps++;
    out->full_tlb_vcpus = all_vcpus(m);
    return;
  }
  bm_clear(m->young, gfn); /* the page leaves; its next life starts unreferenced */
  for (unsigned v = 0; v < m->n_vcpus; v++) {
    uint64_t epa = lookup(m, v, out->va, 1);
    if (epa && (ld(m, epa) & PTE_P)) {
      st(m, epa, 0);
      out->tlb_vcpus |= bit(v);
      m->stats.zaps++;
    }
  }
}

void shadow_host_write(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out) {
  memset(out, 0, sizeof *out);
  out->va = gfn << PAGING_PAGE_SHIFT;
  if (gfn >= m->guest_pages) return;
  bm_set(m->host_dirty, gfn);
  uint8_t s = m->page_state[gfn];
  if (s == PS_CODE) out->code_vcpus = all_vcpus(m);
  else if (s >= PS_OWNED) out->code_vcpus = bit((unsigned)(s - PS_OWNED));
  m->stats.code_flushes += popcount64(out->code_vcpus);
}

bool shadow_test_and_clear_accessed(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out) {
  memset(out, 0, sizeof *out);
  out->va = gfn << PAGING_PAGE_SHIFT;
  if (gfn >= m->guest_pages) return false;
  bool young = bm_test(m->young, gfn);
  bm_clear(m->young, gfn);
  for (unsigned v = 0; v < m->n_vcpus; v++) {
    uint64_t epa = lookup(m, v, out->va, 1);
    if (!epa) continue;
    uint64_t e = ld(m, epa);
    if ((e & PTE_P) && (e & PTE_A)) {
      st(m, epa, e & ~PTE_A);
      out->tlb_vcpus |= bit(v);
    }
  }
  return young || out->tlb_vcpus != 0;
}

bool shadow_test_and_clear_dirty(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out) {
  memset(out, 0, sizeof *out);
  out->va = gfn << PAGING_PAGE_SHIFT;
  if (gfn >= m->guest_pages) return false;
  bool dirty = bm_test(m->host_dirty, gfn);
  bm_clear(m->host_dirty, gfn);
  if (!dirty) return false; /* no leaf can be writable: nothing to write-protect */
  for (unsigned v = 0; v < m->n_vcpus; v++) {
    uint64_t epa = lookup(m, v, out->va, 1);
    if (!epa) continue;
    uint64_t e = ld(m, epa);
    if ((e & PTE_P) && (e & PTE_RW)) {
      st(m, epa, e & ~PTE_RW);
      out->tlb_vcpus |= bit(v);
      m->stats.write_protects++;
    }
  }
  return true;
}

bool shadow_pin(struct shadow_mmu *m, uint64_t va, bool writable, bool executable, struct diag *err) {
  uint64_t page = PAGING_PAGE_SIZE;
  uint64_t pool_end = m->pool_base + (uint64_t)m->pool_pages * page;
  if (va % page || va < (m->guest_pages << PAGING_PAGE_SHIFT) || (va >= m->pool_base && va < pool_end) ||
      va >= (UINT64_C(1) << m->gm.maxphyaddr))
    return diag_set(err, "shadow MMU: cannot pin %#llx: pins must be 4 KiB aligned, outside guest RAM and the table pool",
                    (unsigned long long)va);
  if (m->n_pins == SHADOW_MAX_PINS) return diag_set(err, "shadow MMU: more than %d pinned pages", SHADOW_MAX_PINS);
  /* After dropping every shadow, each vCPU still holds its root and its pins' tables;
   * one fill (3 tables) must always fit beside them. */
  uint64_t need = (uint64_t)m->n_vcpus * (1 + 3 * (m->n_pins + 1)) + 3;
  if (m->pool_pages < need)
    return diag_set(err, "shadow MMU: table pool of %u pages too small for %u pins on %u vCPUs (need %llu)",
                    m->pool_pages, m->n_pins + 1, m->n_vcpus, (unsigned long long)need);
  uint64_t leaf = va | PTE_P | PTE_A | PTE_D | (writable ? PTE_RW : 0) | (executable ? 0 : PTE_XD);
  m->pins[m->n_pins++] = (struct pin){va, leaf};
  /* Pins are set up before the vCPUs run: start every shadow afresh with them (a reset
   * also records how many tables the pins take, which exhaustion must not count). */
  reset_all(m);
  return true;
}

/* ---- text ---- */

const char *shadow_verdict_name(enum shadow_verdict v) {
  switch (v) {
  case SHADOW_FILLED: return "filled";
  case SHADOW_GUEST_FAULT: return "guest_fault";
  case SHADOW_HOST_FAULT: return "host_fault";
  case SHADOW_BAD_MAPPING: return "bad_mapping";
  }
  return "?";
}

void shadow_describe(const struct shadow_fault_info *i, char *buf, size_t len) {
  const unsigned long long va = (unsigned long long)i->va;
  const char *op = paging_op_name(i->access.op), *mode = paging_mode_name(i->access.mode);
  switch (i->verdict) {
  case SHADOW_FILLED:
    snprintf(buf, len, "shadow fill: %s %s of va %#llx%s", mode, op, va, i->spurious ? " (already allowed)" : "");
    return;
  case SHADOW_GUEST_FAULT: {
    uint32_t ec = i->error_code;
    snprintf(buf, len, "guest page fault: %s %s of va %#llx, error code %#x [%s%s%s%s%s]", mode, op, va, ec,
             ec & PF_EC_P ? "P" : "not-present", ec & PF_EC_W ? " W" : "", ec & PF_EC_U ? " U" : "",
             ec & PF_EC_RSVD ? " RSVD" : "", ec & PF_EC_I ? " I/D" : "");
    return;
  }
  case SHADOW_HOST_FAULT:
    snprintf(buf, len, "EPT violation: gfn %#llx is not resident (%s %s of va %#llx%s)",
             (unsigned long long)i->gfn, mode, op, va, i->in_walk ? ", reading the guest page table held there" : "");
    return;
  case SHADOW_BAD_MAPPING:
    break;
  }
  switch (i->bad) {
  case SHADOW_BAD_NOT_IDENTITY:
    snprintf(buf, len,
             "guest page tables map va %#llx to pa %#llx: apfsim needs every guest mapping to be the identity "
             "(VA == PA, DESIGN.md section 7) because Unicorn 2.0.1 accesses the virtual address",
             va, (unsigned long long)i->walk.pa);
    return;
  case SHADOW_BAD_OUTSIDE_RAM:
    snprintf(buf, len, "guest page tables map va %#llx, which is outside guest RAM", va);
    return;
  case SHADOW_BAD_TABLE_OUTSIDE:
    snprintf(buf, len, "guest paging-structure entry at pa %#llx (translating va %#llx) lies outside guest RAM",
             (unsigned long long)i->walk.bad_pa, va);
    return;
  case SHADOW_BAD_NONCANONICAL:
    snprintf(buf, len, "non-canonical va %#llx reached the shadow MMU (the vCPU raises #GP for these)", va);
    return;
  case SHADOW_BAD_NONE:
    break;
  }
  snprintf(buf, len, "bad mapping at va %#llx", va);
}
