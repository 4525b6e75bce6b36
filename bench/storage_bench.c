/* storage_bench.c — host cost of the storage models (sim/storage): requests
 * per host second through the swap device model for each device preset, and
 * faults per second through the DAX file model. Each timed iteration submits
 * a batch, so the shim's per-iteration overhead does not dominate.
 * Run: cmake --build build --target bench, or build/bench/storage_bench. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "rng/rng.h"
#include "storage/dax_file.h"
#include "storage/latency.h"
#include "storage/presets.h"
#include "storage/swap_device.h"

#define BATCH 1024

struct preset_case {
  enum device_preset id;
  uint32_t load_percent; /* arrival rate as a share of the preset's bound; 0 = all at once */
};

/* Poisson arrivals of 4 KiB reads at load_percent of the preset's saturation
 * bound (or all at t=0, the overloaded case that exercises the link's gap
 * table), through the model with the preset's latency distribution. */
static void bm_swap_preset(struct bench_state *st, void *arg) {
  const struct preset_case *c = arg;
  struct swap_device_config *cfg = calloc(1, sizeof *cfg);
  struct latency_source *src = malloc(sizeof *src);
  struct swap_device *dev = malloc(sizeof *dev);
  if (!cfg || !src || !dev) abort();
  storage_preset_apply(c->id, cfg);
  const struct swap_device_preset *p = storage_preset(c->id);
  latency_source_init(src, &cfg->latency, 42, STORAGE_STREAM_SWAP_DEVICE);
  swap_device_init(dev, cfg->channels, cfg->bandwidth_bytes_per_s, latency_source_sample, src);
  struct rng arrivals;
  rng_stream_init(&arrivals, 42, "arrivals");
  uint64_t gap = c->load_percent ? UINT64_C(1000000000) * 100 / (p->max_4k_per_s * c->load_percent) : 0;
  uint64_t t = 0, acc = 0;
  int64_t items = 0;
  while (bench_keep_running(st)) {
    for (int i = 0; i < BATCH; i++) {
      if (gap) t += rng_exponential_ns(&arrivals, gap);
      acc += swap_device_submit(dev, t, 4096);
    }
    items += BATCH;
  }
  bench_do_not_optimize(&acc);
  bench_set_items_processed(st, items);
  struct swap_device_summary s;
  swap_device_summarize(dev, 0, &s);
  bench_set_counter(st, "sim_mean_us", (double)s.mean_latency_ns / 1000, false);
  bench_set_counter(st, "sim_p99_us", (double)s.p99_latency_ns / 1000, false);
  free(dev);
  free(src);
  free(cfg);
}

/* DAX faults on a 1 GiB file: `hit_percent` of them on resident pages, the
 * rest on pages that need a read (evicted again so the mix stays). */
static void bm_dax_fault(struct bench_state *st, void *arg) {
  const uint32_t *hit_percent = arg;
  struct latency_config lat = {.dist = LATENCY_FIXED, .fixed_ns = 2000};
  struct latency_source src;
  latency_source_init(&src, &lat, 42, STORAGE_STREAM_DAX_PAGE_CACHE);
  struct dax_file f;
  struct diag err;
  const uint64_t bytes = UINT64_C(1) << 30, pages = bytes / DAX_PAGE_SIZE;
  if (!dax_file_init(&f, bytes, bytes, DAX_START_WARM, latency_source_sample, &src, &err)) abort();
  struct rng pick;
  rng_stream_init(&pick, 42, "pick");
  uint64_t now = 0, acc = 0;
  int64_t items = 0;
  while (bench_keep_running(st)) {
    for (int i = 0; i < BATCH; i++) {
      uint64_t off = rng_below(&pick, pages) * DAX_PAGE_SIZE;
      now += 10000;
      if (rng_below(&pick, 100) >= *hit_percent) dax_file_evict(&f, off, now);
      uint64_t ready;
      dax_file_read(&f, off, now, &ready);
      acc += ready;
    }
    items += BATCH;
  }
  bench_do_not_optimize(&acc);
  bench_set_items_processed(st, items);
  dax_file_destroy(&f);
}

int main(int argc, char **argv) {
  static const struct preset_case cases[] = {
      {DEVICE_PRESET_HDD, 70},   {DEVICE_PRESET_SATA_SSD, 70}, {DEVICE_PRESET_NVME_SSD, 70},
      {DEVICE_PRESET_ZSWAP, 70}, {DEVICE_PRESET_RDMA, 70},     {DEVICE_PRESET_NVME_SSD, 0},
      {DEVICE_PRESET_RDMA, 0},
  };
  static char names[sizeof cases / sizeof cases[0]][64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct swap_device_preset *p = storage_preset(cases[i].id);
    if (cases[i].load_percent)
      snprintf(names[i], sizeof names[i], "swap_submit/%s/load%u%%", p->name, cases[i].load_percent);
    else
      snprintf(names[i], sizeof names[i], "swap_submit/%s/all_at_once", p->name);
    bench_register(names[i], bm_swap_preset, (void *)&cases[i]);
  }
  static const uint32_t hits[] = {100, 50};
  bench_register("dax_fault/hit100%", bm_dax_fault, (void *)&hits[0]);
  bench_register("dax_fault/hit50%", bm_dax_fault, (void *)&hits[1]);
  return bench_main(argc, argv);
}
