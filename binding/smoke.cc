// smoke.cc — see smoke.h.
#include "smoke.h"

#include "sim_time.h"

namespace apfsim {

SmokeTimer::SmokeTimer(sc_core::sc_module_name name, RunContext &ctx) : sc_module(name), ctx_(ctx) {
  SC_HAS_PROCESS(SmokeTimer);
  SC_THREAD(run);
}

void SmokeTimer::run() {
  const uint64_t period = ctx_.cfg.smoke.timer_period_ns;
  for (;;) {
    wait(ns(period));
    ticks_++;
    trace_event(ctx_.trace, now_ns(), TRACE_CPU_HOST, "timer_tick", "n %llu",
                (unsigned long long)ticks_);
  }
}

SmokeRequestGenerator::SmokeRequestGenerator(sc_core::sc_module_name name, RunContext &ctx)
    : sc_module(name), socket("socket"), ctx_(ctx), payloads_(ctx.cfg.smoke.device_requests) {
  socket.register_nb_transport_bw(this, &SmokeRequestGenerator::nb_transport_bw);
  SC_HAS_PROCESS(SmokeRequestGenerator);
  SC_THREAD(run);
}

void SmokeRequestGenerator::run() {
  for (auto &trans : payloads_) {
    wait(ns(ctx_.cfg.smoke.request_interval_ns));
    // Page-sized reads spread over guest memory, one page apart per request.
    trans.set_command(tlm::TLM_READ_COMMAND);
    trans.set_address(issued_ * kPageBytes % ctx_.cfg.machine.guest_memory_bytes);
    trans.set_data_length(kPageBytes);
    trans.set_data_ptr(nullptr);  // timing-only model: no data moves
    trans.set_streaming_width(kPageBytes);
    trans.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    issued_++;
    tlm::tlm_phase phase = tlm::BEGIN_REQ;
    sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
    socket->nb_transport_fw(trans, phase, delay);
  }
}

tlm::tlm_sync_enum SmokeRequestGenerator::nb_transport_bw(tlm::tlm_generic_payload &,
                                                          tlm::tlm_phase &phase,
                                                          sc_core::sc_time &) {
  if (phase == tlm::BEGIN_RESP) completed_++;
  return tlm::TLM_COMPLETED;
}

}  // namespace apfsim
