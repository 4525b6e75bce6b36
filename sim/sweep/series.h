/* series.h — the values of a sweep range: linear steps, or logarithmic steps
 * computed exactly in integers.
 *
 * Log steps: the k-th value is from * 10^(k/per-decade) (while it is at most
 * `to`), or from * (to/from)^(k/(points-1)) for `points` values from `from`
 * to `to`. Each is computed as the exact floor of a rational power, with six
 * guard digits below the thousandth of the base unit (fewer only for values
 * near 2^63) — the largest V with V^q <= from^(q-p) * to^p * 10^(6q) (or
 * (from*10^a)^q * 10^(p+6q)), checked with multi-precision integers — then
 * unless that root is exact (16MiB..1GiB in 4 points gives 64MiB and 256MiB,
 * not 67.1MB), rounded half-up to `digits` significant digits; then to the
 * resolution
 * (a whole base unit: ns, byte, MHz, B/s; for a plain number, whole numbers
 * when both endpoints are whole, else thousandths). The endpoints stay as
 * written. A value equal to its predecessor after rounding is dropped. So
 * the list is the same on every machine; no libm result decides a value
 * (a floating-point estimate only narrows the integer search).
 *
 * Not for: lists of written values (kept verbatim by the spec loader). */
#ifndef APFSIM_SWEEP_SERIES_H
#define APFSIM_SWEEP_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sweep/quantity.h"

#define SERIES_MAX_VALUES 100000u
#define SERIES_MAX_PER_DECADE 100u
#define SERIES_MAX_LOG_POINTS 101u
#define SERIES_DEFAULT_DIGITS 3u
#define SERIES_MAX_DIGITS 9u

/* from, from+step, ... while <= to. All three of one family; step > 0;
 * from <= to. *out (malloc'd) gets the values in thousandths. */
bool series_linear(const struct quantity *from, const struct quantity *to,
                   const struct quantity *step, uint64_t **out, size_t *n, char *why,
                   size_t why_len);

/* Exactly one of per_decade and points is non-zero. 0 < from < to, one
 * family; digits in 1..SERIES_MAX_DIGITS. */
bool series_log(const struct quantity *from, const struct quantity *to, uint32_t per_decade,
                uint32_t points, uint32_t digits, uint64_t **out, size_t *n, char *why,
                size_t why_len);

/* v rounded half-up to `digits` significant decimal digits (exposed for tests). */
uint64_t series_round_significant(uint64_t v, unsigned digits);

/* floor((a^ea * b^eb * 10^e10)^(1/q)), computed exactly, for q >= 1 and a
 * result below 2^63 (else UINT64_MAX); *exact (may be NULL) tells whether
 * the root is a whole number. The core of series_log, exposed for tests. */
uint64_t series_floor_root(uint64_t a, uint32_t ea, uint64_t b, uint32_t eb, uint32_t e10,
                           uint32_t q, bool *exact);

#endif
