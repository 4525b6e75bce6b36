/* fixmath.h — the fixed-point elementary functions behind the latency
 * variates. Internal to sim/rng (tests/rng measures their accuracy against
 * libm); other modules use rng.h.
 *
 * Why fixed point: libm's log/exp/cos may round differently between
 * versions and CPUs (FMA paths), which would make traces machine-dependent.
 * Integer arithmetic is exact and the same everywhere.
 *
 * Formats: "Qn" = unsigned integer with n fractional bits. The log domain
 * uses Q48 (values below 2^16), mantissas and trig values Q62.
 *
 * The error bounds below were measured against 40-digit mpmath on 3000
 * random arguments (worst seen: log2 2^-48, ln 2^-47.8, exp2 2^-59.1 relative,
 * cos 2^-60.3); tests/rng re-checks them against libm at double precision. */
#ifndef APFSIM_RNG_FIXMATH_H
#define APFSIM_RNG_FIXMATH_H

#include <stdbool.h>
#include <stdint.h>

#define FIX_LOG_FRAC_BITS 48
#define FIX_ONE_Q48 (UINT64_C(1) << 48)
#define FIX_ONE_Q62 (UINT64_C(1) << 62)

/* -log2(k / 2^63) in Q48, for k in [1, 2^63]; at most 63. Error < 2^-46. */
uint64_t fix_neg_log2_u63(uint64_t k);

/* -ln(k / 2^63) in Q48, for k in [1, 2^63]; at most 43.67. Error < 2^-46. */
uint64_t fix_neg_ln_u63(uint64_t k);

/* 2^f in Q62 (so in [2^62, 2^63)) for f in [0, 1) given in Q48. Relative
 * error < 2^-58. */
uint64_t fix_exp2_frac_q48(uint64_t f_q48);

/* sqrt(x) in Q48 for x in Q48 (floor of the exact root). */
uint64_t fix_sqrt_q48(uint64_t x_q48);

/* cos(2*pi*t) in signed Q62 for t a fraction of a turn in Q64. Absolute error
 * < 2^-58. */
int64_t fix_cos_turn_q62(uint64_t t_q64);

/* a * x rounded to the nearest integer, x in Q48; UINT64_MAX if too big. */
uint64_t fix_mul_q48_sat(uint64_t a, uint64_t x_q48);

/* a * e^w (or e^-w when negative) rounded to the nearest integer, w in Q48;
 * saturates at UINT64_MAX. Relative error < 2^-44 for w < 40. */
uint64_t fix_mul_exp_sat(uint64_t a, uint64_t w_q48, bool negative);

/* a * b >> 62, rounded, saturating: a Q62 value scaled by a Q62 factor. */
uint64_t fix_mul_q62(uint64_t a, uint64_t b);

/* a * b / d rounded to nearest, saturating; d == 0 gives UINT64_MAX. */
uint64_t fix_muldiv_sat(uint64_t a, uint64_t b, uint64_t d);

/* (a * b) >> 64 and the low half: the 128-bit product, split. */
uint64_t fix_mul_hi(uint64_t a, uint64_t b, uint64_t *lo);

#endif
