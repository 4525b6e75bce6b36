/* rng.c — xoshiro256** streams and the integer latency variates (see rng.h).
 * The generator and its seeding follow the published descriptions cited in
 * rng.h; nothing here reads a clock, an address or a global. */
#include "rng/rng.h"

#include "rng/fixmath.h"

#define FNV64_OFFSET_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME UINT64_C(0x100000001b3)

uint64_t rng_splitmix64_next(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

uint64_t rng_name_hash(const char *name) {
  uint64_t h = FNV64_OFFSET_BASIS;
  for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++) {
    h ^= *p;
    h *= FNV64_PRIME;
  }
  return h;
}

static void seed_from_splitmix(struct rng *r, uint64_t sm) {
  for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix64_next(&sm);
  /* Four consecutive splitmix64 outputs cannot all be 0 (it is a bijection
   * of its counter), so the forbidden all-zero state never arises here. */
}

void rng_seed(struct rng *r, uint64_t seed) { seed_from_splitmix(r, seed); }

void rng_stream_init(struct rng *r, uint64_t run_seed, const char *component_name) {
  /* Whitening the seed first keeps seeds 0, 1, 2... from sitting next to one
   * another in splitmix64's counter space once the name hash is mixed in. */
  uint64_t sm = run_seed;
  uint64_t whitened = rng_splitmix64_next(&sm);
  seed_from_splitmix(r, whitened ^ rng_name_hash(component_name));
}

void rng_set_state(struct rng *r, const uint64_t state[4]) {
  for (int i = 0; i < 4; i++) r->s[i] = state[i];
  if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next_u64(struct rng *r) {
  uint64_t *s = r->s;
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Lemire's method: the high half of x*n is uniform on [0, n) once the few
 * low halves below 2^64 mod n are rejected; the modulo is only computed on
 * the rare path where a rejection is possible at all. */
uint64_t rng_below(struct rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t lo;
  uint64_t hi = fix_mul_hi(rng_next_u64(r), n, &lo);
  if (lo < n) {
    const uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
    while (lo < threshold) hi = fix_mul_hi(rng_next_u64(r), n, &lo);
  }
  return hi;
}

uint64_t rng_uniform_u64(struct rng *r, uint64_t lo, uint64_t hi) {
  if (hi < lo) return lo;
  uint64_t span = hi - lo + 1; /* 0 means the full 2^64 range */
  return span == 0 ? rng_next_u64(r) : lo + rng_below(r, span);
}

uint64_t rng_uniform_ns(struct rng *r, uint64_t lo_ns, uint64_t hi_ns) {
  return rng_uniform_u64(r, lo_ns, hi_ns);
}

/* U in (0, 1] as k / 2^63 with k in [1, 2^63]: never 0, so -ln U is finite;
 * the top 63 bits are used because xoshiro256**'s are all of full quality. */
static uint64_t draw_u63_nonzero(struct rng *r) { return (rng_next_u64(r) >> 1) + 1; }

uint64_t rng_exponential_ns(struct rng *r, uint64_t mean_ns) {
  uint64_t e = fix_neg_ln_u63(draw_u63_nonzero(r));
  return fix_mul_q48_sat(mean_ns, e);
}

uint64_t rng_lognormal_ns(struct rng *r, uint64_t median_ns, uint32_t sigma_milli) {
  /* Box–Muller (Box & Muller, Ann. Math. Statist. 1958): Z = sqrt(-2 ln U1)
   * cos(2 pi U2). Drawn even when sigma is 0 so the stream advances the same
   * way whatever the parameters. */
  uint64_t radius = fix_sqrt_q48(2 * fix_neg_ln_u63(draw_u63_nonzero(r)));
  int64_t c = fix_cos_turn_q62(rng_next_u64(r));
  uint64_t abs_c = c < 0 ? (uint64_t)0 - (uint64_t)c : (uint64_t)c;
  uint64_t abs_z = fix_mul_q62(radius, abs_c); /* Q48 */
  uint64_t w = fix_muldiv_sat(abs_z, sigma_milli, 1000);
  return fix_mul_exp_sat(median_ns, w, c < 0);
}

const char *rng_hist_problem(const struct rng_hist_bin *bins, size_t n, size_t *bad_bin) {
  size_t dummy;
  if (!bad_bin) bad_bin = &dummy;
  *bad_bin = 0;
  if (!bins || n == 0) return "histogram has no bins";
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    *bad_bin = i;
    if (i > 0 && bins[i].upper_ns <= bins[i - 1].upper_ns)
      return "upper bound not above the previous bin's";
    if (bins[i].count > UINT64_MAX - total) return "counts overflow 64 bits";
    total += bins[i].count;
  }
  *bad_bin = n - 1;
  if (total == 0) return "all counts are 0";
  return NULL;
}

uint64_t rng_empirical_ns(struct rng *r, const struct rng_hist_bin *bins, size_t n) {
  if (rng_hist_problem(bins, n, NULL)) return 0;
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += bins[i].count;
  uint64_t pick = rng_below(r, total);
  size_t i = 0;
  while (pick >= bins[i].count) {
    pick -= bins[i].count;
    i++;
  }
  uint64_t lo = i == 0 ? 0 : bins[i - 1].upper_ns + 1;
  return rng_uniform_u64(r, lo, bins[i].upper_ns);
}
