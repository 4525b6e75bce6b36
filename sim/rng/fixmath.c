/* fixmath.c — fixed-point log2/ln, 2^x, sqrt and cos (see fixmath.h).
 * Every routine is pure integer arithmetic: the same bits on every machine. */
#include "rng/fixmath.h"

#include <stdbool.h>
#include <stddef.h>

/* 64x64->128 multiply. GCC and Clang on x86-64 have a native type; it is an
 * extension, hence the marker that keeps -pedantic builds quiet. */
__extension__ typedef unsigned __int128 u128;

/* Rounded constants, computed with mpmath at 60 digits:
 * round(ln(2) * 2^64), round(log2(e) * 2^62), round(pi/2 * 2^62). */
#define LN2_Q64 UINT64_C(0xb17217f7d1cf79ac)
#define LOG2E_Q62 UINT64_C(0x5c551d94ae0bf85e)
#define PI_HALF_Q62 UINT64_C(0x6487ed5110b4611a)

uint64_t fix_mul_hi(uint64_t a, uint64_t b, uint64_t *lo) {
  u128 p = (u128)a * b;
  if (lo) *lo = (uint64_t)p;
  return (uint64_t)(p >> 64);
}

static uint64_t mul_q62(uint64_t a, uint64_t b) {
  return (uint64_t)(((u128)a * b + ((u128)1 << 61)) >> 62);
}

uint64_t fix_mul_q62(uint64_t a, uint64_t b) {
  u128 p = ((u128)a * b + ((u128)1 << 61)) >> 62;
  return p > UINT64_MAX ? UINT64_MAX : (uint64_t)p;
}

uint64_t fix_muldiv_sat(uint64_t a, uint64_t b, uint64_t d) {
  if (d == 0) return UINT64_MAX;
  u128 p = ((u128)a * b + d / 2) / d;
  return p > UINT64_MAX ? UINT64_MAX : (uint64_t)p;
}

/* Fractional bits of log2(z) for a mantissa z in Q62, z in [1, 2): the
 * bit-by-bit squaring method (C. S. Turner, "A Fast Binary Logarithm
 * Algorithm", IEEE Signal Processing Magazine, Sept. 2010). Squaring doubles
 * the log; whenever the square reaches 2 the next result bit is 1 and z is
 * halved. Each step's rounding error maps to about 2^-62 in the final log, so
 * 48 steps stay well inside 2^-46. The halving is done without a branch
 * because the bit is a coin toss and would mispredict half the time. */
static uint64_t log2_mantissa_q48(uint64_t z) {
  uint64_t y = 0;
  for (int i = 0; i < FIX_LOG_FRAC_BITS; i++) {
    z = mul_q62(z, z); /* < 2^64: z < 2^63 before squaring */
    uint64_t bit = z >> 63;
    z >>= bit;
    y = (y << 1) | bit;
  }
  return y;
}

uint64_t fix_neg_log2_u63(uint64_t k) {
  const uint64_t top = UINT64_C(1) << 63;
  if (k >= top) return 0;
  if (k == 0) k = 1; /* outside the domain: clamp rather than loop forever */
  int msb = 63 - __builtin_clzll(k);
  uint64_t z = k << (62 - msb);
  uint64_t frac = log2_mantissa_q48(z);
  return ((uint64_t)(63 - msb) << FIX_LOG_FRAC_BITS) - frac;
}

uint64_t fix_neg_ln_u63(uint64_t k) {
  uint64_t l2 = fix_neg_log2_u63(k);
  return (uint64_t)(((u128)l2 * LN2_Q64 + ((u128)1 << 63)) >> 64);
}

/* 2^f = e^(f ln 2) by its Taylor series: with f ln 2 < 0.7 the terms fall
 * below 2^-62 after about 20 steps, and all are positive, so the truncation
 * errors cannot cancel into anything worse than ~20 units of 2^-62. */
uint64_t fix_exp2_frac_q48(uint64_t f_q48) {
  uint64_t f_q62 = (f_q48 & (FIX_ONE_Q48 - 1)) << (62 - FIX_LOG_FRAC_BITS);
  uint64_t x = fix_mul_hi(f_q62, LN2_Q64, NULL);
  uint64_t sum = FIX_ONE_Q62, term = FIX_ONE_Q62;
  for (uint64_t k = 1; term != 0; k++) {
    term = mul_q62(term, x) / k;
    sum += term;
  }
  return sum;
}

/* Exact floor of the square root of a 128-bit integer by Newton's (Heron's)
 * iteration in integers: starting from a power of two at or above the root,
 * y <- (y + n/y) / 2 decreases monotonically to floor(sqrt(n)) and stops
 * when it would no longer decrease (see e.g. Crandall & Pomerance, "Prime
 * Numbers", Algorithm 9.2.11). Exact, so the result is the same however it
 * is computed; this way is ~7x faster than digit-by-digit for our inputs. */
static uint64_t isqrt_u128(u128 n) {
  if (n == 0) return 0;
  uint64_t hi = (uint64_t)(n >> 64);
  int bits = hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)n);
  u128 y = (u128)1 << ((bits + 1) / 2); /* 2^ceil(bits/2) > sqrt(n) */
  for (;;) {
    u128 z = (y + n / y) >> 1;
    if (z >= y) break;
    y = z;
  }
  return (uint64_t)y;
}

uint64_t fix_sqrt_q48(uint64_t x_q48) {
  return isqrt_u128((u128)x_q48 << FIX_LOG_FRAC_BITS);
}

/* Taylor series of sin and cos for phi in [0, pi/4] (Q62): terms fall below
 * 2^-62 by the 12th, alternating, so the partial sums stay within [0, 1]. */
static int64_t taylor_sin_q62(uint64_t phi) {
  uint64_t x2 = mul_q62(phi, phi);
  uint64_t term = phi;
  int64_t sum = (int64_t)phi;
  for (uint64_t k = 1; term != 0; k++) {
    term = mul_q62(term, x2) / ((2 * k) * (2 * k + 1));
    sum += (k & 1) ? -(int64_t)term : (int64_t)term;
  }
  return sum;
}

static int64_t taylor_cos_q62(uint64_t phi) {
  uint64_t x2 = mul_q62(phi, phi);
  uint64_t term = FIX_ONE_Q62;
  int64_t sum = (int64_t)FIX_ONE_Q62;
  for (uint64_t k = 1; term != 0; k++) {
    term = mul_q62(term, x2) / ((2 * k - 1) * (2 * k));
    sum += (k & 1) ? -(int64_t)term : (int64_t)term;
  }
  return sum;
}

/* Range reduction to [0, pi/4] by quadrant and reflection, so the series
 * always runs where it converges fastest:
 *   cos(q*pi/2 + phi) = cos phi, -sin phi, -cos phi, sin phi for q = 0..3,
 * and for phi > pi/4, phi = pi/2 - phi' swaps sin and cos. */
int64_t fix_cos_turn_q62(uint64_t t_q64) {
  unsigned quadrant = (unsigned)(t_q64 >> 62);
  uint64_t r = t_q64 << 2; /* position within the quadrant, Q64 */
  bool reflect = r > (UINT64_C(1) << 63);
  if (reflect) r = 0 - r;
  uint64_t phi = fix_mul_hi(r, PI_HALF_Q62, NULL);
  bool use_sin = ((quadrant & 1) != 0) != reflect;
  int64_t v = use_sin ? taylor_sin_q62(phi) : taylor_cos_q62(phi);
  return (quadrant == 1 || quadrant == 2) ? -v : v;
}

uint64_t fix_mul_q48_sat(uint64_t a, uint64_t x_q48) {
  u128 p = ((u128)a * x_q48 + (FIX_ONE_Q48 >> 1)) >> FIX_LOG_FRAC_BITS;
  return p > UINT64_MAX ? UINT64_MAX : (uint64_t)p;
}

/* a * e^(+-w) = a * 2^(+-w log2 e). Split the power of two into an integer
 * exponent, applied as a shift, and a fraction in [0, 1) for the series; a
 * negative power -(n + f) is 2^-(n+1) * 2^(1-f) so the fraction stays
 * non-negative. */
uint64_t fix_mul_exp_sat(uint64_t a, uint64_t w_q48, bool negative) {
  if (a == 0) return 0;
  u128 t128 = ((u128)w_q48 * LOG2E_Q62 + ((u128)1 << 61)) >> 62; /* Q48 */
  if (t128 >= ((u128)128 << FIX_LOG_FRAC_BITS)) return negative ? 0 : UINT64_MAX;
  uint64_t t = (uint64_t)t128;
  int64_t exponent = (int64_t)(t >> FIX_LOG_FRAC_BITS);
  uint64_t frac = t & (FIX_ONE_Q48 - 1);
  if (negative) {
    exponent = -exponent;
    if (frac != 0) {
      exponent -= 1;
      frac = FIX_ONE_Q48 - frac;
    }
  }
  u128 p = (u128)a * fix_exp2_frac_q48(frac); /* Q62, < 2^127 */
  int64_t shift = 62 - exponent;              /* value = p / 2^shift */
  if (shift >= 128) return 0;
  if (shift > 0) {
    p = (p + ((u128)1 << (shift - 1))) >> shift;
    return p > UINT64_MAX ? UINT64_MAX : (uint64_t)p;
  }
  if (-shift >= 64 || p > ((u128)UINT64_MAX >> -shift)) return UINT64_MAX;
  return (uint64_t)(p << -shift);
}
