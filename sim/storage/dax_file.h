/* dax_file.h — the host file behind a virtiofs DAX window: its size, which of
 * its 4 KiB pages are in the host page cache, page-cache reads with a
 * latency, and host-side truncation (seed, "virtiofs + DAX"; DESIGN.md §2).
 *
 * With DAX the guest maps the host's page-cache pages directly, so a guest
 * access to a window page needs that page in the host page cache: resident
 * (maps at once), not resident (a read with a latency first), or gone —
 * at or past the file's end after a host truncate, when the host fault fails
 * (SIGBUS in QEMU's mapping; KVM: EFAULT in the sync path). Truncation
 * follows Linux (truncate_pagecache / filemap_fault): pages entirely at or
 * past the new size go; the page holding the new end of file stays, its tail
 * reading as zeros; extending the file again creates holes that can be
 * faulted in again (as fresh zero pages). Times are integer ns.
 *
 * Not for: mapping guest-physical addresses to file offsets (the EPT layer in
 * sim/mmu does that and zaps its mappings when told pages are gone), file
 * contents, or dirty-page writeback. */
#ifndef APFSIM_DAX_FILE_H
#define APFSIM_DAX_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "storage/latency_hist.h"
#include "storage/swap_device.h" /* latency_sampler_fn */

#define DAX_PAGE_SIZE 4096u

enum dax_page_state {
  DAX_PAGE_RESIDENT,   /* in the host page cache: the fault resolves at once */
  DAX_PAGE_READING,    /* a page-cache read is in flight; a fault joins it */
  DAX_PAGE_NEEDS_READ, /* inside the file, not in the page cache: a read first */
  DAX_PAGE_TRUNCATED,  /* at or past EOF after a truncate: unresolvable */
  DAX_PAGE_BEYOND_EOF, /* past EOF and never part of the file: unresolvable */
};

static inline bool dax_page_resolvable(enum dax_page_state s) {
  return s == DAX_PAGE_RESIDENT || s == DAX_PAGE_READING || s == DAX_PAGE_NEEDS_READ;
}

const char *dax_page_state_name(enum dax_page_state s);

enum dax_start { DAX_START_COLD /* no page cached */, DAX_START_WARM /* every file page cached */ };

enum dax_status {
  DAX_OK,
  DAX_EFAULT, /* the page is at or past EOF: the fault cannot be resolved */
  DAX_ENOMEM, /* internal: the in-flight read table could not grow */
};

struct dax_read_wait {
  uint64_t page;
  uint64_t ready_ns;
};

struct dax_file_stats {
  uint64_t faults;          /* dax_file_read calls */
  uint64_t hits;            /* page was resident */
  uint64_t reads;           /* page-cache reads started */
  uint64_t joined;          /* faults that waited for a read already in flight */
  uint64_t efaults;         /* faults on unresolvable pages */
  uint64_t truncates;       /* truncations that removed pages */
  uint64_t pages_truncated; /* pages removed by them */
  uint64_t reads_cancelled; /* in-flight reads of pages a truncate removed */
  uint64_t evictions;       /* pages dropped from the page cache by dax_file_evict */
  struct latency_hist read_latency; /* sampled page-cache read latencies */
};

struct dax_file {
  uint64_t size_bytes; /* current file size (i_size) */
  uint64_t max_bytes;  /* capacity: the window; the file never grows past it */
  uint64_t max_pages;
  uint64_t ever_pages; /* most pages the file ever had: tells TRUNCATED from BEYOND_EOF */
  uint64_t *resident;  /* bitmap over max_pages */
  struct dax_read_wait *reading; /* in-flight reads, unordered */
  size_t n_reading, cap_reading;
  uint64_t last_now_ns;
  latency_sampler_fn sample_latency;
  void *sampler_ctx;
  struct dax_file_stats stats;
};

/* A file of `file_bytes` that may grow to `max_bytes` (the window size),
 * with every page cached (WARM) or none (COLD). Page-cache reads take
 * sample_latency(sampler_ctx) ns. False + err for file_bytes > max_bytes,
 * max_bytes 0, or no memory. */
bool dax_file_init(struct dax_file *f, uint64_t file_bytes, uint64_t max_bytes,
                   enum dax_start start, latency_sampler_fn sample_latency, void *sampler_ctx,
                   struct diag *err);
void dax_file_destroy(struct dax_file *f);

static inline uint64_t dax_file_size(const struct dax_file *f) { return f->size_bytes; }

/* State at `now_ns` of the page holding file offset `offset`. */
enum dax_page_state dax_file_page_state(const struct dax_file *f, uint64_t offset,
                                        uint64_t now_ns);

/* A host fault on the page holding `offset` at `now_ns`. DAX_OK: *ready_ns is
 * when the page is in the page cache and can be mapped — now if resident,
 * the in-flight read's time if one is running, else now + a sampled read
 * latency (the read starts now). The page is resident from *ready_ns on,
 * unless a truncate removes it first: the caller checks dax_file_page_state
 * at *ready_ns (RESIDENT = the fault succeeded). DAX_EFAULT: unresolvable.
 * Times must not go backwards; an earlier now_ns is taken as the latest seen
 * (the same for every call below that takes now_ns). */
enum dax_status dax_file_read(struct dax_file *f, uint64_t offset, uint64_t now_ns,
                              uint64_t *ready_ns);

/* What a size change did, for the EPT layer and the trace. */
struct dax_truncate_result {
  uint64_t old_size, new_size;
  uint64_t first_gone_page; /* pages [first_gone_page, +pages_gone) left the file: */
  uint64_t pages_gone;      /* zap every guest mapping of them */
  bool partial_page_kept;   /* new_size is inside page `partial_page`, which stays */
  uint64_t partial_page;
  uint64_t reads_cancelled; /* in-flight reads of gone pages (they will fail) */
  uint64_t pages_added;     /* growth: new hole pages [old pages, +pages_added) */
};

/* The host sets the file size to `new_size` at `now_ns` (ftruncate): smaller
 * removes every page entirely at or past it; larger adds hole pages. False +
 * err if new_size > max_bytes (nothing changes). out may be NULL. */
bool dax_file_truncate(struct dax_file *f, uint64_t new_size, uint64_t now_ns,
                       struct dax_truncate_result *out, struct diag *err);

/* The host drops the page holding `offset` from its page cache (reclaim of a
 * clean page), so the next fault reads it again. False if it was not
 * resident (or a read of it is in flight: the page is locked). */
bool dax_file_evict(struct dax_file *f, uint64_t offset, uint64_t now_ns);

#endif
