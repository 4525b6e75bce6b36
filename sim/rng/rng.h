/* rng.h — the seeded random-number service: one independent stream per
 * simulator component, and the latency variates drawn from those streams.
 *
 * Every random decision in a run comes from a stream made here, so the same
 * run seed gives the same draws on any machine (DESIGN.md §4). The generator
 * is xoshiro256** 1.0 (Blackman & Vigna, "Scrambled Linear Pseudorandom
 * Number Generators", ACM TOMS 2021; https://prng.di.unimi.it/) seeded
 * through splitmix64, as its authors recommend.
 *
 * The variates use integer / fixed-point arithmetic only (no libm, no
 * floating point), so results cannot depend on a CPU's or libm's rounding.
 * Accuracy is stated beside each function and measured in tests/rng/.
 *
 * Not for: cryptography, or anything that must not be reproducible. */
#ifndef APFSIM_RNG_H
#define APFSIM_RNG_H

#include <stddef.h>
#include <stdint.h>

/* One stream. Plain value: copy it to fork a stream, no teardown needed. */
struct rng {
  uint64_t s[4];
};

/* splitmix64 (Steele, Lea & Flood, OOPSLA 2014; Vigna's splitmix64.c): advances
 * *state and returns the next output. Exposed for seeding and its test. */
uint64_t rng_splitmix64_next(uint64_t *state);

/* FNV-1a 64-bit hash of a NUL-terminated string (Fowler/Noll/Vo, offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3): depends only on the bytes, never
 * on an address, so stream identities are the same on every machine. */
uint64_t rng_name_hash(const char *name);

/* The stream of component `component_name` in run `run_seed`: the seed is
 * whitened by one splitmix64 step, xored with the name's hash, and the four
 * state words are the next four splitmix64 outputs. Different names give
 * unrelated sequences; the same (seed, name) always the same one. */
void rng_stream_init(struct rng *r, uint64_t run_seed, const char *component_name);

/* Seeds from one 64-bit value the way the reference code does: the state words
 * are the first four splitmix64 outputs from `seed`. */
void rng_seed(struct rng *r, uint64_t seed);

/* Sets the raw state (for reference vectors). An all-zero state is the one
 * xoshiro cannot leave; it is replaced by {1, 0, 0, 0}. */
void rng_set_state(struct rng *r, const uint64_t state[4]);

/* The next 64 random bits (xoshiro256**). */
uint64_t rng_next_u64(struct rng *r);

/* Uniform integer in [0, n), unbiased (Lemire, "Fast Random Integer Generation
 * in an Interval", ACM TOMACS 2019). n == 0 returns 0 without drawing. */
uint64_t rng_below(struct rng *r, uint64_t n);

/* Uniform integer in [lo, hi], both inclusive; the full 64-bit range works.
 * hi < lo returns lo without drawing. */
uint64_t rng_uniform_u64(struct rng *r, uint64_t lo, uint64_t hi);

/* ---- latency variates, in nanoseconds --------------------------------------
 * Each saturates at UINT64_MAX rather than wrapping. */

/* Exponential with the given mean: mean * -ln(U), U uniform on (0, 1] in steps
 * of 2^-63. One draw. Against the exact value of the same draw (checked with
 * 50-digit arithmetic): |error| <= 0.5 ns + mean * 2^-46, i.e. the exact value
 * rounded to the nearest ns to within 0.02 ns for any mean up to 2^40 ns. */
uint64_t rng_exponential_ns(struct rng *r, uint64_t mean_ns);

/* Lognormal: median * exp(sigma * Z), Z standard normal by Box–Muller (the
 * cos half; the sin half is discarded so every call takes exactly two draws).
 * sigma is in thousandths (500 = 0.5). |Z| is at most 9.4 (U1 >= 2^-63), so
 * the tails are cut beyond 9.4 sigma. Against the exact value of the same
 * draws: |error| <= 0.5 ns + 1e-12 of the value for sigma <= 4000. */
uint64_t rng_lognormal_ns(struct rng *r, uint64_t median_ns, uint32_t sigma_milli);

/* Uniform on [lo, hi] ns, inclusive (same as rng_uniform_u64; named for
 * symmetry with the other latency variates). */
uint64_t rng_uniform_ns(struct rng *r, uint64_t lo_ns, uint64_t hi_ns);

/* One bin of an empirical latency histogram. Bins are in ascending order of
 * upper_ns; bin 0 covers [0, upper_ns], bin i covers (upper[i-1], upper[i]]. */
struct rng_hist_bin {
  uint64_t upper_ns;
  uint64_t count;
};

/* NULL if the histogram is usable, else a short description of the first
 * problem, with its bin index in *bad_bin: n == 0, upper_ns not strictly
 * ascending, counts summing to 0, or the sum overflowing. */
const char *rng_hist_problem(const struct rng_hist_bin *bins, size_t n, size_t *bad_bin);

/* A bin chosen with probability count/total, then a uniform value within it.
 * The histogram must pass rng_hist_problem(); otherwise returns 0. */
uint64_t rng_empirical_ns(struct rng *r, const struct rng_hist_bin *bins, size_t n);

#endif
