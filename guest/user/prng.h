/* prng.h — xoshiro256** (Blackman & Vigna, 2018), seeded through splitmix64: the
 * workloads' per-process deterministic random stream. Pure header, also used by the host
 * unit tests. */
#ifndef GUEST_PRNG_H
#define GUEST_PRNG_H

#include <stdint.h>

struct prng {
  uint64_t s[4];
};

static inline uint64_t prng_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline void prng_seed(struct prng *p, uint64_t seed) {
  for (int i = 0; i < 4; i++) p->s[i] = prng_splitmix64(&seed);
}

static inline uint64_t prng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t prng_next(struct prng *p) {
  uint64_t *s = p->s;
  uint64_t result = prng_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = prng_rotl(s[3], 45);
  return result;
}

/* uniform in [0, n) by the multiply-high method (Lemire), bias below 2^-64 * n */
static inline uint64_t prng_below(struct prng *p, uint64_t n) {
  return (uint64_t)(((unsigned __int128)prng_next(p) * n) >> 64);
}

#endif
