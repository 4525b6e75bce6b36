/* swap_device.c — queueing and bandwidth arithmetic of the swap device model
 * (semantics in swap_device.h and docs/storage.md). */
#include "storage/swap_device.h"

#include <string.h>

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

void swap_device_init(struct swap_device *dev, uint32_t channels, uint64_t bandwidth_bytes_per_s,
                      latency_sampler_fn sample_latency, void *sampler_ctx) {
  memset(dev, 0, sizeof *dev);
  if (channels < 1) channels = 1;
  if (channels > SWAP_DEVICE_MAX_CHANNELS) channels = SWAP_DEVICE_MAX_CHANNELS;
  dev->channels = channels;
  dev->bandwidth_bytes_per_s = bandwidth_bytes_per_s;
  dev->sample_latency = sample_latency;
  dev->sampler_ctx = sampler_ctx;
  latency_hist_init(&dev->stats.latency);
}

uint64_t swap_device_transfer_ns(uint64_t bytes, uint64_t bandwidth_bytes_per_s) {
  if (bandwidth_bytes_per_s == 0 || bytes == 0) return 0;
  __extension__ unsigned __int128 ns =
      ((unsigned __int128)bytes * 1000000000u + bandwidth_bytes_per_s - 1) / bandwidth_bytes_per_s;
  return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

/* ---- channels: a min-heap of free times; the root is the earliest ---- */

static void heap_replace_root(uint64_t *heap, uint32_t n, uint64_t value) {
  uint32_t i = 0;
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    uint64_t mv = value;
    if (l < n && heap[l] < mv) m = l, mv = heap[l];
    if (r < n && heap[r] < mv) m = r, mv = heap[r];
    if (m == i) break;
    heap[i] = heap[m];
    i = m;
  }
  heap[i] = value;
}

/* ---- the link: busy up to link_tail except for the remembered gaps ---- */

static void gap_remove(struct swap_device *dev, uint32_t i) {
  memmove(&dev->gaps[i], &dev->gaps[i + 1], (dev->n_gaps - i - 1) * sizeof dev->gaps[0]);
  dev->n_gaps--;
}

/* Inserts [start, end) at index i (keeping the order). When the table is
 * full the earliest gap is forgotten: later requests arrive later, so it is
 * the one least likely to be used. */
static void gap_insert(struct swap_device *dev, uint32_t i, uint64_t start, uint64_t end) {
  if (start >= end) return;
  if (dev->n_gaps == SWAP_DEVICE_MAX_LINK_GAPS) {
    dev->stats.link_gaps_dropped++;
    if (i == 0) return; /* the new one is the earliest */
    gap_remove(dev, 0);
    i--;
  }
  memmove(&dev->gaps[i + 1], &dev->gaps[i], (dev->n_gaps - i) * sizeof dev->gaps[0]);
  dev->gaps[i] = (struct swap_link_gap){start, end};
  dev->n_gaps++;
}

/* Places a transfer of `len` ns that may start at `earliest`; returns its start. */
static uint64_t link_place(struct swap_device *dev, uint64_t earliest, uint64_t len) {
  for (uint32_t i = 0; i < dev->n_gaps; i++) {
    struct swap_link_gap g = dev->gaps[i];
    uint64_t s = max_u64(g.start_ns, earliest);
    if (s >= g.end_ns || g.end_ns - s < len) continue;
    gap_remove(dev, i);
    /* Right part first so the left one lands before it at index i. */
    gap_insert(dev, i, s + len, g.end_ns);
    gap_insert(dev, i, g.start_ns, s);
    return s;
  }
  uint64_t s = max_u64(earliest, dev->link_tail_ns);
  if (s > dev->link_tail_ns) gap_insert(dev, dev->n_gaps, dev->link_tail_ns, s);
  dev->link_tail_ns = sat_add(s, len);
  return s;
}

/* Gaps that end by `now` can never be used: every later transfer starts at
 * or after its own submission, which is at or after now. */
static void link_forget_before(struct swap_device *dev, uint64_t now) {
  uint32_t n = 0;
  while (n < dev->n_gaps && dev->gaps[n].end_ns <= now) n++;
  if (n == 0) return;
  memmove(&dev->gaps[0], &dev->gaps[n], (dev->n_gaps - n) * sizeof dev->gaps[0]);
  dev->n_gaps -= n;
}

uint64_t swap_device_submit_io(struct swap_device *dev, uint64_t now_ns, uint64_t bytes,
                               struct swap_io *io) {
  struct swap_device_stats *st = &dev->stats;
  if (st->requests > 0 && now_ns < dev->last_arrival_ns) {
    now_ns = dev->last_arrival_ns;
    st->reordered++;
  }
  dev->last_arrival_ns = now_ns;

  uint64_t start = max_u64(now_ns, dev->channel_free_ns[0]);
  uint64_t access_done = sat_add(start, dev->sample_latency(dev->sampler_ctx));
  uint64_t xfer_len = swap_device_transfer_ns(bytes, dev->bandwidth_bytes_per_s);
  uint64_t xfer_start = access_done;
  if (xfer_len > 0) {
    link_forget_before(dev, now_ns);
    xfer_start = link_place(dev, access_done, xfer_len);
  }
  uint64_t done = sat_add(xfer_start, xfer_len);
  heap_replace_root(dev->channel_free_ns, dev->channels, done);

  if (st->requests == 0) st->first_arrival_ns = now_ns;
  st->requests++;
  st->bytes += bytes;
  uint64_t latency = done - now_ns;
  st->total_latency_ns = sat_add(st->total_latency_ns, latency);
  if (latency > st->max_latency_ns) st->max_latency_ns = latency;
  st->total_queue_ns = sat_add(st->total_queue_ns, (start - now_ns) + (xfer_start - access_done));
  st->total_service_ns = sat_add(st->total_service_ns, (access_done - start) + xfer_len);
  st->busy_channel_ns = sat_add(st->busy_channel_ns, done - start);
  st->busy_link_ns = sat_add(st->busy_link_ns, xfer_len);
  if (done > st->last_done_ns) st->last_done_ns = done;
  latency_hist_add(&st->latency, latency);

  if (io) *io = (struct swap_io){now_ns, start, access_done, xfer_start, done};
  return done;
}

/* busy * 10^6 / (window * servers), rounded down, in 128 bits; 0 for an
 * empty window. */
static uint64_t ppm(uint64_t busy, uint64_t window, uint64_t servers) {
  __extension__ unsigned __int128 den = (unsigned __int128)window * servers;
  if (den == 0) return 0;
  __extension__ unsigned __int128 v = (unsigned __int128)busy * 1000000u / den;
  return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

void swap_device_summarize(const struct swap_device *dev, uint64_t end_ns,
                           struct swap_device_summary *out) {
  const struct swap_device_stats *st = &dev->stats;
  memset(out, 0, sizeof *out);
  out->requests = st->requests;
  out->bytes = st->bytes;
  if (st->requests == 0) return;
  out->mean_latency_ns = st->total_latency_ns / st->requests;
  out->mean_queue_ns = st->total_queue_ns / st->requests;
  out->mean_service_ns = st->total_service_ns / st->requests;
  out->p50_latency_ns = latency_hist_percentile(&st->latency, 500);
  out->p90_latency_ns = latency_hist_percentile(&st->latency, 900);
  out->p99_latency_ns = latency_hist_percentile(&st->latency, 990);
  out->max_latency_ns = st->max_latency_ns;
  uint64_t window = max_u64(end_ns, st->last_done_ns) - st->first_arrival_ns;
  out->channel_util_ppm = ppm(st->busy_channel_ns, window, dev->channels);
  out->link_util_ppm = ppm(st->busy_link_ns, window, 1);
}

const char *const swap_device_summary_keys[SWAP_DEVICE_SUMMARY_FIELDS] = {
    "requests",       "bytes",          "mean_latency_ns",  "mean_queue_ns",
    "mean_service_ns", "p50_latency_ns", "p90_latency_ns",   "p99_latency_ns",
    "max_latency_ns", "channel_util_ppm", "link_util_ppm",
};

void swap_device_summary_row(const struct swap_device_summary *s,
                             uint64_t values[SWAP_DEVICE_SUMMARY_FIELDS]) {
  const uint64_t row[SWAP_DEVICE_SUMMARY_FIELDS] = {
      s->requests,       s->bytes,          s->mean_latency_ns, s->mean_queue_ns,
      s->mean_service_ns, s->p50_latency_ns, s->p90_latency_ns,  s->p99_latency_ns,
      s->max_latency_ns, s->channel_util_ppm, s->link_util_ppm,
  };
  memcpy(values, row, sizeof row);
}
