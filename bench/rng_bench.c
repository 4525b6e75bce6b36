/* rng_bench.c — throughput of the random streams and the integer latency
 * variates (sim/rng). Each timed iteration draws a batch, so the shim's
 * per-iteration call does not dominate a ~1 ns generator step.
 * Run: cmake --build build --target bench, or build/bench/rng_bench. */
#include <stdint.h>

#include "bench.h"
#include "rng/rng.h"

#define BATCH 1024

/* Wrapped in a struct because ISO C has no conversion between function and
 * object pointers, and the shim passes a void *. */
struct variate {
  uint64_t (*draw)(struct rng *r);
};

static uint64_t draw_next_u64(struct rng *r) { return rng_next_u64(r); }
static uint64_t draw_below_1000(struct rng *r) { return rng_below(r, 1000); }
static uint64_t draw_exponential(struct rng *r) { return rng_exponential_ns(r, 100000); }
static uint64_t draw_lognormal(struct rng *r) { return rng_lognormal_ns(r, 100000, 500); }
static uint64_t draw_uniform(struct rng *r) { return rng_uniform_ns(r, 50000, 150000); }

/* A 16-bin SSD-like latency histogram (bins in ns, counts made up). */
static const struct rng_hist_bin ssd_hist[] = {
    {20000, 5},   {40000, 40},  {60000, 120}, {80000, 200},   {100000, 180},   {120000, 120},
    {150000, 90}, {200000, 60}, {300000, 30}, {500000, 15},   {1000000, 8},    {2000000, 4},
    {5000000, 2}, {10000000, 1}, {20000000, 1}, {50000000, 1},
};
static uint64_t draw_empirical(struct rng *r) {
  return rng_empirical_ns(r, ssd_hist, sizeof ssd_hist / sizeof ssd_hist[0]);
}

/* The inner loop is the same for every variate; the function pointer is
 * called BATCH times per iteration and its cost (~1 ns) is part of what
 * a caller through an indirection would pay too. */
static void bm_draw(struct bench_state *st, void *arg) {
  const struct variate *v = arg;
  struct rng r;
  rng_stream_init(&r, 42, "bench");
  uint64_t acc = 0;
  int64_t items = 0;
  while (bench_keep_running(st)) {
    for (int i = 0; i < BATCH; i++) acc += v->draw(&r);
    items += BATCH;
  }
  bench_do_not_optimize(&acc);
  bench_set_items_processed(st, items);
}

/* next_u64 inlined in the loop, without the indirection: the generator alone. */
static void bm_next_u64_direct(struct bench_state *st, void *arg) {
  (void)arg;
  struct rng r;
  rng_stream_init(&r, 42, "bench");
  uint64_t acc = 0;
  int64_t items = 0;
  while (bench_keep_running(st)) {
    for (int i = 0; i < BATCH; i++) acc ^= rng_next_u64(&r);
    items += BATCH;
  }
  bench_do_not_optimize(&acc);
  bench_set_items_processed(st, items);
}

static void bm_stream_init(struct bench_state *st, void *arg) {
  (void)arg;
  struct rng r;
  uint64_t acc = 0;
  int64_t items = 0;
  while (bench_keep_running(st)) {
    rng_stream_init(&r, (uint64_t)items, "storage/swap0");
    acc ^= r.s[0];
    items++;
  }
  bench_do_not_optimize(&acc);
  bench_set_items_processed(st, items);
}

static struct variate next_u64 = {draw_next_u64}, below_1000 = {draw_below_1000},
                      uniform = {draw_uniform}, exponential = {draw_exponential},
                      lognormal = {draw_lognormal}, empirical = {draw_empirical};

int main(int argc, char **argv) {
  bench_register("rng/next_u64", bm_next_u64_direct, NULL);
  bench_register("rng/next_u64_indirect", bm_draw, &next_u64);
  bench_register("rng/below_1000", bm_draw, &below_1000);
  bench_register("rng/uniform_ns", bm_draw, &uniform);
  bench_register("rng/exponential_ns", bm_draw, &exponential);
  bench_register("rng/lognormal_ns", bm_draw, &lognormal);
  bench_register("rng/empirical_ns_16bins", bm_draw, &empirical);
  bench_register("rng/stream_init", bm_stream_init, NULL);
  return bench_main(argc, argv);
}
