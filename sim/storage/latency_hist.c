/* latency_hist.c — log2 octaves with linear sub-buckets (see latency_hist.h). */
#include "storage/latency_hist.h"

#include <string.h>

void latency_hist_init(struct latency_hist *h) {
  memset(h, 0, sizeof *h);
  h->min_ns = UINT64_MAX;
}

static unsigned octave_of(uint64_t v) { return v < 2 ? 0 : 63u - (unsigned)__builtin_clzll(v); }

/* Octaves below LATENCY_HIST_SUB_BITS have at most LATENCY_HIST_SUB values,
 * so every value gets its own bucket; above, the octave is cut into
 * LATENCY_HIST_SUB equal parts. */
static unsigned bucket_of(uint64_t v) {
  unsigned k = octave_of(v);
  if (k == 0) return (unsigned)v;
  if (k < LATENCY_HIST_SUB_BITS) return k * LATENCY_HIST_SUB + (unsigned)(v - (UINT64_C(1) << k));
  unsigned sub = (unsigned)(v >> (k - LATENCY_HIST_SUB_BITS)) - LATENCY_HIST_SUB;
  return k * LATENCY_HIST_SUB + sub;
}

/* Largest value that falls in bucket i. */
static uint64_t bucket_upper(unsigned i) {
  unsigned k = i / LATENCY_HIST_SUB, sub = i % LATENCY_HIST_SUB;
  if (k == 0) return sub;
  if (k < LATENCY_HIST_SUB_BITS) return (UINT64_C(1) << k) + sub;
  unsigned shift = k - LATENCY_HIST_SUB_BITS;
  uint64_t lower = (uint64_t)(LATENCY_HIST_SUB + sub) << shift;
  return lower + ((UINT64_C(1) << shift) - 1);
}

void latency_hist_add(struct latency_hist *h, uint64_t ns) {
  h->count++;
  if (ns < h->min_ns) h->min_ns = ns;
  if (ns > h->max_ns) h->max_ns = ns;
  h->bucket[bucket_of(ns)]++;
}

uint64_t latency_hist_percentile(const struct latency_hist *h, uint32_t per_mille) {
  if (h->count == 0) return 0;
  if (per_mille == 0) return h->min_ns;
  if (per_mille > 1000) per_mille = 1000;
  /* rank = ceil(per_mille * count / 1000), in 128 bits so no count overflows. */
  __extension__ unsigned __int128 scaled = (unsigned __int128)per_mille * h->count;
  uint64_t rank = (uint64_t)((scaled + 999) / 1000);
  uint64_t seen = 0;
  for (unsigned i = 0; i < LATENCY_HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= rank) {
      uint64_t v = bucket_upper(i);
      if (v > h->max_ns) v = h->max_ns;
      if (v < h->min_ns) v = h->min_ns;
      return v;
    }
  }
  return h->max_ns; /* not reached: the buckets sum to count */
}

uint64_t latency_hist_octave(const struct latency_hist *h, unsigned k) {
  if (k >= LATENCY_HIST_OCTAVES) return 0;
  uint64_t n = 0;
  for (unsigned s = 0; s < LATENCY_HIST_SUB; s++) n += h->bucket[k * LATENCY_HIST_SUB + s];
  return n;
}
