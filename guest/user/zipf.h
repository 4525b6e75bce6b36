/* zipf.h — integer-only Zipf sampling for the workloads (pure functions: also built into
 * the host unit tests, tests/loader/test_guest_pure.c).
 *
 * Rank r (1-based) has weight w(r) = 2^32 * r^-s, computed as 2^(-s * log2 r) in Q32 fixed
 * point with 128-bit products only (no floating point: results must not depend on an FPU or
 * libm, and the guest saves no FPU state). The table holds prefix sums of the weights;
 * a sample is the first rank whose prefix sum exceeds a uniform draw below the total.
 */
#ifndef GUEST_ZIPF_H
#define GUEST_ZIPF_H

#include <stdint.h>

/* log2(x) in Q32 (x >= 1) */
uint64_t zipf_log2_q32(uint64_t x);
/* 2^-x in Q32, for x in Q32 */
uint64_t zipf_exp2_neg_q32(uint64_t x);
/* weight of rank r (>= 1) for exponent s_milli / 1000, Q32 (rank 1 weighs 2^32) */
uint64_t zipf_weight(uint64_t rank, uint32_t s_milli);
/* prefix[i] = w(1) + ... + w(i+1) for i < n */
void zipf_build(uint64_t *prefix, uint64_t n, uint32_t s_milli);
/* the 0-based index i of the first prefix[i] > u, for u < prefix[n-1] */
uint64_t zipf_pick(const uint64_t *prefix, uint64_t n, uint64_t u);

#endif
