/* harness.h — drives sim/machine without SystemC, for tests: a small discrete-event loop
 * with the binding's rules (each vCPU runs slices up to machine_horizon_ps; a halted or
 * blocked vCPU waits for machine_vcpu_wake_ps; device completions come first at equal
 * times, then machine-wide events, then vCPUs by index) and the swap device's C model
 * (sim/storage/swap_device.h, the stream the SystemC module uses) for host I/O.
 * Not the platform: the CLI tests (tests/cli) cover the real binding. */
#ifndef APFSIM_TESTS_MACHINE_HARNESS_H
#define APFSIM_TESTS_MACHINE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/machine.h"
#include "storage/latency.h"
#include "storage/swap_device.h"

struct hx_io {
  uint64_t done_ps, seq;
  enum machine_io_kind kind;
  uint64_t gpa;
};

struct harness {
  struct sim_config *cfg;
  struct guest_image *img;
  struct trace_writer *trace;
  struct machine *m;
  struct latency_source lat;
  struct swap_device dev;
  struct hx_io *io;
  size_t n_io, cap_io;
  uint64_t seq;
  uint64_t next_ps[64];               /* when each vCPU's thread runs next */
  enum machine_vcpu_next state[64];
  uint64_t now_ps;
  uint64_t steps;
};

/* Loads configs/NAME (from the source tree) with overrides. Fails the test on error. */
struct sim_config *hx_config(const char *name, const char *const *overrides, size_t n);
/* Builds the machine; trace_path NULL: hashed only. */
void hx_start(struct harness *h, struct sim_config *cfg, const char *trace_path);
/* Runs until the machine ends or until_ps; after each vCPU slice, stop(h, vcpu, step, ctx)
 * may end the loop early by returning true. Returns false if the loop stopped early. */
bool hx_run(struct harness *h, uint64_t until_ps,
            bool (*stop)(struct harness *h, unsigned vcpu, const struct machine_step *st, void *ctx), void *ctx);
/* Applies the time limit if the machine has not ended, fills the summary, closes the
 * trace (sha256 in s->trace_sha256). The summary's arrays live until hx_free. */
void hx_finish(struct harness *h, struct run_summary *s);
void hx_free(struct harness *h);

/* The value of key in section name (row), or fails the test. */
uint64_t hx_section_value(const struct run_summary *s, const char *name, size_t row, const char *key);

#endif
