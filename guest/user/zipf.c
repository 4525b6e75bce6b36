/* zipf.c — see zipf.h. */
#include "zipf.h"

typedef unsigned __int128 u128;

#define Q62_ONE (1ull << 62)

uint64_t zipf_log2_q32(uint64_t x) {
  int k = 63 - __builtin_clzll(x);
  /* y = x / 2^k in [1, 2), as Q62 */
  uint64_t y = k <= 62 ? x << (62 - k) : x >> (k - 62);
  uint64_t frac = 0;
  for (int bit = 31; bit >= 0; bit--) {
    /* squaring doubles log2(y); y^2 in [1, 4) fits Q62 in 64 bits */
    y = (uint64_t)(((u128)y * y) >> 62);
    if (y >= 2 * Q62_ONE) {
      y >>= 1;
      frac |= 1ull << bit;
    }
  }
  return ((uint64_t)k << 32) | frac;
}

/* floor(sqrt(v)) of a 128-bit value, bit by bit (no division) */
static uint64_t isqrt128(u128 v) {
  u128 res = 0, one = (u128)1 << 126;
  while (one > v) one >>= 2;
  while (one) {
    if (v >= res + one) {
      v -= res + one;
      res = (res >> 1) + one;
    } else {
      res >>= 1;
    }
    one >>= 2;
  }
  return (uint64_t)res;
}

/* c[j] = 2^(-2^-j) in Q62 for j = 1..32: repeated square roots of 1/2, exact in integers */
static void exp2_factors(uint64_t c[33]) {
  c[0] = 0;
  c[1] = isqrt128((u128)Q62_ONE << 61); /* sqrt(2^123) = 2^62 * sqrt(1/2) */
  for (int j = 2; j <= 32; j++) c[j] = isqrt128((u128)c[j - 1] << 62);
}

static uint64_t exp2_neg(uint64_t x, const uint64_t c[33]) {
  uint64_t n = x >> 32;
  uint32_t f = (uint32_t)x;
  if (n >= 33) return 0;
  /* 2^-(f / 2^32) = product over the set bits 2^-j of f of 2^(-2^-j) */
  uint64_t r = Q62_ONE;
  for (int j = 1; j <= 32; j++)
    if (f & (1u << (32 - j))) r = (uint64_t)(((u128)r * c[j]) >> 62);
  return (r >> 30) >> n;
}

uint64_t zipf_exp2_neg_q32(uint64_t x) {
  uint64_t c[33];
  exp2_factors(c);
  return exp2_neg(x, c);
}

static uint64_t weight(uint64_t rank, uint32_t s_milli, const uint64_t c[33]) {
  return exp2_neg(zipf_log2_q32(rank) * s_milli / 1000, c);
}

uint64_t zipf_weight(uint64_t rank, uint32_t s_milli) {
  uint64_t c[33];
  exp2_factors(c);
  return weight(rank, s_milli, c);
}

void zipf_build(uint64_t *prefix, uint64_t n, uint32_t s_milli) {
  uint64_t c[33], sum = 0;
  exp2_factors(c);
  for (uint64_t i = 0; i < n; i++) {
    sum += weight(i + 1, s_milli, c);
    prefix[i] = sum;
  }
}

uint64_t zipf_pick(const uint64_t *prefix, uint64_t n, uint64_t u) {
  uint64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (prefix[mid] > u)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}
