/* reclaim.c — memory limit and victim choice (see reclaim.h and docs/mmu.md "Reclaim").
 *
 * Candidates (RESIDENT, unpinned RAM pages) are kept as the EPT reports them:
 *  - FIFO and CLOCK: one circular doubly linked list through two 32-bit arrays indexed
 *    by gfn, and a cursor. A new candidate goes just before the cursor. For FIFO the
 *    cursor is the oldest page, so "before it" is the newest end; for CLOCK the cursor is
 *    the hand, so a new page is examined last, as when it takes the frame the hand left.
 *  - RANDOM: a dense array of candidates with each one's index, for an O(1) uniform draw
 *    and O(1) removal (the last entry fills the hole).
 * Nothing is allocated after creation except when RANDOM's array outgrows the budget
 * (pages loaded beyond it before the first balance). */
#include "mmu/reclaim.h"

#include <stdlib.h>
#include <string.h>

#include "rng/rng.h"

#define NONE UINT32_MAX

struct reclaim {
  struct ept *ept;
  struct shadow_mmu *shadow;
  enum reclaim_policy policy;
  uint64_t budget; /* pages; 0 = unlimited */
  uint32_t max_scan;
  struct rng rng;
  uint64_t n; /* candidates */
  /* FIFO / CLOCK */
  uint32_t *prev, *next;
  uint32_t cursor;
  /* RANDOM */
  uint32_t *pos;
  uint32_t *cand;
  uint64_t cap;
  /* scripted evictions, sorted by time */
  struct scripted_eviction *script;
  size_t n_script, script_next;
  struct reclaim_stats stats;
};

/* ---- candidate bookkeeping (the EPT's observer) ---- */

static void list_insert(struct reclaim *r, uint32_t g) {
  if (r->cursor == NONE) {
    r->prev[g] = r->next[g] = g;
    r->cursor = g;
    return;
  }
  uint32_t c = r->cursor, p = r->prev[c];
  r->next[p] = g;
  r->prev[g] = p;
  r->next[g] = c;
  r->prev[c] = g;
}

static void list_remove(struct reclaim *r, uint32_t g) {
  if (r->next[g] == g) {
    r->cursor = NONE;
  } else {
    uint32_t p = r->prev[g], nx = r->next[g];
    r->next[p] = nx;
    r->prev[nx] = p;
    if (r->cursor == g) r->cursor = nx; /* FIFO: the next oldest; CLOCK: the hand moves on */
  }
  r->prev[g] = r->next[g] = NONE;
}

static bool array_insert(struct reclaim *r, uint32_t g) {
  if (r->n == r->cap) {
    uint64_t cap = r->cap * 2;
    uint32_t *c = realloc(r->cand, cap * sizeof *c);
    if (!c) return false;
    r->cand = c;
    r->cap = cap;
  }
  r->pos[g] = (uint32_t)r->n;
  r->cand[r->n] = g;
  return true;
}

static void array_remove(struct reclaim *r, uint32_t g) {
  uint32_t i = r->pos[g];
  uint32_t last = r->cand[r->n - 1];
  r->cand[i] = last;
  r->pos[last] = i;
  r->pos[g] = NONE;
}

static void on_candidate(void *ctx, uint64_t gfn, bool candidate) {
  struct reclaim *r = ctx;
  uint32_t g = (uint32_t)gfn;
  if (r->policy == RECLAIM_RANDOM) {
    if (candidate) {
      /* Out of memory here would lose track of a page; it cannot happen below the
       * budget (the array is sized for it) and is fatal beyond it, like any OOM. */
      if (!array_insert(r, g)) abort();
    } else {
      array_remove(r, g);
    }
  } else {
    if (candidate) list_insert(r, g);
    else list_remove(r, g);
  }
  if (candidate) r->n++;
  else r->n--;
}

/* ---- creation ---- */

struct reclaim *reclaim_create(struct ept *e, const struct reclaim_params *p, struct diag *err) {
  if (p->memory_limit_bytes % PAGING_PAGE_SIZE)
    return diag_set(err, "reclaim: memory limit of %llu bytes is not a multiple of 4 KiB",
                    (unsigned long long)p->memory_limit_bytes),
           NULL;
  if (p->policy != RECLAIM_FIFO && p->policy != RECLAIM_CLOCK && p->policy != RECLAIM_RANDOM)
    return diag_set(err, "reclaim: unknown policy %d", (int)p->policy), NULL;
  uint64_t pages = ept_ram_pages(e);
  if (pages >= NONE)
    return diag_set(err, "reclaim: guest RAM of %llu pages is too large", (unsigned long long)pages), NULL;
  struct reclaim *r = calloc(1, sizeof *r);
  if (!r) return diag_set(err, "reclaim: out of memory"), NULL;
  r->ept = e;
  r->shadow = ept_shadow(e);
  r->policy = p->policy;
  r->budget = p->memory_limit_bytes / PAGING_PAGE_SIZE;
  r->max_scan = p->clock_max_scan ? p->clock_max_scan : RECLAIM_CLOCK_MAX_SCAN_DEFAULT;
  r->cursor = NONE;
  rng_stream_init(&r->rng, p->seed, RECLAIM_STREAM);
  if (r->budget == 0) return r; /* unlimited: nothing to track */

  bool ok;
  if (r->policy == RECLAIM_RANDOM) {
    r->cap = r->budget + 1 < pages ? r->budget + 1 : pages;
    r->pos = malloc(pages * sizeof *r->pos);
    r->cand = malloc(r->cap * sizeof *r->cand);
    ok = r->pos && r->cand;
    if (ok) memset(r->pos, 0xff, pages * sizeof *r->pos);
  } else {
    r->prev = malloc(pages * sizeof *r->prev);
    r->next = malloc(pages * sizeof *r->next);
    ok = r->prev && r->next;
    if (ok) {
      memset(r->prev, 0xff, pages * sizeof *r->prev);
      memset(r->next, 0xff, pages * sizeof *r->next);
    }
  }
  if (!ok) {
    reclaim_destroy(r);
    return diag_set(err, "reclaim: out of memory"), NULL;
  }
  for (uint64_t g = 0; g < pages; g++)
    if (ept_candidate(e, g)) on_candidate(r, g, true);
  ept_set_candidate_observer(e, on_candidate, r);
  return r;
}

void reclaim_destroy(struct reclaim *r) {
  if (!r) return;
  if (r->budget) ept_set_candidate_observer(r->ept, NULL, NULL);
  free(r->prev);
  free(r->next);
  free(r->pos);
  free(r->cand);
  free(r->script);
  free(r);
}

uint64_t reclaim_budget_pages(const struct reclaim *r) { return r->budget; }
uint64_t reclaim_candidates(const struct reclaim *r) { return r->n; }
bool reclaim_over_budget(const struct reclaim *r) { return r->budget && ept_resident_pages(r->ept) > r->budget; }
const struct reclaim_stats *reclaim_stats(const struct reclaim *r) { return &r->stats; }

size_t reclaim_memory_bytes(const struct reclaim *r) {
  uint64_t pages = ept_ram_pages(r->ept);
  size_t n = sizeof *r + r->n_script * sizeof *r->script;
  if (r->prev) n += 2 * pages * sizeof *r->prev;
  if (r->pos) n += pages * sizeof *r->pos + r->cap * sizeof *r->cand;
  return n;
}

/* ---- victim choice ---- */

static bool is_protected(const struct reclaim *r, uint64_t protect) {
  return protect != EPT_NO_GFN && ept_candidate(r->ept, protect);
}

static uint32_t pick_fifo(struct reclaim *r, uint64_t protect) {
  uint32_t v = r->cursor;
  return v == protect ? r->next[v] : v;
}

/* Second chance: an accessed page loses its accessed flag and the hand moves on; the
 * first page found unaccessed is the victim. After max_scan second chances the page
 * under the hand is taken, so a victim costs at most max_scan + 2 steps. */
static uint32_t pick_clock(struct reclaim *r, uint64_t protect, struct reclaim_eviction *out) {
  uint32_t scanned = 0;
  for (;;) {
    uint32_t g = r->cursor;
    if (g == protect) {
      r->cursor = r->next[g];
      continue;
    }
    if (scanned == r->max_scan) {
      out->forced = true;
      r->stats.forced++;
      break;
    }
    struct shadow_flush fl;
    scanned++;
    r->stats.scanned++;
    if (!shadow_test_and_clear_accessed(r->shadow, g, &fl)) break;
    out->aged_vcpus |= fl.tlb_vcpus;
    r->stats.second_chances++;
    r->cursor = r->next[g];
  }
  out->scanned = scanned;
  return r->cursor;
}

static uint32_t pick_random(struct reclaim *r, uint64_t protect) {
  if (protect == EPT_NO_GFN || !ept_candidate(r->ept, protect)) return r->cand[rng_below(&r->rng, r->n)];
  /* Uniform over every candidate but the protected one. */
  uint64_t k = rng_below(&r->rng, r->n - 1);
  if (k >= r->pos[protect]) k++;
  return r->cand[k];
}

bool reclaim_evict_one(struct reclaim *r, uint64_t protect, struct reclaim_eviction *out) {
  memset(out, 0, sizeof *out);
  if (!r->budget || r->n <= (is_protected(r, protect) ? 1u : 0u)) return false;
  uint32_t v;
  switch (r->policy) {
  case RECLAIM_FIFO: v = pick_fifo(r, protect); break;
  case RECLAIM_CLOCK: v = pick_clock(r, protect, out); break;
  case RECLAIM_RANDOM:
  default: v = pick_random(r, protect); break;
  }
  struct diag d;
  /* A candidate is resident and unpinned by definition: eviction cannot be refused. */
  if (!ept_evict(r->ept, v, 0, &out->change, &d)) abort();
  r->stats.victims++;
  if (out->change.dirty) r->stats.victims_dirty++;
  return true;
}

size_t reclaim_balance(struct reclaim *r, uint64_t protect, reclaim_sink_fn sink, void *ctx) {
  size_t done = 0;
  while (reclaim_over_budget(r)) {
    struct reclaim_eviction ev;
    if (!reclaim_evict_one(r, protect, &ev)) {
      r->stats.stuck++;
      break;
    }
    if (sink) sink(ctx, &ev);
    done++;
  }
  return done;
}

/* ---- scripted evictions ---- */

static bool check_range(const struct reclaim *r, uint64_t gpa, uint64_t bytes, struct diag *err) {
  uint64_t pages = ept_ram_pages(r->ept);
  if (gpa % PAGING_PAGE_SIZE || bytes == 0 || bytes % PAGING_PAGE_SIZE || gpa / PAGING_PAGE_SIZE > pages ||
      bytes / PAGING_PAGE_SIZE > pages - gpa / PAGING_PAGE_SIZE)
    return diag_set(err, "reclaim: eviction of [%#llx, +%#llx) must be page aligned, non-empty and inside guest RAM "
                         "(%#llx bytes)",
                    (unsigned long long)gpa, (unsigned long long)bytes,
                    (unsigned long long)(pages * PAGING_PAGE_SIZE));
  return true;
}

bool reclaim_evict_range(struct reclaim *r, uint64_t gpa, uint64_t bytes, reclaim_sink_fn sink, void *ctx,
                         struct reclaim_range_result *res, struct diag *err) {
  struct reclaim_range_result tmp;
  if (!res) res = &tmp;
  memset(res, 0, sizeof *res);
  if (!check_range(r, gpa, bytes, err)) return false;
  uint64_t first = gpa / PAGING_PAGE_SIZE, end = first + bytes / PAGING_PAGE_SIZE;
  for (uint64_t g = first; g < end; g++) {
    enum ept_state s = ept_state(r->ept, g);
    if ((s == EPT_RESIDENT || s == EPT_ABSENT) && ept_pinned(r->ept, g)) {
      res->skipped_pinned++;
      continue;
    }
    if (s == EPT_IN_FLIGHT) res->skipped_in_flight++;
    else if (s == EPT_SWAPPED) res->already_swapped++;
    else if (s == EPT_UNRESOLVABLE) res->skipped_other++;
    if (s != EPT_RESIDENT && s != EPT_ABSENT) continue;
    struct reclaim_eviction ev;
    memset(&ev, 0, sizeof ev);
    if (!ept_evict(r->ept, g, EPT_EVICT_TO_SWAP, &ev.change, err)) return false; /* not reached */
    if (s == EPT_ABSENT) {
      res->declared_swapped++;
    } else {
      res->evicted++;
      if (ev.change.dirty) res->dirty++;
      res->tlb_vcpus |= ev.change.flush.tlb_vcpus | ev.change.flush.full_tlb_vcpus;
    }
    if (sink) sink(ctx, &ev);
  }
  return true;
}

bool reclaim_set_script(struct reclaim *r, const struct scripted_eviction *ev, size_t n, struct diag *err) {
  for (size_t k = 0; k < n; k++)
    if (!check_range(r, ev[k].gpa, ev[k].bytes, err)) return false;
  struct scripted_eviction *s = n ? malloc(n * sizeof *s) : NULL;
  if (n && !s) return diag_set(err, "reclaim: out of memory");
  /* Insertion sort by time: stable, so equal times keep config order (n <= 64). */
  for (size_t k = 0; k < n; k++) {
    size_t j = k;
    while (j > 0 && s[j - 1].at_ns > ev[k].at_ns) {
      s[j] = s[j - 1];
      j--;
    }
    s[j] = ev[k];
  }
  free(r->script);
  r->script = s;
  r->n_script = n;
  r->script_next = 0;
  return true;
}

uint64_t reclaim_script_next_ns(const struct reclaim *r) {
  return r->script_next < r->n_script ? r->script[r->script_next].at_ns : UINT64_MAX;
}

size_t reclaim_script_run_due(struct reclaim *r, uint64_t now_ns, reclaim_sink_fn sink, void *ctx,
                              struct reclaim_range_result *res) {
  struct reclaim_range_result sum;
  memset(&sum, 0, sizeof sum);
  size_t ran = 0;
  while (r->script_next < r->n_script && r->script[r->script_next].at_ns <= now_ns) {
    const struct scripted_eviction *s = &r->script[r->script_next++];
    struct reclaim_range_result one;
    /* Checked by reclaim_set_script: cannot fail. */
    reclaim_evict_range(r, s->gpa, s->bytes, sink, ctx, &one, NULL);
    sum.evicted += one.evicted;
    sum.dirty += one.dirty;
    sum.declared_swapped += one.declared_swapped;
    sum.already_swapped += one.already_swapped;
    sum.skipped_pinned += one.skipped_pinned;
    sum.skipped_in_flight += one.skipped_in_flight;
    sum.skipped_other += one.skipped_other;
    sum.tlb_vcpus |= one.tlb_vcpus;
    r->stats.scripted_runs++;
    r->stats.scripted_evicted += one.evicted;
    r->stats.scripted_declared += one.declared_swapped;
    r->stats.scripted_skipped += one.skipped_pinned + one.skipped_in_flight;
    ran++;
  }
  if (res) *res = sum;
  return ran;
}

const char *reclaim_policy_name(enum reclaim_policy p) {
  switch (p) {
  case RECLAIM_FIFO: return "fifo";
  case RECLAIM_CLOCK: return "clock";
  case RECLAIM_RANDOM: return "random";
  }
  return "?";
}
