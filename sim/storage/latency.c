/* latency.c — maps a configured latency distribution onto sim/rng variates. */
#include "storage/latency.h"

#include <string.h>

void latency_source_init(struct latency_source *src, const struct latency_config *dist,
                         uint64_t run_seed, const char *component_name) {
  memset(src, 0, sizeof *src);
  src->dist = dist;
  rng_stream_init(&src->stream, run_seed, component_name);
  for (uint32_t i = 0; i < dist->n_bins && i < CONFIG_MAX_HISTOGRAM_BINS; i++) {
    src->bins[i].upper_ns = dist->bins[i].upper_ns;
    src->bins[i].count = dist->bins[i].count;
  }
}

uint64_t latency_source_next_ns(struct latency_source *src) {
  const struct latency_config *d = src->dist;
  struct rng *r = &src->stream;
  switch (d->dist) {
    case LATENCY_FIXED: return d->fixed_ns;
    case LATENCY_UNIFORM: return rng_uniform_ns(r, d->min_ns, d->max_ns);
    case LATENCY_EXPONENTIAL: return rng_exponential_ns(r, d->mean_ns);
    case LATENCY_LOGNORMAL: return rng_lognormal_ns(r, d->median_ns, d->sigma_milli);
    case LATENCY_EMPIRICAL: {
      /* The config never has more bins than this; clamp so a hand-made
       * config cannot make the draw read past the table. */
      uint32_t n = d->n_bins < CONFIG_MAX_HISTOGRAM_BINS ? d->n_bins : CONFIG_MAX_HISTOGRAM_BINS;
      return rng_empirical_ns(r, src->bins, n);
    }
  }
  return d->fixed_ns;
}

uint64_t latency_source_sample(void *ctx) { return latency_source_next_ns(ctx); }
