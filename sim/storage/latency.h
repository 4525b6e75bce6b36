/* latency.h — draws access latencies from a configured distribution
 * (struct latency_config) using the component's own seeded stream.
 * Not for: queueing (see swap_device.h). */
#ifndef APFSIM_LATENCY_H
#define APFSIM_LATENCY_H

#include <stdint.h>

#include "config/config.h"
#include "rng/rng.h"

/* Stream names of the run's storage components: part of the determinism
 * contract (a renamed stream changes every draw), so spelled once here. */
#define STORAGE_STREAM_SWAP_DEVICE "swap-device"
#define STORAGE_STREAM_DAX_PAGE_CACHE "dax-page-cache"

struct latency_source {
  const struct latency_config *dist;
  struct rng stream;
  /* The empirical histogram in sim/rng's form, converted once at init. */
  struct rng_hist_bin bins[CONFIG_MAX_HISTOGRAM_BINS];
};

/* Draws come from stream `component_name` of run `run_seed`; `dist` must
 * outlive the source. */
void latency_source_init(struct latency_source *src, const struct latency_config *dist,
                         uint64_t run_seed, const char *component_name);

uint64_t latency_source_next_ns(struct latency_source *src);

/* latency_sampler_fn adapter for swap_device; ctx is a struct latency_source. */
uint64_t latency_source_sample(void *ctx);

#endif
