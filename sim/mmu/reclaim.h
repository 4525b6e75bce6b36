/* reclaim.h — the host's memory limit for guest RAM and the choice of pages to evict
 * (docs/mmu.md "Reclaim").
 *
 * What it is for: keeping the number of RESIDENT guest RAM pages within a budget
 * (host/memory-limit) by evicting victims chosen by a policy — FIFO (residency order),
 * CLOCK (second chance from the shadow entries' accessed bits) or RANDOM (seeded stream
 * "reclaim") — and running the config's scripted evictions ("evict this range at t").
 *
 * Candidates are RESIDENT, unpinned RAM pages (ept.h tells reclaim of every change, so
 * nothing is ever scanned to find them). Pinned pages, pages being read (not resident)
 * and the page the caller protects (the one just faulted in) are never chosen. DAX window
 * pages are the host page cache's, not guest RAM: they neither count nor get evicted here.
 *
 * Not for: I/O (the caller writes dirty victims to the swap device when write-back is on
 * and charges the time), TLB flushing (the caller acts on each eviction's flush), deciding
 * when scripted evictions happen (the caller calls at their time). One thread; no global
 * state; every choice depends only on the call sequence and the seed.
 */
#ifndef APFSIM_MMU_RECLAIM_H
#define APFSIM_MMU_RECLAIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h" /* enum reclaim_policy, struct scripted_eviction */
#include "core/diag.h"
#include "mmu/ept.h"

/* CLOCK examines at most this many candidates per victim (each one costs a shadow lookup
 * per vCPU). With no more candidates than this it is exactly second-chance CLOCK; with
 * more, after this many second chances the page under the hand is taken anyway. */
#define RECLAIM_CLOCK_MAX_SCAN_DEFAULT 1024u
#define RECLAIM_STREAM "reclaim" /* the rng stream RANDOM draws from */

struct reclaim_params {
  uint64_t memory_limit_bytes; /* 0 = unlimited; else a multiple of 4 KiB, at least one page */
  enum reclaim_policy policy;
  uint64_t seed;               /* the run seed */
  uint32_t clock_max_scan;     /* 0 = RECLAIM_CLOCK_MAX_SCAN_DEFAULT */
};

/* One eviction reclaim made. */
struct reclaim_eviction {
  struct ept_change change; /* gfn, dirty (write it back?), flush (zapped entries) */
  uint64_t aged_vcpus;      /* CLOCK: vCPUs whose accessed flags were cleared on the way;
                               flushing their whole TLB keeps access tracking exact (not
                               flushing is Linux's x86 approximation: a cached translation
                               sets no accessed bit) */
  uint32_t scanned;         /* candidates examined (CLOCK) */
  bool forced;              /* CLOCK hit its scan bound and took the page under the hand */
};

typedef void (*reclaim_sink_fn)(void *ctx, const struct reclaim_eviction *ev);

/* What a scripted range eviction did. */
struct reclaim_range_result {
  uint64_t evicted;           /* resident pages evicted (now SWAPPED) */
  uint64_t dirty;             /* ... of which had to be written */
  uint64_t declared_swapped;  /* absent pages declared swapped */
  uint64_t already_swapped;
  uint64_t skipped_pinned;
  uint64_t skipped_in_flight; /* a read is running: the page is not there to evict */
  uint64_t skipped_other;     /* unresolvable */
  uint64_t tlb_vcpus;         /* vCPUs that lost an entry: flush their whole TLB */
};

struct reclaim_stats {
  uint64_t victims;
  uint64_t victims_dirty;
  uint64_t second_chances; /* CLOCK: accessed candidates passed over */
  uint64_t scanned;        /* CLOCK: candidates examined */
  uint64_t forced;         /* CLOCK: victims taken at the scan bound */
  uint64_t stuck;          /* balance found nothing evictable while over budget */
  uint64_t scripted_runs;
  uint64_t scripted_evicted;
  uint64_t scripted_declared;
  uint64_t scripted_skipped;
};

struct reclaim;

/* Watches e (one reclaim per EPT) and takes the resident pages it already has, in gfn
 * order. NULL + message on a bad limit or policy. */
struct reclaim *reclaim_create(struct ept *e, const struct reclaim_params *p, struct diag *err);
void reclaim_destroy(struct reclaim *r);

uint64_t reclaim_budget_pages(const struct reclaim *r); /* 0 = unlimited */
uint64_t reclaim_candidates(const struct reclaim *r);   /* tracked candidates (0 when unlimited) */
bool reclaim_over_budget(const struct reclaim *r);

/* Evicts one victim chosen by the policy, never `protect` (EPT_NO_GFN: none). False when
 * there is no budget or no candidate. */
bool reclaim_evict_one(struct reclaim *r, uint64_t protect, struct reclaim_eviction *out);

/* Evicts until the resident pages fit the budget: call after every ept_complete_fetch /
 * ept_zero_fill with protect = that page. Each eviction goes to sink (may be NULL).
 * Returns the number evicted; stops (counted in stats.stuck) when nothing is evictable. */
size_t reclaim_balance(struct reclaim *r, uint64_t protect, reclaim_sink_fn sink, void *ctx);

/* Evicts [gpa, gpa + bytes) of RAM now (a scripted eviction): resident pages become
 * SWAPPED (even unwritten zero fills: the scenario says they are on swap), absent ones
 * are declared SWAPPED, pinned pages and pages being read are skipped and counted. Each
 * page that changed goes to sink. res may be NULL. */
bool reclaim_evict_range(struct reclaim *r, uint64_t gpa, uint64_t bytes, reclaim_sink_fn sink, void *ctx,
                         struct reclaim_range_result *res, struct diag *err);

/* The config's scripted evictions, run in time order (equal times: config order). Checks
 * every entry (page aligned, non-empty, inside RAM). */
bool reclaim_set_script(struct reclaim *r, const struct scripted_eviction *ev, size_t n, struct diag *err);
/* Time of the next scripted eviction not yet run; UINT64_MAX when none is left. */
uint64_t reclaim_script_next_ns(const struct reclaim *r);
/* Runs every scripted eviction due at or before now_ns; res (may be NULL) sums them.
 * Returns how many entries ran. */
size_t reclaim_script_run_due(struct reclaim *r, uint64_t now_ns, reclaim_sink_fn sink, void *ctx,
                              struct reclaim_range_result *res);

const struct reclaim_stats *reclaim_stats(const struct reclaim *r);
size_t reclaim_memory_bytes(const struct reclaim *r); /* heap bytes held */
const char *reclaim_policy_name(enum reclaim_policy p);

#endif
