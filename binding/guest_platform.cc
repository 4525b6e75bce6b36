// guest_platform.cc — see guest_platform.h.
#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn with a stack size
#include "guest_platform.h"

#include <string>

#include "sim_time.h"

namespace apfsim {

namespace {
// SystemC's default 256 KiB thread stack is too small for Unicorn's emulation loop and
// the vCPU's callbacks below it (DESIGN.md §7).
constexpr size_t kVcpuStack = 1u << 20;
// The one wall-clock read (limits/max-host-seconds) happens every this many slices, or
// sooner once the vCPUs' slices add up to this much simulated time (long quanta: a slice of
// 10^9 instructions takes seconds of host time, and 1024 of them would be hours).
constexpr uint64_t kHostClockEvery = 1024;
constexpr uint64_t kHostClockSimPs = 1000000000;  // 1 ms

uint64_t now_ps() { return sc_core::sc_time_stamp().value(); }
sc_core::sc_time ps(uint64_t v) { return sc_core::sc_time::from_value(v); }
}  // namespace

GuestPlatform::GuestPlatform(sc_core::sc_module_name name, RunContext &ctx)
    : sc_module(name), socket("socket"), ctx_(ctx), device_("swap_device", ctx) {
  socket.register_nb_transport_bw(this, &GuestPlatform::nb_transport_bw);
  socket.bind(device_.socket);
  const unsigned n = ctx.cfg.machine.vcpus;
  for (unsigned i = 0; i < n; i++) {
    wake_.push_back(std::make_unique<sc_core::sc_event>());
    sc_core::sc_spawn_options o;
    o.set_stack_size(kVcpuStack);
    std::string thread = "vcpu" + std::to_string(i);
    sc_core::sc_spawn([this, i] { vcpu_thread(i); }, thread.c_str(), &o);
  }
  sc_core::sc_spawn([this] { host_thread(); }, "host");
}

GuestPlatform::~GuestPlatform() { machine_destroy(m_); }

bool GuestPlatform::create(const guest_image *image, FILE *console, diag *err, bool *config_error) {
  machine_params p{};
  p.config_error = config_error;
  p.cfg = &ctx_.cfg;
  p.image = image;
  p.trace = ctx_.trace;
  p.io = machine_io_ops{this, submit, kick, stop};
  p.console = console;
  m_ = machine_create(&p, err);
  clock_gettime(CLOCK_MONOTONIC, &started_);
  return m_ != nullptr;
}

// Each vCPU: run a slice, let its simulated time pass, repeat; while it is halted or
// blocked, sleep until the machine says it can go on (a timer, an IPI, an I/O completion
// — every one of them also notifies wake_[i]).
void GuestPlatform::vcpu_thread(unsigned i) {
  if (!m_) return;
  sc_core::sc_event &wake = *wake_[i];
  for (;;) {
    const uint64_t now = now_ps();
    machine_step step;
    machine_vcpu_run(m_, i, now, machine_horizon_ps(m_, i, now), &step);
    if (step.next == MACHINE_VCPU_STOPPED) return;
    // The slice may have added a timed event (a DAX page-cache read started by an async
    // fault: no vCPU waits for it) before the one the host thread sleeps until: wake it
    // to sleep until the new one, so the event is handled at its own time.
    if (machine_next_timed_event_ps(m_) < host_waits_until_ps_) host_wake_.notify(sc_core::SC_ZERO_TIME);
    clock_sim_ps_ += step.consumed_ps;
    if (++slices_ % kHostClockEvery == 0 || clock_sim_ps_ >= kHostClockSimPs) {
      clock_sim_ps_ = 0;
      if (host_time_exceeded()) {
        machine_time_limit(m_, now, true);
        return;
      }
    }
    if (trace_memory_exceeded(now)) return;
    if (step.consumed_ps) wait(ps(step.consumed_ps));
    if (step.next == MACHINE_VCPU_RUNNABLE) continue;
    for (;;) {
      if (machine_ended(m_)) return;
      const uint64_t t = now_ps(), w = machine_vcpu_wake_ps(m_, i);
      if (w <= t) break;
      if (w == MACHINE_NEVER)
        wait(wake);
      else
        wait(ps(w - t), wake);
    }
  }
}

// Machine-wide timed events (scripted evictions) when no vCPU happens to run at their
// time; a vCPU that does runs them first (machine_vcpu_run), so the order is the same.
void GuestPlatform::host_thread() {
  if (!m_) return;
  for (;;) {
    const uint64_t t = machine_next_timed_event_ps(m_), now = now_ps();
    if (machine_ended(m_)) return;
    host_waits_until_ps_ = t;
    if (t == MACHINE_NEVER) {
      wait(host_wake_);
    } else if (t > now) {
      wait(ps(t - now), host_wake_);
    }
    host_waits_until_ps_ = now_ps();  // running: no wake needed until it waits again
    // Only at a timed event's time: a wake for an earlier one may find nothing due yet.
    if (machine_next_timed_event_ps(m_) <= now_ps()) machine_deliver_due(m_, now_ps());
  }
}

bool GuestPlatform::host_time_exceeded() {
  const uint64_t limit = ctx_.cfg.limits.max_host_seconds;
  if (!limit) return false;
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  // Whole nanoseconds, not whole seconds: the limit is the time since the machine was built.
  const int64_t ns = (t.tv_sec - started_.tv_sec) * INT64_C(1000000000) + (t.tv_nsec - started_.tv_nsec);
  return ns >= 0 && static_cast<uint64_t>(ns) / 1000000000u >= limit;
}

// limits/max-host-memory: guest RAM and the DAX window were checked against it when the
// config loaded; the rest is the trace buffer's share, checked after every slice (the
// buffer's size is simulated state, so where the run stops is deterministic).
bool GuestPlatform::trace_memory_exceeded(uint64_t now) {
  const sim_config &cfg = ctx_.cfg;
  const uint64_t limit = cfg.limits.max_host_memory_bytes;
  if (!limit) return false;
  const uint64_t fixed = cfg.machine.guest_memory_bytes + (cfg.dax.enabled ? cfg.dax.window_bytes : 0);
  const uint64_t share = limit > fixed ? limit - fixed : 0, used = trace_buffer_bytes(ctx_.trace);
  if (used <= share) return false;
  machine_memory_limit(m_, now, used, share);
  return true;
}

uint64_t GuestPlatform::submit(void *ctx, machine_io_kind kind, uint64_t gpa, uint32_t bytes, uint64_t at_ps) {
  auto *self = static_cast<GuestPlatform *>(ctx);
  if (self->free_payloads_.empty()) {
    self->payloads_.push_back(std::make_unique<tlm::tlm_generic_payload>());
    // Ask the device for each request's completion time at submission (SwapTiming):
    // the machine bounds vCPU horizons by it, so page-ready interrupts land on time.
    self->payloads_.back()->set_extension(new SwapTiming);  // owned by the payload
    self->free_payloads_.push_back(self->payloads_.back().get());
  }
  tlm::tlm_generic_payload *t = self->free_payloads_.back();
  self->free_payloads_.pop_back();
  t->set_command(kind == MACHINE_IO_FETCH ? tlm::TLM_READ_COMMAND : tlm::TLM_WRITE_COMMAND);
  t->set_address(gpa);
  t->set_data_length(bytes);
  t->set_data_ptr(nullptr);  // a timing model: page contents never move
  t->set_streaming_width(bytes);
  t->set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  // The request leaves the vCPU at its local time, ahead of SystemC's: the annotated
  // delay carries it there (TLM-2.0 loosely-timed style).
  const uint64_t now = now_ps();
  tlm::tlm_phase phase = tlm::BEGIN_REQ;
  sc_core::sc_time delay = ps(at_ps > now ? at_ps - now : 0);
  SwapTiming *timing = nullptr;
  t->get_extension(timing);
  timing->done_ns = SwapTiming::kUnknown;
  self->socket->nb_transport_fw(*t, phase, delay);
  // A device that ignores the extension reports the completion only at BEGIN_RESP.
  if (timing->done_ns == SwapTiming::kUnknown || timing->done_ns > MACHINE_NEVER / kPsPerNs) return MACHINE_NEVER;
  return timing->done_ns * kPsPerNs;
}

tlm::tlm_sync_enum GuestPlatform::nb_transport_bw(tlm::tlm_generic_payload &trans, tlm::tlm_phase &phase,
                                                  sc_core::sc_time &) {
  if (phase != tlm::BEGIN_RESP) return tlm::TLM_ACCEPTED;
  const machine_io_kind kind = trans.is_read() ? MACHINE_IO_FETCH : MACHINE_IO_WRITEBACK;
  const uint64_t gpa = trans.get_address();
  free_payloads_.push_back(&trans);
  if (m_) machine_io_done(m_, kind, gpa, now_ps());
  return tlm::TLM_COMPLETED;
}

void GuestPlatform::kick(void *ctx, unsigned vcpu, uint64_t at_ps) {
  auto *self = static_cast<GuestPlatform *>(ctx);
  const uint64_t now = now_ps();
  // An earlier pending notification wins, a later one is replaced (IEEE 1666 §5.10.8).
  self->wake_[vcpu]->notify(ps(at_ps > now ? at_ps - now : 0));
}

// The machine ends a run once; after sc_start returned (a time limit) there is nothing
// left to stop.
void GuestPlatform::stop(void *) {
  if (sc_core::sc_is_running()) sc_core::sc_stop();
}

}  // namespace apfsim
