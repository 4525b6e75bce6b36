/* dax_file.c — page-cache residency and truncation of the DAX host file
 * (see dax_file.h). */
#include "storage/dax_file.h"

#include <stdlib.h>
#include <string.h>

static uint64_t pages_for(uint64_t bytes) {
  return bytes / DAX_PAGE_SIZE + (bytes % DAX_PAGE_SIZE != 0);
}

static bool bit_get(const uint64_t *map, uint64_t i) { return (map[i / 64] >> (i % 64)) & 1; }
static void bit_set(uint64_t *map, uint64_t i) { map[i / 64] |= UINT64_C(1) << (i % 64); }
static void bit_clear(uint64_t *map, uint64_t i) { map[i / 64] &= ~(UINT64_C(1) << (i % 64)); }

/* Sets or clears bits [from, to); whole words at a time in the middle, so a
 * large file costs its size / 64 word writes, not one per page. */
static void bits_fill_range(uint64_t *map, uint64_t from, uint64_t to, bool value) {
  while (from < to && from % 64 != 0) value ? bit_set(map, from++) : bit_clear(map, from++);
  if (to - from >= 64) {
    memset(&map[from / 64], value ? 0xff : 0, (to - from) / 64 * sizeof *map);
    from += (to - from) / 64 * 64;
  }
  while (from < to) value ? bit_set(map, from++) : bit_clear(map, from++);
}

const char *dax_page_state_name(enum dax_page_state s) {
  switch (s) {
    case DAX_PAGE_RESIDENT: return "resident";
    case DAX_PAGE_READING: return "reading";
    case DAX_PAGE_NEEDS_READ: return "needs-read";
    case DAX_PAGE_TRUNCATED: return "truncated";
    case DAX_PAGE_BEYOND_EOF: return "beyond-eof";
  }
  return "?";
}

bool dax_file_init(struct dax_file *f, uint64_t file_bytes, uint64_t max_bytes,
                   enum dax_start start, latency_sampler_fn sample_latency, void *sampler_ctx,
                   struct diag *err) {
  memset(f, 0, sizeof *f);
  if (max_bytes == 0) return diag_set(err, "dax file: capacity (window size) is 0");
  if (file_bytes > max_bytes)
    return diag_set(err, "dax file: file size %llu is larger than the window (%llu bytes)",
                    (unsigned long long)file_bytes, (unsigned long long)max_bytes);
  f->max_bytes = max_bytes;
  f->max_pages = pages_for(max_bytes);
  f->resident = calloc(f->max_pages / 64 + 1, sizeof *f->resident);
  if (!f->resident) return diag_set(err, "dax file: out of memory for %llu pages",
                                    (unsigned long long)f->max_pages);
  f->size_bytes = file_bytes;
  f->ever_pages = pages_for(file_bytes);
  if (start == DAX_START_WARM) bits_fill_range(f->resident, 0, f->ever_pages, true);
  f->sample_latency = sample_latency;
  f->sampler_ctx = sampler_ctx;
  latency_hist_init(&f->stats.read_latency);
  return true;
}

void dax_file_destroy(struct dax_file *f) {
  free(f->resident);
  free(f->reading);
  memset(f, 0, sizeof *f);
}

/* Reads finished by `now` are page-cache pages now: move them to the bitmap. */
static void settle(struct dax_file *f, uint64_t now) {
  for (size_t i = 0; i < f->n_reading;) {
    if (f->reading[i].ready_ns <= now) {
      bit_set(f->resident, f->reading[i].page);
      f->reading[i] = f->reading[--f->n_reading];
    } else {
      i++;
    }
  }
}

/* Non-decreasing time for every mutating call (see dax_file.h). */
static uint64_t advance(struct dax_file *f, uint64_t now) {
  if (now < f->last_now_ns) now = f->last_now_ns;
  f->last_now_ns = now;
  settle(f, now);
  return now;
}

static const struct dax_read_wait *find_read(const struct dax_file *f, uint64_t page) {
  for (size_t i = 0; i < f->n_reading; i++)
    if (f->reading[i].page == page) return &f->reading[i];
  return NULL;
}

enum dax_page_state dax_file_page_state(const struct dax_file *f, uint64_t offset,
                                        uint64_t now_ns) {
  uint64_t page = offset / DAX_PAGE_SIZE;
  if (page >= pages_for(f->size_bytes))
    return page < f->ever_pages ? DAX_PAGE_TRUNCATED : DAX_PAGE_BEYOND_EOF;
  if (bit_get(f->resident, page)) return DAX_PAGE_RESIDENT;
  const struct dax_read_wait *w = find_read(f, page);
  if (w) return w->ready_ns <= now_ns ? DAX_PAGE_RESIDENT : DAX_PAGE_READING;
  return DAX_PAGE_NEEDS_READ;
}

enum dax_status dax_file_read(struct dax_file *f, uint64_t offset, uint64_t now_ns,
                              uint64_t *ready_ns) {
  now_ns = advance(f, now_ns);
  f->stats.faults++;
  uint64_t page = offset / DAX_PAGE_SIZE;
  switch (dax_file_page_state(f, offset, now_ns)) {
    case DAX_PAGE_RESIDENT:
      f->stats.hits++;
      *ready_ns = now_ns;
      return DAX_OK;
    case DAX_PAGE_READING:
      f->stats.joined++;
      *ready_ns = find_read(f, page)->ready_ns;
      return DAX_OK;
    case DAX_PAGE_NEEDS_READ: break;
    case DAX_PAGE_TRUNCATED:
    case DAX_PAGE_BEYOND_EOF:
      f->stats.efaults++;
      return DAX_EFAULT;
  }
  if (f->n_reading == f->cap_reading) {
    size_t cap = f->cap_reading ? 2 * f->cap_reading : 64;
    struct dax_read_wait *grown = realloc(f->reading, cap * sizeof *grown);
    if (!grown) return DAX_ENOMEM;
    f->reading = grown;
    f->cap_reading = cap;
  }
  uint64_t latency = f->sample_latency(f->sampler_ctx);
  uint64_t ready = latency > UINT64_MAX - now_ns ? UINT64_MAX : now_ns + latency;
  f->reading[f->n_reading++] = (struct dax_read_wait){page, ready};
  f->stats.reads++;
  latency_hist_add(&f->stats.read_latency, latency);
  *ready_ns = ready;
  return DAX_OK;
}

bool dax_file_truncate(struct dax_file *f, uint64_t new_size, uint64_t now_ns,
                       struct dax_truncate_result *out, struct diag *err) {
  if (new_size > f->max_bytes)
    return diag_set(err, "dax file: cannot grow to %llu bytes, past the window (%llu bytes)",
                    (unsigned long long)new_size, (unsigned long long)f->max_bytes);
  advance(f, now_ns);
  struct dax_truncate_result r = {.old_size = f->size_bytes, .new_size = new_size};
  uint64_t old_pages = pages_for(f->size_bytes), new_pages = pages_for(new_size);
  /* Linux keeps the page holding the new EOF: truncate_pagecache unmaps from
   * round_up(newsize, PAGE_SIZE), and filemap_fault refuses only pages at or
   * past DIV_ROUND_UP(i_size, PAGE_SIZE). */
  if (new_size < f->size_bytes && new_size % DAX_PAGE_SIZE != 0) {
    r.partial_page_kept = true;
    r.partial_page = new_size / DAX_PAGE_SIZE;
  }
  if (new_pages < old_pages) {
    r.first_gone_page = new_pages;
    r.pages_gone = old_pages - new_pages;
    bits_fill_range(f->resident, new_pages, old_pages, false);
    for (size_t i = 0; i < f->n_reading;) {
      if (f->reading[i].page >= new_pages) {
        f->reading[i] = f->reading[--f->n_reading];
        r.reads_cancelled++;
      } else {
        i++;
      }
    }
    f->stats.truncates++;
    f->stats.pages_truncated += r.pages_gone;
    f->stats.reads_cancelled += r.reads_cancelled;
  } else {
    /* Growth: the new pages are holes, not cached (their bits were cleared
     * when they were truncated, or never set). */
    r.pages_added = new_pages - old_pages;
  }
  f->size_bytes = new_size;
  if (new_pages > f->ever_pages) f->ever_pages = new_pages;
  if (out) *out = r;
  return true;
}

bool dax_file_evict(struct dax_file *f, uint64_t offset, uint64_t now_ns) {
  advance(f, now_ns);
  uint64_t page = offset / DAX_PAGE_SIZE;
  if (page >= f->max_pages || !bit_get(f->resident, page)) return false;
  bit_clear(f->resident, page);
  f->stats.evictions++;
  return true;
}
