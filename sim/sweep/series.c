/* series.c — linear and exact logarithmic value series (see series.h). */
#include "sweep/series.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

__extension__ typedef unsigned __int128 u128;

/* ---------------------------------------------------------------- bignum
 * Just enough multi-precision arithmetic to compare V^q with a product of
 * powers: little-endian limbs in base 10^9, multiply by a 64-bit factor,
 * compare. */

#define LIMB_BASE 1000000000u

struct bn {
  uint32_t *d;
  size_t n, cap;
};

static bool bn_init(struct bn *b, size_t cap) {
  b->d = calloc(cap, sizeof *b->d);
  b->n = 1;
  b->cap = cap;
  return b->d != NULL;
}

static void bn_set(struct bn *b, uint64_t v) {
  b->n = 0;
  do {
    b->d[b->n++] = (uint32_t)(v % LIMB_BASE);
    v /= LIMB_BASE;
  } while (v);
}

/* b *= f. The caller sized cap for the largest product it forms. */
static void bn_mul(struct bn *b, uint64_t f) {
  u128 carry = 0;
  for (size_t i = 0; i < b->n; i++) {
    u128 t = (u128)b->d[i] * f + carry;
    b->d[i] = (uint32_t)(t % LIMB_BASE);
    carry = t / LIMB_BASE;
  }
  while (carry && b->n < b->cap) {
    b->d[b->n++] = (uint32_t)(carry % LIMB_BASE);
    carry /= LIMB_BASE;
  }
  while (b->n > 1 && b->d[b->n - 1] == 0) b->n--;
}

static void bn_mul_pow10(struct bn *b, uint32_t e) {
  size_t shift = e / 9;
  if (shift && !(b->n == 1 && b->d[0] == 0)) {
    for (size_t i = b->n; i-- > 0;) b->d[i + shift] = b->d[i];
    for (size_t i = 0; i < shift; i++) b->d[i] = 0;
    b->n += shift;
  }
  static const uint32_t pow10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                    100000000};
  if (e % 9) bn_mul(b, pow10[e % 9]);
}

static int bn_cmp(const struct bn *a, const struct bn *b) {
  if (a->n != b->n) return a->n < b->n ? -1 : 1;
  for (size_t i = a->n; i-- > 0;)
    if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
  return 0;
}

/* Compares v^q with x (-1, 0, 1), using p as scratch. */
static int pow_cmp(uint64_t v, uint32_t q, const struct bn *x, struct bn *p) {
  bn_set(p, 1);
  for (uint32_t i = 0; i < q; i++) {
    bn_mul(p, v);
    if (p->n > x->n) return 1; /* already larger */
  }
  return bn_cmp(p, x);
}

static bool pow_at_most(uint64_t v, uint32_t q, const struct bn *x, struct bn *p) {
  return pow_cmp(v, q, x, p) <= 0;
}

uint64_t series_floor_root(uint64_t a, uint32_t ea, uint64_t b, uint32_t eb, uint32_t e10,
                           uint32_t q, bool *exact) {
  if (exact) *exact = false;
  if (q == 0 || a == 0) return UINT64_MAX;
  /* A 64-bit factor adds at most 3 limbs; V^q at most 3q + 1. */
  size_t cap_x = 3u * ((size_t)ea + eb) + e10 / 9 + 4;
  size_t cap_p = 3u * (size_t)q + 4;
  if (cap_p > cap_x) cap_x = cap_p;
  struct bn x, p;
  if (!bn_init(&x, cap_x + 4) || !bn_init(&p, cap_x + 4)) {
    free(x.d);
    return UINT64_MAX;
  }
  bn_set(&x, 1);
  for (uint32_t i = 0; i < ea; i++) bn_mul(&x, a);
  for (uint32_t i = 0; i < eb; i++) bn_mul(&x, b);
  bn_mul_pow10(&x, e10);

  const uint64_t top = (uint64_t)INT64_MAX;
  uint64_t result;
  if (pow_at_most(top, q, &x, &p)) {
    result = UINT64_MAX; /* the root does not fit */
  } else {
    /* A double estimate only brackets the search; the exact comparisons
     * decide, so the result does not depend on libm's rounding. */
    double l10 = ((double)ea * log10((double)a) + (double)eb * log10((double)(b ? b : 1)) +
                  (double)e10) / (double)q;
    double est = pow(10.0, l10);
    uint64_t lo = 0, hi = top;
    if (est < 9.0e18) {
      double dlo = est * (1 - 1e-9) - 2, dhi = est * (1 + 1e-9) + 2;
      uint64_t clo = dlo > 0 ? (uint64_t)dlo : 0, chi = (uint64_t)dhi;
      if (pow_at_most(clo, q, &x, &p)) lo = clo;
      if (chi < top && !pow_at_most(chi, q, &x, &p)) hi = chi;
    }
    /* Invariant: lo^q <= x < hi^q. */
    while (hi - lo > 1) {
      uint64_t mid = lo + (hi - lo) / 2;
      if (pow_at_most(mid, q, &x, &p)) lo = mid;
      else hi = mid;
    }
    result = lo;
    if (exact) *exact = pow_cmp(lo, q, &x, &p) == 0;
  }
  free(x.d);
  free(p.d);
  return result;
}

/* ---------------------------------------------------------------- rounding */

uint64_t series_round_significant(uint64_t v, unsigned digits) {
  unsigned nd = 1;
  for (uint64_t t = v; t >= 10; t /= 10) nd++;
  if (nd <= digits) return v;
  uint64_t p = 1;
  for (unsigned i = 0; i < nd - digits; i++) p *= 10;
  return (uint64_t)(((u128)v + p / 2) / p * p);
}

static uint64_t round_to(uint64_t v, uint64_t res) {
  return (uint64_t)(((u128)v + res / 2) / res * res);
}

static uint32_t gcd32(uint32_t a, uint32_t b) {
  while (b) {
    uint32_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* ---------------------------------------------------------------- series */

static bool push(uint64_t **out, size_t *n, size_t *cap, uint64_t v) {
  if (*n > 0 && (*out)[*n - 1] == v) return true; /* equal after rounding: dropped */
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    uint64_t *nv = realloc(*out, nc * sizeof *nv);
    if (!nv) return false;
    *out = nv;
    *cap = nc;
  }
  (*out)[(*n)++] = v;
  return true;
}

bool series_linear(const struct quantity *from, const struct quantity *to,
                   const struct quantity *step, uint64_t **out, size_t *n, char *why,
                   size_t why_len) {
  *out = NULL;
  *n = 0;
  if (from->family != to->family || step->family != from->family) {
    snprintf(why, why_len, "from, to and step must have units of the same kind");
    return false;
  }
  if (step->milli == 0) {
    snprintf(why, why_len, "step must be above 0");
    return false;
  }
  if (from->milli > to->milli) {
    snprintf(why, why_len, "from must not be above to");
    return false;
  }
  uint64_t count = (to->milli - from->milli) / step->milli + 1;
  if (count > SERIES_MAX_VALUES) {
    snprintf(why, why_len, "the range has %llu values; at most %u allowed",
             (unsigned long long)count, SERIES_MAX_VALUES);
    return false;
  }
  uint64_t *v = malloc(count * sizeof *v);
  if (!v) {
    snprintf(why, why_len, "out of memory");
    return false;
  }
  for (uint64_t i = 0; i < count; i++) v[i] = from->milli + i * step->milli;
  *out = v;
  *n = count;
  return true;
}

bool series_log(const struct quantity *from, const struct quantity *to, uint32_t per_decade,
                uint32_t points, uint32_t digits, uint64_t **out, size_t *n, char *why,
                size_t why_len) {
  *out = NULL;
  *n = 0;
  if (from->family != to->family) {
    snprintf(why, why_len, "from and to must have units of the same kind");
    return false;
  }
  if (from->milli == 0 || from->milli >= to->milli) {
    snprintf(why, why_len, "a log range needs 0 < from < to");
    return false;
  }
  if ((per_decade == 0) == (points == 0)) {
    snprintf(why, why_len, "give exactly one of per-decade and points");
    return false;
  }
  if (per_decade > SERIES_MAX_PER_DECADE) {
    snprintf(why, why_len, "per-decade is %u; at most %u allowed", per_decade,
             SERIES_MAX_PER_DECADE);
    return false;
  }
  if (points && (points < 2 || points > SERIES_MAX_LOG_POINTS)) {
    snprintf(why, why_len, "points is %u; expected 2..%u", points, SERIES_MAX_LOG_POINTS);
    return false;
  }
  if (digits < 1 || digits > SERIES_MAX_DIGITS) {
    snprintf(why, why_len, "digits is %u; expected 1..%u", digits, SERIES_MAX_DIGITS);
    return false;
  }
  uint64_t res =
      from->family != QUANTITY_PLAIN || (from->milli % 1000 == 0 && to->milli % 1000 == 0) ? 1000
                                                                                           : 1;
  /* Guard digits: roots are taken of the value times 10^guard, so that
   * rounding to `digits` and to the resolution starts from enough digits
   * even for values of a few thousandths; as many as keep to*10^guard in
   * 63 bits, at most 6. */
  uint32_t guard = 0;
  uint64_t scale = 1;
  while (guard < 6 && to->milli <= (uint64_t)INT64_MAX / (scale * 10)) {
    guard++;
    scale *= 10;
  }
  size_t cap = 0;
  bool ok = true;
  if (points) {
    uint32_t d = points - 1;
    for (uint32_t k = 0; k <= d && ok; k++) {
      uint64_t v;
      if (k == 0) v = from->milli;
      else if (k == d) v = to->milli;
      else {
        /* v^q = from^(q-p) * to^p with p/q = k/d in lowest terms. */
        uint32_t g = gcd32(k, d), p = k / g, q = d / g;
        bool exact;
        v = series_floor_root(from->milli, q - p, to->milli, p, guard * q, q, &exact);
        if (!exact) v = series_round_significant(v, digits);
        v = round_to(v, res * scale) / scale;
        if (v == 0) continue;
      }
      ok = push(out, n, &cap, v);
    }
  } else {
    for (uint32_t k = 0; ok; k++) {
      if (k > SERIES_MAX_VALUES) {
        snprintf(why, why_len, "the range has more than %u values", SERIES_MAX_VALUES);
        free(*out);
        *out = NULL;
        *n = 0;
        return false;
      }
      /* from * 10^(k/per_decade) = (from * 10^a) * 10^(r/per_decade). */
      uint32_t a = k / per_decade, r = k % per_decade;
      u128 base = from->milli;
      for (uint32_t i = 0; i < a && base <= to->milli; i++) base *= 10;
      if (base > to->milli) break;
      uint64_t v = (uint64_t)base * scale; /* base <= to, so this fits */
      bool exact = true;
      if (r) {
        uint32_t g = gcd32(r, per_decade), p = r / g, q = per_decade / g;
        v = series_floor_root((uint64_t)base, q, 1, 0, p + guard * q, q, &exact);
      }
      /* floor(v * scale) <= to * scale exactly when v <= to, since to is whole. */
      if (v > to->milli * scale) break;
      if (k > 0) v = round_to(exact ? v : series_round_significant(v, digits), res * scale);
      v /= scale;
      if (v == 0) continue;
      ok = push(out, n, &cap, v);
    }
  }
  if (!ok) {
    snprintf(why, why_len, "out of memory");
    free(*out);
    *out = NULL;
    *n = 0;
  }
  return ok;
}
