/* swap_device.h — the host swap device's timing model, in plain C so it can be
 * tested and swapped without SystemC. The SystemC binding wraps it in a module
 * behind a TLM-2.0 socket (binding/swap_device_module.h).
 *
 * Model (docs/storage.md, "Queueing semantics"): a request of B bytes
 * submitted at time a
 *   1. waits in one FIFO queue, in submission order, for the earliest free of
 *      `channels` identical servers (the device's internal parallelism / queue
 *      depth): start s = max(a, that channel's free time);
 *   2. takes one sampled access latency L: x = s + L;
 *   3. moves its B bytes over the device's link, shared by all channels, at
 *      `bandwidth_bytes_per_s`, one transfer at a time: it gets the earliest
 *      idle stretch of the link of length T = ceil(B / bandwidth) that starts
 *      at or after x, without moving any transfer already placed
 *      (bandwidth 0 = unlimited: T = 0, no link stage);
 *   4. completes at d = transfer start + T. Its channel is busy from s to d.
 * Everything is decided at submission, so the completion time is known at
 * once; integer ns throughout.
 *
 * Not for: deciding what to fetch (the host/APF's job) or sampling
 * distributions (the caller passes a sampler, usually latency.h). */
#ifndef APFSIM_SWAP_DEVICE_H
#define APFSIM_SWAP_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/latency_hist.h"

/* The config allows 1..1024 channels (docs/config.md). */
#define SWAP_DEVICE_MAX_CHANNELS 1024
/* Idle stretches of the link remembered ahead of its last transfer. Only a
 * heavily overloaded device with a free link has more; the earliest is then
 * forgotten (treated as busy), which can only delay, never overlap, a
 * transfer. Counted in stats.link_gaps_dropped. */
#define SWAP_DEVICE_MAX_LINK_GAPS 64

/* Returns one access latency in ns; ctx is the sampler's state. */
typedef uint64_t (*latency_sampler_fn)(void *ctx);

/* The schedule of one request, as decided at submission. */
struct swap_io {
  uint64_t arrival_ns;        /* submission time (after ordering, see submit) */
  uint64_t start_ns;          /* a channel takes it */
  uint64_t access_done_ns;    /* start + sampled access latency */
  uint64_t transfer_start_ns; /* its bytes start crossing the link */
  uint64_t done_ns;           /* completion */
};

struct swap_device_stats {
  uint64_t requests;
  uint64_t bytes;
  uint64_t total_latency_ns; /* arrival -> completion, summed */
  uint64_t max_latency_ns;
  uint64_t total_queue_ns;   /* waiting for a channel + waiting for the link */
  uint64_t total_service_ns; /* access latency + transfer time */
  uint64_t busy_channel_ns;  /* channel occupancy (start -> done), summed over requests */
  uint64_t busy_link_ns;     /* transfer time, summed */
  uint64_t first_arrival_ns;
  uint64_t last_done_ns;
  uint64_t reordered;        /* submissions earlier than the previous one (moved up to it) */
  uint64_t link_gaps_dropped;
  struct latency_hist latency; /* arrival -> completion */
};

struct swap_link_gap {
  uint64_t start_ns, end_ns; /* idle over [start, end) */
};

struct swap_device {
  uint32_t channels;
  uint64_t bandwidth_bytes_per_s;
  latency_sampler_fn sample_latency;
  void *sampler_ctx;
  uint64_t last_arrival_ns;
  /* Min-heap of channel free times: channels are identical, so only the
   * earliest free time matters, never which channel it is. */
  uint64_t channel_free_ns[SWAP_DEVICE_MAX_CHANNELS];
  uint64_t link_tail_ns; /* the link is busy or promised up to here... */
  uint32_t n_gaps;       /* ...except for these idle stretches, sorted, disjoint */
  struct swap_link_gap gaps[SWAP_DEVICE_MAX_LINK_GAPS];
  struct swap_device_stats stats;
};

/* channels outside 1..SWAP_DEVICE_MAX_CHANNELS are clamped into it (the
 * config already checks the range). */
void swap_device_init(struct swap_device *dev, uint32_t channels, uint64_t bandwidth_bytes_per_s,
                      latency_sampler_fn sample_latency, void *sampler_ctx);

/* Submits `bytes` at `now_ns`; fills *io (may be NULL) and returns the
 * completion time. Submissions are served in the order of the calls; a
 * `now_ns` earlier than the previous submission's is taken as that time
 * (counted in stats.reordered), since FIFO order is the call order. */
uint64_t swap_device_submit_io(struct swap_device *dev, uint64_t now_ns, uint64_t bytes,
                               struct swap_io *io);

static inline uint64_t swap_device_submit(struct swap_device *dev, uint64_t now_ns,
                                          uint64_t bytes) {
  return swap_device_submit_io(dev, now_ns, bytes, NULL);
}

/* Time `bytes` take on a link of `bandwidth_bytes_per_s` (0 = unlimited):
 * rounded up to whole ns, saturating. */
uint64_t swap_device_transfer_ns(uint64_t bytes, uint64_t bandwidth_bytes_per_s);

/* What a run summary reports. Utilisations are in parts per million of the
 * window [first arrival, max(end_ns, last completion)]: channel utilisation
 * is busy channel time / (channels x window), link utilisation is transfer
 * time / window. Means are rounded down; percentiles as latency_hist. */
struct swap_device_summary {
  uint64_t requests;
  uint64_t bytes;
  uint64_t mean_latency_ns;
  uint64_t mean_queue_ns;
  uint64_t mean_service_ns;
  uint64_t p50_latency_ns;
  uint64_t p90_latency_ns;
  uint64_t p99_latency_ns;
  uint64_t max_latency_ns;
  uint64_t channel_util_ppm;
  uint64_t link_util_ppm;
};

void swap_device_summarize(const struct swap_device *dev, uint64_t end_ns,
                           struct swap_device_summary *out);

/* The summary as a row of named counters, in the order of
 * swap_device_summary_keys, for a report_section (sim/report) or a CSV. */
#define SWAP_DEVICE_SUMMARY_FIELDS 11
extern const char *const swap_device_summary_keys[SWAP_DEVICE_SUMMARY_FIELDS];
void swap_device_summary_row(const struct swap_device_summary *s,
                             uint64_t values[SWAP_DEVICE_SUMMARY_FIELDS]);

#endif
