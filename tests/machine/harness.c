/* harness.c — see harness.h. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct sim_config *hx_config(const char *name, const char *const *overrides, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/configs/%s", APFSIM_SOURCE_DIR, name);
  struct sim_config *cfg = config_new();
  struct diag d = {{0}};
  if (!config_load(path, overrides, n, NULL, cfg, &d)) fail_msg("%s", d.msg);
  return cfg;
}

static uint64_t hx_submit(void *ctx, enum machine_io_kind kind, uint64_t gpa, uint32_t bytes, uint64_t at_ps) {
  struct harness *h = ctx;
  /* the device model works in ns, like the SystemC module's arrival time */
  uint64_t done_ns = swap_device_submit(&h->dev, at_ps / 1000, bytes);
  if (h->n_io == h->cap_io) {
    h->cap_io = h->cap_io ? 2 * h->cap_io : 64;
    h->io = realloc(h->io, h->cap_io * sizeof *h->io);
    assert_non_null(h->io);
  }
  h->io[h->n_io++] = (struct hx_io){done_ns * 1000, h->seq++, kind, gpa};
  return done_ns * 1000; /* like the binding (SwapTiming): known at submission, reported at its time */
}

static void hx_kick(void *ctx, unsigned vcpu, uint64_t at_ps) {
  (void)ctx, (void)vcpu, (void)at_ps; /* the loop asks machine_vcpu_wake_ps every time */
}

void hx_start(struct harness *h, struct sim_config *cfg, const char *trace_path) {
  struct diag d = {{0}};
  memset(h, 0, sizeof *h);
  h->cfg = cfg;
  h->img = machine_open_kernel(cfg, &d);
  if (!h->img) fail_msg("%s", d.msg);
  const struct trace_kv header[] = {{"guest-image-sha256", h->img->sha256_hex, 0}};
  h->trace = trace_writer_open(trace_path, header, 1, NULL, 0, &d);
  if (!h->trace) fail_msg("%s", d.msg);
  latency_source_init(&h->lat, &cfg->swap.latency, cfg->seed, STORAGE_STREAM_SWAP_DEVICE);
  swap_device_init(&h->dev, cfg->swap.channels, cfg->swap.bandwidth_bytes_per_s, latency_source_sample, &h->lat);
  struct machine_params p = {.cfg = cfg, .image = h->img, .trace = h->trace,
                             .io = {h, hx_submit, hx_kick, NULL}, .console = NULL};
  h->m = machine_create(&p, &d);
  if (!h->m) fail_msg("machine_create: %s", d.msg);
}

static size_t earliest_io(const struct harness *h) {
  size_t best = SIZE_MAX;
  for (size_t k = 0; k < h->n_io; k++)
    if (best == SIZE_MAX || h->io[k].done_ps < h->io[best].done_ps ||
        (h->io[k].done_ps == h->io[best].done_ps && h->io[k].seq < h->io[best].seq))
      best = k;
  return best;
}

bool hx_run(struct harness *h, uint64_t until_ps,
            bool (*stop)(struct harness *h, unsigned vcpu, const struct machine_step *st, void *ctx), void *ctx) {
  const unsigned n = machine_n_vcpus(h->m);
  while (!machine_ended(h->m)) {
    uint64_t t = MACHINE_NEVER;
    int who = -3; /* -2 io, -1 timed event, i vCPU */
    size_t io = earliest_io(h);
    if (io != SIZE_MAX) {
      t = h->io[io].done_ps;
      who = -2;
    }
    uint64_t te = machine_next_timed_event_ps(h->m);
    if (te < t) {
      t = te;
      who = -1;
    }
    for (unsigned i = 0; i < n; i++) {
      uint64_t ti = h->next_ps[i];
      if (h->state[i] != MACHINE_VCPU_RUNNABLE) {
        uint64_t w = machine_vcpu_wake_ps(h->m, i);
        if (w == MACHINE_NEVER) continue;
        if (w > ti) ti = w;
        if (h->now_ps > ti) ti = h->now_ps; /* it could go on from the last event's time */
      }
      if (ti < t) {
        t = ti;
        who = (int)i;
      }
    }
    if (who == -3 || t >= until_ps) break;
    h->now_ps = t;
    if (++h->steps % 1024 == 0) {
      struct diag d;
      assert_true(trace_flush_until(h->trace, t / 1000, &d));
    }
    if (who == -2) {
      struct hx_io done = h->io[io];
      h->io[io] = h->io[--h->n_io];
      machine_io_done(h->m, done.kind, done.gpa, t);
    } else if (who == -1) {
      machine_deliver_due(h->m, t);
    } else {
      struct machine_step st;
      machine_vcpu_run(h->m, (unsigned)who, t, machine_horizon_ps(h->m, (unsigned)who, t), &st);
      if (machine_failed(h->m)) fail_msg("machine failed: %s", machine_failed(h->m));
      h->next_ps[who] = t + st.consumed_ps;
      h->state[who] = st.next;
      if (stop && stop(h, (unsigned)who, &st, ctx)) return false;
    }
  }
  if (machine_failed(h->m)) fail_msg("machine failed: %s", machine_failed(h->m));
  return true;
}

void hx_finish(struct harness *h, struct run_summary *s) {
  struct diag d = {{0}};
  machine_time_limit(h->m, h->cfg->limits.max_sim_time_ns * 1000, false);
  machine_summary(h->m, s);
  if (!trace_close(h->trace, s->trace_sha256, &d)) fail_msg("%s", d.msg);
  h->trace = NULL;
}

void hx_free(struct harness *h) {
  if (h->trace) trace_abort(h->trace);
  machine_destroy(h->m);
  guest_image_free(h->img);
  free(h->io);
  free(h->cfg);
}

uint64_t hx_section_value(const struct run_summary *s, const char *name, size_t row, const char *key) {
  for (size_t k = 0; k < s->n_sections; k++) {
    const struct report_section *sec = &s->sections[k];
    if (strcmp(sec->name, name)) continue;
    if (row >= sec->n_rows) fail_msg("section %s has %zu rows, not %zu", name, sec->n_rows, row + 1);
    for (size_t c = 0; c < sec->n_keys; c++)
      if (!strcmp(sec->keys[c], key)) return sec->values[row * sec->n_keys + c];
    fail_msg("section %s has no key %s", name, key);
  }
  fail_msg("no section %s", name);
  return 0;
}
