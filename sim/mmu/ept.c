/* ept.c — host page state (see ept.h and docs/mmu.md "EPT").
 *
 * Layout: one byte per page, in one array for RAM and one per DAX window (a window may
 * sit gigabytes above RAM; the hole between costs nothing). A byte holds the state, a
 * "pinned" flag, a "the device holds this page" flag and, for a lost page, why. Reads in
 * flight — the only pages with more to remember (who waits, when it is due) — live in a
 * small open-addressing table keyed by gfn, sized by the peak number of reads.
 *
 * Every state change goes through put(), which keeps the per-state counts and tells the
 * reclaim observer when a page starts or stops being an eviction candidate. */
#include "mmu/ept.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MASK 0x07u
#define F_PINNED 0x08u
#define F_STORED 0x10u /* the swap device holds the page's content (valid unless dirty) */
#define LOSS_SHIFT 5   /* bits 6:5: enum ept_loss of an UNRESOLVABLE page */
#define LOSS_MASK 0x60u

#define INFLIGHT_EMPTY UINT64_MAX
#define INFLIGHT_MIN_CAP 64u

struct region {
  uint64_t base;        /* first gfn */
  uint64_t pages;
  uint64_t file_offset; /* DAX: file byte offset of the first page */
  uint8_t *st;
};

struct inflight {
  uint64_t gfn; /* INFLIGHT_EMPTY: free slot */
  uint64_t waiters;
  uint64_t ready_ns;
};

struct pin {
  uint64_t gfn;
  uint32_t count;
};

struct ept {
  struct shadow_mmu *shadow;
  unsigned n_vcpus;
  struct region ram;
  struct region dax[EPT_MAX_DAX_WINDOWS];
  unsigned n_dax;
  struct inflight *inflight; /* power-of-two capacity, linear probing */
  size_t inflight_cap, inflight_n;
  struct pin pins[EPT_MAX_PINNED_PAGES];
  unsigned n_pins;
  bool installed; /* ept_resident is the shadow's residency callback */
  ept_candidate_fn observer;
  void *observer_ctx;
  struct ept_stats stats;
};

/* ---- pages ---- */

static enum ept_state st_of(uint8_t b) { return (enum ept_state)(b & ST_MASK); }

/* The region holding gfn and its index there, or NULL: not guest memory. */
static struct region *region_of(const struct ept *e, uint64_t gfn, uint64_t *idx) {
  if (gfn < e->ram.pages) {
    *idx = gfn;
    return (struct region *)&e->ram;
  }
  for (unsigned w = 0; w < e->n_dax; w++) {
    const struct region *r = &e->dax[w];
    if (gfn - r->base < r->pages && gfn >= r->base) {
      *idx = gfn - r->base;
      return (struct region *)r;
    }
  }
  return NULL;
}

static bool is_candidate(const struct ept *e, const struct region *r, uint8_t b) {
  return r == &e->ram && st_of(b) == EPT_RESIDENT && !(b & F_PINNED);
}

/* The one place a page byte changes: counts, peak, reclaim's observer. */
static void put(struct ept *e, struct region *r, uint64_t i, uint8_t nb) {
  uint8_t ob = r->st[i];
  enum ept_state os = st_of(ob), ns = st_of(nb);
  r->st[i] = nb;
  if (os != ns) {
    e->stats.pages[os]--;
    e->stats.pages[ns]++;
    if (e->stats.pages[EPT_RESIDENT] > e->stats.resident_peak) e->stats.resident_peak = e->stats.pages[EPT_RESIDENT];
  }
  bool oc = is_candidate(e, r, ob), nc = is_candidate(e, r, nb);
  if (oc != nc && e->observer) e->observer(e->observer_ctx, r->base + i, nc);
}

static uint8_t with_state(uint8_t b, enum ept_state s) { return (uint8_t)((b & ~ST_MASK) | (unsigned)s); }

/* ---- reads in flight: gfn-keyed table (Fibonacci hashing of the gfn, never of an address) ---- */

static size_t slot_hash(uint64_t gfn, size_t cap) {
  return (size_t)((gfn * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (cap - 1);
}

static struct inflight *inflight_find(const struct ept *e, uint64_t gfn) {
  for (size_t i = slot_hash(gfn, e->inflight_cap);; i = (i + 1) & (e->inflight_cap - 1)) {
    struct inflight *s = &e->inflight[i];
    if (s->gfn == gfn) return s;
    if (s->gfn == INFLIGHT_EMPTY) return NULL;
  }
}

static void inflight_place(struct inflight *tab, size_t cap, const struct inflight *rec) {
  size_t i = slot_hash(rec->gfn, cap);
  while (tab[i].gfn != INFLIGHT_EMPTY) i = (i + 1) & (cap - 1);
  tab[i] = *rec;
}

static struct inflight *alloc_table(size_t cap) {
  struct inflight *t = malloc(cap * sizeof *t);
  if (t)
    for (size_t i = 0; i < cap; i++) t[i].gfn = INFLIGHT_EMPTY;
  return t;
}

/* Grows at half load, so probes stay short; growth follows the peak number of reads. */
static bool inflight_insert(struct ept *e, const struct inflight *rec) {
  if (2 * (e->inflight_n + 1) > e->inflight_cap) {
    size_t cap = e->inflight_cap * 2;
    struct inflight *t = alloc_table(cap);
    if (!t) return false;
    for (size_t i = 0; i < e->inflight_cap; i++)
      if (e->inflight[i].gfn != INFLIGHT_EMPTY) inflight_place(t, cap, &e->inflight[i]);
    free(e->inflight);
    e->inflight = t;
    e->inflight_cap = cap;
  }
  inflight_place(e->inflight, e->inflight_cap, rec);
  e->inflight_n++;
  if (e->inflight_n > e->stats.in_flight_peak) e->stats.in_flight_peak = e->inflight_n;
  return true;
}

/* Removes *s, shifting later members of its probe run back (no tombstones). */
static void inflight_remove(struct ept *e, struct inflight *s) {
  size_t mask = e->inflight_cap - 1;
  size_t hole = (size_t)(s - e->inflight);
  for (size_t i = (hole + 1) & mask; e->inflight[i].gfn != INFLIGHT_EMPTY; i = (i + 1) & mask) {
    size_t home = slot_hash(e->inflight[i].gfn, e->inflight_cap);
    /* Move it into the hole unless its home lies cyclically in (hole, i]. */
    bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (!stays) {
      e->inflight[hole] = e->inflight[i];
      hole = i;
    }
  }
  e->inflight[hole].gfn = INFLIGHT_EMPTY;
  e->inflight_n--;
}

/* ---- creation ---- */

struct ept *ept_create(const struct ept_config *cfg, struct diag *err) {
  if (!cfg->shadow) return diag_set(err, "EPT: no shadow MMU"), NULL;
  uint64_t span = shadow_guest_mem(cfg->shadow)->bytes;
  if (cfg->ram_bytes == 0 || cfg->ram_bytes % PAGING_PAGE_SIZE || cfg->ram_bytes > span)
    return diag_set(err, "EPT: guest RAM of %#llx bytes must be a positive multiple of 4 KiB within the shadow MMU's "
                         "guest range (%#llx bytes)",
                    (unsigned long long)cfg->ram_bytes, (unsigned long long)span),
           NULL;
  if (cfg->initial != EPT_INITIAL_ABSENT && cfg->initial != EPT_INITIAL_SWAPPED)
    return diag_set(err, "EPT: unknown initial state %d", (int)cfg->initial), NULL;
  struct ept *e = calloc(1, sizeof *e);
  if (!e) return diag_set(err, "EPT: out of memory"), NULL;
  e->shadow = cfg->shadow;
  e->n_vcpus = shadow_n_vcpus(cfg->shadow);
  e->ram.pages = cfg->ram_bytes / PAGING_PAGE_SIZE;
  e->ram.st = malloc(e->ram.pages);
  e->inflight_cap = INFLIGHT_MIN_CAP;
  e->inflight = alloc_table(e->inflight_cap);
  if (!e->ram.st || !e->inflight) {
    ept_destroy(e);
    return diag_set(err, "EPT: out of memory"), NULL;
  }
  /* A page that starts SWAPPED is one the device holds. */
  uint8_t b = cfg->initial == EPT_INITIAL_SWAPPED ? (uint8_t)(EPT_SWAPPED | F_STORED) : (uint8_t)EPT_ABSENT;
  memset(e->ram.st, b, e->ram.pages);
  e->stats.pages[st_of(b)] = e->ram.pages;
  /* Leaves filled before the EPT existed assumed every page resident. */
  for (unsigned v = 0; v < e->n_vcpus; v++) shadow_reset(e->shadow, v);
  shadow_set_residency(e->shadow, ept_resident, e);
  e->installed = true;
  return e;
}

void ept_destroy(struct ept *e) {
  if (!e) return;
  /* The shadow must not call back into freed memory: it sees all pages resident again. */
  if (e->installed) shadow_set_residency(e->shadow, NULL, NULL);
  free(e->ram.st);
  for (unsigned w = 0; w < e->n_dax; w++) free(e->dax[w].st);
  free(e->inflight);
  free(e);
}

bool ept_add_dax_window(struct ept *e, uint64_t gpa, uint64_t bytes, uint64_t file_offset, unsigned *window,
                        struct diag *err) {
  const uint64_t page = PAGING_PAGE_SIZE;
  uint64_t span = shadow_guest_mem(e->shadow)->bytes;
  if (e->n_dax == EPT_MAX_DAX_WINDOWS) return diag_set(err, "EPT: more than %d DAX windows", EPT_MAX_DAX_WINDOWS);
  if (gpa % page || bytes == 0 || bytes % page || file_offset % page)
    return diag_set(err, "EPT: DAX window at %#llx of %#llx bytes (file offset %#llx) must be 4 KiB aligned and "
                         "non-empty",
                    (unsigned long long)gpa, (unsigned long long)bytes, (unsigned long long)file_offset);
  if (gpa > span || bytes > span - gpa)
    return diag_set(err, "EPT: DAX window [%#llx, %#llx) lies outside the shadow MMU's guest range (%#llx bytes): "
                         "size the shadow to cover it",
                    (unsigned long long)gpa, (unsigned long long)(gpa + bytes), (unsigned long long)span);
  uint64_t base = gpa / page, n = bytes / page;
  if (base < e->ram.pages)
    return diag_set(err, "EPT: DAX window at %#llx overlaps guest RAM (%#llx bytes)", (unsigned long long)gpa,
                    (unsigned long long)(e->ram.pages * page));
  for (unsigned w = 0; w < e->n_dax; w++)
    if (base < e->dax[w].base + e->dax[w].pages && e->dax[w].base < base + n)
      return diag_set(err, "EPT: DAX window at %#llx overlaps DAX window %u", (unsigned long long)gpa, w);
  struct region *r = &e->dax[e->n_dax];
  r->st = malloc(n);
  if (!r->st) return diag_set(err, "EPT: out of memory");
  memset(r->st, EPT_DAX_UNMAPPED, n);
  r->base = base;
  r->pages = n;
  r->file_offset = file_offset;
  e->stats.pages[EPT_DAX_UNMAPPED] += n;
  if (window) *window = e->n_dax;
  e->n_dax++;
  return true;
}

uint64_t ept_dax_gfn(const struct ept *e, unsigned window, uint64_t file_offset) {
  if (window >= e->n_dax) return EPT_NO_GFN;
  const struct region *r = &e->dax[window];
  if (file_offset < r->file_offset) return EPT_NO_GFN;
  uint64_t i = (file_offset - r->file_offset) / PAGING_PAGE_SIZE;
  return i < r->pages ? r->base + i : EPT_NO_GFN;
}

/* ---- queries ---- */

enum ept_state ept_state(const struct ept *e, uint64_t gfn) {
  uint64_t i;
  const struct region *r = region_of(e, gfn, &i);
  return r ? st_of(r->st[i]) : EPT_NOT_MEMORY;
}

/* The shadow asks this on every fill: RAM first, in one byte load. */
bool ept_resident(void *ept, uint64_t gfn) {
  const struct ept *e = ept;
  if (gfn < e->ram.pages) return st_of(e->ram.st[gfn]) == EPT_RESIDENT;
  return ept_state(e, gfn) == EPT_DAX_MAPPED;
}

bool ept_pinned(const struct ept *e, uint64_t gfn) { return gfn < e->ram.pages && (e->ram.st[gfn] & F_PINNED); }

bool ept_candidate(const struct ept *e, uint64_t gfn) {
  return gfn < e->ram.pages && is_candidate(e, &e->ram, e->ram.st[gfn]);
}

uint64_t ept_ram_pages(const struct ept *e) { return e->ram.pages; }
uint64_t ept_resident_pages(const struct ept *e) { return e->stats.pages[EPT_RESIDENT]; }
struct shadow_mmu *ept_shadow(const struct ept *e) { return e->shadow; }
const struct ept_stats *ept_stats(const struct ept *e) { return &e->stats; }

size_t ept_memory_bytes(const struct ept *e) {
  size_t n = sizeof *e + e->ram.pages + e->inflight_cap * sizeof *e->inflight;
  for (unsigned w = 0; w < e->n_dax; w++) n += e->dax[w].pages;
  return n;
}

void ept_classify(struct ept *e, uint64_t gfn, struct ept_fault *out) {
  memset(out, 0, sizeof *out);
  out->gfn = gfn;
  uint64_t i;
  struct region *r = region_of(e, gfn, &i);
  if (!r) {
    out->state = EPT_NOT_MEMORY;
    out->kind = EPT_FAULT_NOT_MEMORY;
  } else {
    uint8_t b = r->st[i];
    out->state = st_of(b);
    if (r != &e->ram) {
      out->dax = true;
      out->window = (unsigned)(r - e->dax);
      out->file_offset = r->file_offset + i * PAGING_PAGE_SIZE;
    }
    switch (out->state) {
    case EPT_RESIDENT:
    case EPT_DAX_MAPPED: out->kind = EPT_FAULT_RETRY; break;
    case EPT_ABSENT: out->kind = EPT_FAULT_ZERO_FILL; break;
    case EPT_SWAPPED: out->kind = EPT_FAULT_SWAP_IN; break;
    case EPT_DAX_UNMAPPED: out->kind = EPT_FAULT_DAX; break;
    case EPT_IN_FLIGHT: {
      const struct inflight *s = inflight_find(e, gfn);
      out->kind = EPT_FAULT_IN_FLIGHT;
      out->waiters = s->waiters;
      out->ready_ns = s->ready_ns;
      break;
    }
    case EPT_UNRESOLVABLE:
    case EPT_NOT_MEMORY:
      out->kind = EPT_FAULT_UNRESOLVABLE;
      out->loss = (enum ept_loss)((b & LOSS_MASK) >> LOSS_SHIFT);
      break;
    }
  }
  e->stats.faults[out->kind]++;
}

/* ---- transitions ---- */

static bool refuse(struct ept *e, struct diag *err, const char *what, uint64_t gfn, const char *why) {
  e->stats.refused++;
  return diag_set(err, "EPT: cannot %s gfn %#llx: %s", what, (unsigned long long)gfn, why);
}

static bool refuse_state(struct ept *e, struct diag *err, const char *what, uint64_t gfn, enum ept_state s,
                         const char *legal) {
  char why[160];
  snprintf(why, sizeof why, "it is %s (legal from %s)", ept_state_name(s), legal);
  return refuse(e, err, what, gfn, why);
}

/* The page's region and byte, or NULL after refusing a gfn that is not guest memory. */
static struct region *page(struct ept *e, uint64_t gfn, uint64_t *i, const char *what, struct diag *err) {
  struct region *r = region_of(e, gfn, i);
  if (!r) refuse(e, err, what, gfn, "it is not guest memory (neither RAM nor a DAX window)");
  return r;
}

static void change_init(struct ept_change *c, uint64_t gfn, enum ept_state from) {
  memset(c, 0, sizeof *c);
  c->gfn = gfn;
  c->from = c->to = from;
  c->flush.va = gfn << PAGING_PAGE_SHIFT;
}

bool ept_zero_fill(struct ept *e, uint64_t gfn, struct diag *err) {
  uint64_t i;
  struct region *r = page(e, gfn, &i, "zero-fill", err);
  if (!r) return false;
  enum ept_state s = st_of(r->st[i]);
  if (s != EPT_ABSENT) return refuse_state(e, err, "zero-fill", gfn, s, "absent RAM");
  /* A fresh zero page: nothing to write back until the guest writes it. No leaf exists
   * (the page was not resident), so the flush is empty. */
  struct shadow_flush fl;
  shadow_test_and_clear_dirty(e->shadow, gfn, &fl);
  put(e, r, i, with_state(r->st[i], EPT_RESIDENT));
  e->stats.zero_fills++;
  return true;
}

bool ept_host_loaded(struct ept *e, uint64_t gpa, uint64_t bytes, struct diag *err) {
  const uint64_t page_size = PAGING_PAGE_SIZE;
  if (gpa % page_size || bytes % page_size || gpa / page_size > e->ram.pages ||
      bytes / page_size > e->ram.pages - gpa / page_size)
    return refuse(e, err, "mark as loaded", gpa / page_size, "the range must be page aligned and inside guest RAM");
  uint64_t first = gpa / page_size, n = bytes / page_size;
  for (uint64_t g = first; g < first + n; g++) {
    enum ept_state s = st_of(e->ram.st[g]);
    if (s != EPT_ABSENT && s != EPT_RESIDENT && s != EPT_SWAPPED)
      return refuse_state(e, err, "mark as loaded", g, s, "absent, resident or swapped RAM");
  }
  for (uint64_t g = first; g < first + n; g++) {
    struct shadow_flush fl;
    shadow_host_write(e->shadow, g, &fl); /* dirty: its only copy is guest memory */
    put(e, &e->ram, g, (uint8_t)(with_state(e->ram.st[g], EPT_RESIDENT) & ~F_STORED));
    e->stats.host_loaded++;
  }
  return true;
}

bool ept_start_fetch(struct ept *e, uint64_t gfn, unsigned vcpu, uint64_t ready_ns, struct diag *err) {
  uint64_t i;
  struct region *r = page(e, gfn, &i, "start a read of", err);
  if (!r) return false;
  enum ept_state s = st_of(r->st[i]);
  bool ram = r == &e->ram;
  if ((ram && s != EPT_SWAPPED) || (!ram && s != EPT_DAX_UNMAPPED))
    return refuse_state(e, err, "start a read of", gfn, s, ram ? "swapped RAM" : "an unmapped DAX page");
  if (vcpu != EPT_NO_VCPU && vcpu >= e->n_vcpus) return refuse(e, err, "start a read of", gfn, "no such vCPU");
  struct inflight rec = {gfn, vcpu == EPT_NO_VCPU ? 0 : UINT64_C(1) << vcpu, ready_ns};
  if (!inflight_insert(e, &rec)) return refuse(e, err, "start a read of", gfn, "out of memory for the in-flight table");
  put(e, r, i, with_state(r->st[i], EPT_IN_FLIGHT));
  e->stats.fetches_started++;
  return true;
}

bool ept_join_fetch(struct ept *e, uint64_t gfn, unsigned vcpu, struct diag *err) {
  uint64_t i;
  struct region *r = page(e, gfn, &i, "wait for", err);
  if (!r) return false;
  enum ept_state s = st_of(r->st[i]);
  if (s != EPT_IN_FLIGHT) return refuse_state(e, err, "wait for", gfn, s, "a page being read");
  if (vcpu >= e->n_vcpus) return refuse(e, err, "wait for", gfn, "no such vCPU");
  inflight_find(e, gfn)->waiters |= UINT64_C(1) << vcpu;
  e->stats.fetch_joins++;
  return true;
}

/* Ends the read of an IN_FLIGHT page: its waiters and due time go to *c. */
static void end_read(struct ept *e, uint64_t gfn, struct ept_change *c) {
  struct inflight *s = inflight_find(e, gfn);
  c->waiters = s->waiters;
  c->ready_ns = s->ready_ns;
  inflight_remove(e, s);
}

bool ept_complete_fetch(struct ept *e, uint64_t gfn, struct ept_change *out, struct diag *err) {
  struct ept_change tmp;
  struct ept_change *c = out ? out : &tmp;
  uint64_t i;
  struct region *r = page(e, gfn, &i, "complete a read of", err);
  if (!r) return false;
  enum ept_state s = st_of(r->st[i]);
  if (s != EPT_IN_FLIGHT) return refuse_state(e, err, "complete a read of", gfn, s, "a page being read");
  change_init(c, gfn, s);
  end_read(e, gfn, c);
  if (r == &e->ram) {
    /* The page now equals the device's copy: clean until its first write. */
    struct shadow_flush fl;
    shadow_test_and_clear_dirty(e->shadow, gfn, &fl);
    c->to = EPT_RESIDENT;
    put(e, r, i, (uint8_t)(with_state(r->st[i], EPT_RESIDENT) | F_STORED));
  } else {
    c->to = EPT_DAX_MAPPED;
    put(e, r, i, with_state(r->st[i], EPT_DAX_MAPPED));
  }
  e->stats.fetches_completed++;
  return true;
}

bool ept_dax_map(struct ept *e, uint64_t gfn, struct diag *err) {
  uint64_t i;
  struct region *r = page(e, gfn, &i, "map", err);
  if (!r) return false;
  enum ept_state s = st_of(r->st[i]);
  if (s != EPT_DAX_UNMAPPED) return refuse_state(e, err, "map", gfn, s, "an unmapped DAX page");
  put(e, r, i, with_state(r->st[i], EPT_DAX_MAPPED));
  e->stats.dax_maps++;
  return true;
}

bool ept_dax_unmap(struct ept *e, uint64_t gfn, struct ept_change *out, struct diag *err) {
  struct ept_change tmp;
  struct ept_change *c = out ? out : &tmp;
  uint64_t i;
  struct region *r = page(e, gfn, &i, "unmap", err);
  if (!r) return false;
  enum ept_state s = st_of(r->st[i]);
  if (s != EPT_DAX_MAPPED) return refuse_state(e, err, "unmap", gfn, s, "a mapped DAX page");
  change_init(c, gfn, s);
  shadow_zap_gfn(e->shadow, gfn, &c->flush);
  c->to = EPT_DAX_UNMAPPED;
  put(e, r, i, with_state(r->st[i], EPT_DAX_UNMAPPED));
  e->stats.dax_unmaps++;
  return true;
}

bool ept_evict(struct ept *e, uint64_t gfn, unsigned flags, struct ept_change *out, struct diag *err) {
  struct ept_change tmp;
  struct ept_change *c = out ? out : &tmp;
  uint64_t i;
  struct region *r = page(e, gfn, &i, "evict", err);
  if (!r) return false;
  uint8_t b = r->st[i];
  enum ept_state s = st_of(b);
  bool to_swap = flags & EPT_EVICT_TO_SWAP;
  bool legal = r == &e->ram && (s == EPT_RESIDENT || (s == EPT_ABSENT && to_swap));
  if (!legal)
    return refuse_state(e, err, "evict", gfn, s,
                        to_swap ? "resident or absent RAM" : "resident RAM; absent RAM with EPT_EVICT_TO_SWAP");
  if (b & F_PINNED) return refuse(e, err, "evict", gfn, "it is pinned");
  change_init(c, gfn, s);
  if (s == EPT_ABSENT) {
    /* Declared swapped by a scenario: the device holds a zero page; nothing to write. */
    c->to = EPT_SWAPPED;
    put(e, r, i, (uint8_t)(with_state(b, EPT_SWAPPED) | F_STORED));
    e->stats.absent_to_swapped++;
    return true;
  }
  shadow_zap_gfn(e->shadow, gfn, &c->flush);
  struct shadow_flush fl; /* empty: the zap left no leaf to write-protect */
  c->dirty = shadow_test_and_clear_dirty(e->shadow, gfn, &fl);
  /* A clean page the device never held is an unwritten zero fill: drop it. */
  c->to = c->dirty || (b & F_STORED) || to_swap ? EPT_SWAPPED : EPT_ABSENT;
  put(e, r, i, c->to == EPT_SWAPPED ? (uint8_t)(with_state(b, EPT_SWAPPED) | F_STORED) : with_state(b, EPT_ABSENT));
  e->stats.evictions++;
  if (c->dirty) e->stats.evictions_dirty++;
  if (c->to == EPT_ABSENT) e->stats.evictions_to_absent++;
  return true;
}

bool ept_mark_unresolvable(struct ept *e, uint64_t gfn, enum ept_loss loss, struct ept_change *out,
                           struct diag *err) {
  struct ept_change tmp;
  struct ept_change *c = out ? out : &tmp;
  uint64_t i;
  struct region *r = page(e, gfn, &i, "mark unresolvable", err);
  if (!r) return false;
  uint8_t b = r->st[i];
  enum ept_state s = st_of(b);
  if (loss == EPT_LOSS_NONE || loss > EPT_LOSS_MEMORY_ERROR)
    return refuse(e, err, "mark unresolvable", gfn, "no reason given (truncated, I/O error or memory error)");
  if (s == EPT_UNRESOLVABLE) return refuse_state(e, err, "mark unresolvable", gfn, s, "any other state");
  change_init(c, gfn, s);
  if (s == EPT_RESIDENT || s == EPT_DAX_MAPPED) shadow_zap_gfn(e->shadow, gfn, &c->flush);
  if (s == EPT_IN_FLIGHT) {
    end_read(e, gfn, c);
    e->stats.fetches_failed++;
  }
  c->to = EPT_UNRESOLVABLE;
  uint8_t nb = (uint8_t)((with_state(b, EPT_UNRESOLVABLE) & ~LOSS_MASK) | ((unsigned)loss << LOSS_SHIFT));
  put(e, r, i, nb);
  e->stats.marked_unresolvable++;
  return true;
}

bool ept_dax_restore(struct ept *e, uint64_t gfn, struct diag *err) {
  uint64_t i;
  struct region *r = page(e, gfn, &i, "restore", err);
  if (!r) return false;
  uint8_t b = r->st[i];
  enum ept_state s = st_of(b);
  if (r == &e->ram || s != EPT_UNRESOLVABLE || (b & LOSS_MASK) >> LOSS_SHIFT != EPT_LOSS_TRUNCATED)
    return refuse(e, err, "restore", gfn, "only a truncated DAX page comes back when its file grows");
  put(e, r, i, (uint8_t)(with_state(b, EPT_DAX_UNMAPPED) & ~LOSS_MASK));
  e->stats.dax_restores++;
  return true;
}

uint64_t ept_dax_truncate(struct ept *e, unsigned window, uint64_t first_file_page, uint64_t n_pages,
                          struct shadow_flush *flush) {
  if (flush) memset(flush, 0, sizeof *flush);
  if (window >= e->n_dax) return 0;
  struct region *r = &e->dax[window];
  uint64_t base_page = r->file_offset / PAGING_PAGE_SIZE;
  /* Clip the file-page range to the pages this window maps. */
  uint64_t lo = first_file_page > base_page ? first_file_page - base_page : 0;
  uint64_t end_file = n_pages > UINT64_MAX - first_file_page ? UINT64_MAX : first_file_page + n_pages;
  if (end_file <= base_page) return 0;
  uint64_t hi = end_file - base_page < r->pages ? end_file - base_page : r->pages;
  uint64_t changed = 0;
  for (uint64_t i = lo; i < hi; i++) {
    enum ept_state s = st_of(r->st[i]);
    if (s != EPT_DAX_MAPPED && s != EPT_DAX_UNMAPPED) continue; /* reads in flight fail on their own */
    struct ept_change c;
    ept_mark_unresolvable(e, r->base + i, EPT_LOSS_TRUNCATED, &c, NULL);
    if (flush) flush->full_tlb_vcpus |= c.flush.tlb_vcpus | c.flush.full_tlb_vcpus;
    changed++;
  }
  return changed;
}

/* ---- pins ---- */

static struct pin *find_pin(struct ept *e, uint64_t gfn) {
  for (unsigned k = 0; k < e->n_pins; k++)
    if (e->pins[k].gfn == gfn) return &e->pins[k];
  return NULL;
}

bool ept_pin(struct ept *e, uint64_t gfn, struct diag *err) {
  if (gfn >= e->ram.pages) return refuse(e, err, "pin", gfn, "only RAM pages can be pinned");
  struct pin *p = find_pin(e, gfn);
  if (p) {
    if (p->count == UINT32_MAX) return refuse(e, err, "pin", gfn, "too many pins");
    p->count++;
    return true;
  }
  if (e->n_pins == EPT_MAX_PINNED_PAGES) return refuse(e, err, "pin", gfn, "too many pinned pages");
  e->pins[e->n_pins++] = (struct pin){gfn, 1};
  put(e, &e->ram, gfn, (uint8_t)(e->ram.st[gfn] | F_PINNED));
  e->stats.pinned++;
  return true;
}

bool ept_unpin(struct ept *e, uint64_t gfn, struct diag *err) {
  struct pin *p = gfn < e->ram.pages ? find_pin(e, gfn) : NULL;
  if (!p) return refuse(e, err, "unpin", gfn, "it is not pinned");
  if (--p->count > 0) return true;
  *p = e->pins[--e->n_pins];
  put(e, &e->ram, gfn, (uint8_t)(e->ram.st[gfn] & ~F_PINNED));
  e->stats.pinned--;
  return true;
}

void ept_set_candidate_observer(struct ept *e, ept_candidate_fn fn, void *ctx) {
  e->observer = fn;
  e->observer_ctx = ctx;
}

/* ---- text ---- */

const char *ept_state_name(enum ept_state s) {
  switch (s) {
  case EPT_ABSENT: return "absent";
  case EPT_RESIDENT: return "resident";
  case EPT_SWAPPED: return "swapped";
  case EPT_IN_FLIGHT: return "in_flight";
  case EPT_DAX_UNMAPPED: return "dax_unmapped";
  case EPT_DAX_MAPPED: return "dax_mapped";
  case EPT_UNRESOLVABLE: return "unresolvable";
  case EPT_NOT_MEMORY: return "not_memory";
  }
  return "?";
}

const char *ept_fault_kind_name(enum ept_fault_kind k) {
  switch (k) {
  case EPT_FAULT_RETRY: return "retry";
  case EPT_FAULT_ZERO_FILL: return "zero_fill";
  case EPT_FAULT_SWAP_IN: return "swap_in";
  case EPT_FAULT_IN_FLIGHT: return "in_flight";
  case EPT_FAULT_DAX: return "dax";
  case EPT_FAULT_UNRESOLVABLE: return "unresolvable";
  case EPT_FAULT_NOT_MEMORY: return "not_memory";
  }
  return "?";
}

const char *ept_loss_name(enum ept_loss l) {
  switch (l) {
  case EPT_LOSS_NONE: return "none";
  case EPT_LOSS_TRUNCATED: return "truncated";
  case EPT_LOSS_IO_ERROR: return "io_error";
  case EPT_LOSS_MEMORY_ERROR: return "memory_error";
  }
  return "?";
}

void ept_describe_fault(const struct ept_fault *f, char *buf, size_t len) {
  const unsigned long long gfn = (unsigned long long)f->gfn, off = (unsigned long long)f->file_offset;
  char where[64] = "";
  if (f->dax) snprintf(where, sizeof where, " (DAX window %u, file offset %#llx)", f->window, off);
  switch (f->kind) {
  case EPT_FAULT_RETRY:
    snprintf(buf, len, "EPT violation on gfn %#llx%s: resident by now: re-enter the guest", gfn, where);
    return;
  case EPT_FAULT_ZERO_FILL:
    snprintf(buf, len, "EPT violation on gfn %#llx: never populated: map a zero page", gfn);
    return;
  case EPT_FAULT_SWAP_IN:
    snprintf(buf, len, "EPT violation on gfn %#llx: swapped out: read it from the swap device", gfn);
    return;
  case EPT_FAULT_IN_FLIGHT:
    snprintf(buf, len, "EPT violation on gfn %#llx%s: already being read (due at %llu ns): wait for it", gfn, where,
             (unsigned long long)f->ready_ns);
    return;
  case EPT_FAULT_DAX:
    snprintf(buf, len, "EPT violation on gfn %#llx%s: not mapped: ask the host page cache", gfn, where);
    return;
  case EPT_FAULT_UNRESOLVABLE:
    snprintf(buf, len, "EPT violation on gfn %#llx%s: unresolvable (%s)", gfn, where, ept_loss_name(f->loss));
    return;
  case EPT_FAULT_NOT_MEMORY:
    snprintf(buf, len, "EPT violation on gfn %#llx: not guest memory", gfn);
    return;
  }
  snprintf(buf, len, "EPT violation on gfn %#llx", gfn);
}
