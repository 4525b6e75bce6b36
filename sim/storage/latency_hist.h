/* latency_hist.h — a latency histogram in nanoseconds with integer
 * percentiles, for device statistics (swap device, DAX page-cache reads).
 *
 * Buckets are log2 octaves [2^k, 2^(k+1)) split into LATENCY_HIST_SUB equal
 * sub-buckets, so a percentile is known to within 1/LATENCY_HIST_SUB of its
 * value (6.25 %) at any scale, from 1 ns to 2^64 ns, in a fixed 8 KiB. Values
 * below 2 * LATENCY_HIST_SUB ns are counted exactly. Reports that want plain
 * log2 buckets get them by summing an octave (latency_hist_octave).
 *
 * Not for: timing anything (it only counts values it is given). */
#ifndef APFSIM_LATENCY_HIST_H
#define APFSIM_LATENCY_HIST_H

#include <stdint.h>

#define LATENCY_HIST_SUB_BITS 4
#define LATENCY_HIST_SUB (1u << LATENCY_HIST_SUB_BITS) /* sub-buckets per octave */
#define LATENCY_HIST_OCTAVES 64                         /* octave k: [2^k, 2^(k+1)); 0 also holds 0 */
#define LATENCY_HIST_BUCKETS (LATENCY_HIST_OCTAVES * LATENCY_HIST_SUB)

struct latency_hist {
  uint64_t count;
  uint64_t min_ns; /* UINT64_MAX while empty */
  uint64_t max_ns;
  uint64_t bucket[LATENCY_HIST_BUCKETS];
};

void latency_hist_init(struct latency_hist *h);
void latency_hist_add(struct latency_hist *h, uint64_t ns);

/* Nearest-rank percentile: the smallest recorded bucket bound v such that at
 * least ceil(per_mille * count / 1000) values are <= v, reported as the
 * bucket's upper bound clamped to [min, max] (so p0 == min, p1000 == max and
 * exact for small values). per_mille: 500 = p50, 990 = p99, 999 = p99.9;
 * values above 1000 are taken as 1000. 0 for an empty histogram. */
uint64_t latency_hist_percentile(const struct latency_hist *h, uint32_t per_mille);

/* Values counted in log2 octave k: [2^k, 2^(k+1)) ns (k = 0 also holds 0). */
uint64_t latency_hist_octave(const struct latency_hist *h, unsigned k);

#endif
