// swap_device_module.cc — see swap_device_module.h.
#include "swap_device_module.h"

#include "sim_time.h"

namespace apfsim {

SwapDeviceModule::SwapDeviceModule(sc_core::sc_module_name name, RunContext &ctx)
    : SwapDeviceModule(name, ctx, ctx.cfg.swap, STORAGE_STREAM_SWAP_DEVICE) {}

SwapDeviceModule::SwapDeviceModule(sc_core::sc_module_name name, RunContext &ctx,
                                   const swap_device_config &cfg, const char *stream_name)
    : sc_module(name), socket("socket"), ctx_(ctx) {
  latency_source_init(&latency_, &cfg.latency, ctx.cfg.seed, stream_name);
  swap_device_init(&model_, cfg.channels, cfg.bandwidth_bytes_per_s, latency_source_sample,
                   &latency_);
  socket.register_nb_transport_fw(this, &SwapDeviceModule::nb_transport_fw);
  SC_HAS_PROCESS(SwapDeviceModule);
  SC_METHOD(accept_arrivals);
  sensitive << arrival_event_;
  dont_initialize();
  SC_METHOD(complete_requests);
  sensitive << done_event_;
  dont_initialize();
}

swap_device_summary SwapDeviceModule::summary() const {
  swap_device_summary s;
  swap_device_summarize(&model_, now_ns(), &s);
  return s;
}

// Only the earliest entry matters: a pending notification that is earlier
// than the new one wins (IEEE 1666 §5.10.8), a later one is replaced.
void SwapDeviceModule::notify_next(sc_core::sc_event &ev, const std::map<Key, Request> &queue) {
  if (queue.empty()) return;
  uint64_t t = queue.begin()->first.first;
  uint64_t now = now_ns();
  ev.notify(t > now ? ns(t - now) : sc_core::SC_ZERO_TIME);
}

tlm::tlm_sync_enum SwapDeviceModule::nb_transport_fw(int initiator,
                                                     tlm::tlm_generic_payload &trans,
                                                     tlm::tlm_phase &phase,
                                                     sc_core::sc_time &delay) {
  if (phase == tlm::END_RESP) {
    // The initiator released the response channel: send what was held.
    if (static_cast<size_t>(initiator) < resp_busy_.size()) {
      resp_busy_[initiator] = false;
      auto &held = resp_held_[initiator];
      while (!resp_busy_[initiator] && !held.empty()) {
        Request r = held.front();
        held.pop_front();
        send_begin_resp(r);
      }
    }
    return tlm::TLM_COMPLETED;
  }
  if (phase != tlm::BEGIN_REQ) {
    SC_REPORT_ERROR(name(), "nb_transport_fw: phase other than BEGIN_REQ or END_RESP");
    return tlm::TLM_COMPLETED;
  }
  // The request reaches the device `delay` from now. It is queued rather than
  // submitted at once so that requests enter the model in arrival order even
  // when initiators annotate different delays.
  uint64_t arrival = now_ns() + delay.value() / kPsPerNs;
  Request r{&trans, initiator, next_id_++, arrival, 0};
  SwapTiming *timing = nullptr;
  trans.get_extension(timing);
  if (timing && (trans.is_read() || trans.is_write())) {
    // The initiator needs the completion time now: the request is scheduled in
    // call order (SwapTiming above), its arrival still the annotated time.
    start(r);
    timing->done_ns = r.done_ns;
    notify_next(done_event_, in_service_);
  } else {
    arriving_.emplace(Key{arrival, r.id}, r);
    notify_next(arrival_event_, arriving_);
  }
  phase = tlm::END_REQ;
  return tlm::TLM_UPDATED;
}

void SwapDeviceModule::accept_arrivals() {
  uint64_t now = now_ns();
  while (!arriving_.empty() && arriving_.begin()->first.first <= now) {
    Request r = arriving_.begin()->second;
    arriving_.erase(arriving_.begin());
    tlm::tlm_generic_payload &t = *r.trans;
    if (!t.is_read() && !t.is_write()) {
      trace_event(ctx_.trace, now, TRACE_CPU_DEV, "swap_error",
                  "req %llu initiator %d gpa %#llx unsupported command",
                  (unsigned long long)r.id, r.initiator, (unsigned long long)t.get_address());
      t.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
      r.done_ns = now;
      respond(r);
      continue;
    }
    start(r);
  }
  notify_next(arrival_event_, arriving_);
  notify_next(done_event_, in_service_);
}

void SwapDeviceModule::start(Request &r) {
  tlm::tlm_generic_payload &t = *r.trans;
  bool write = t.is_write();
  (write ? writes_ : reads_)++;
  r.done_ns = swap_device_submit(&model_, r.arrival_ns, t.get_data_length());
  trace_event(ctx_.trace, r.arrival_ns, TRACE_CPU_DEV, write ? "swap_write_submit" : "swap_read_submit",
              "req %llu initiator %d gpa %#llx bytes %u done_at %llu", (unsigned long long)r.id, r.initiator,
              (unsigned long long)t.get_address(), t.get_data_length(), (unsigned long long)r.done_ns);
  in_service_.emplace(Key{r.done_ns, r.id}, r);
}

void SwapDeviceModule::complete_requests() {
  uint64_t now = now_ns();
  while (!in_service_.empty() && in_service_.begin()->first.first <= now) {
    Request r = in_service_.begin()->second;
    in_service_.erase(in_service_.begin());
    completed_++;
    tlm::tlm_generic_payload &t = *r.trans;
    trace_event(ctx_.trace, now, TRACE_CPU_DEV, t.is_write() ? "swap_write_done" : "swap_read_done",
                "req %llu gpa %#llx latency_ns %llu", (unsigned long long)r.id,
                (unsigned long long)t.get_address(), (unsigned long long)(now - r.arrival_ns));
    t.set_response_status(tlm::TLM_OK_RESPONSE);
    respond(r);
  }
  notify_next(done_event_, in_service_);
}

void SwapDeviceModule::respond(const Request &r) {
  size_t i = static_cast<size_t>(r.initiator);
  if (i >= resp_busy_.size()) {
    resp_busy_.resize(i + 1, false);
    resp_held_.resize(i + 1);
  }
  if (resp_busy_[i]) {
    resp_held_[i].push_back(r);
    return;
  }
  send_begin_resp(r);
}

void SwapDeviceModule::send_begin_resp(const Request &r) {
  tlm::tlm_phase phase = tlm::BEGIN_RESP;
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  tlm::tlm_sync_enum s = socket[r.initiator]->nb_transport_bw(*r.trans, phase, delay);
  // TLM_ACCEPTED: END_RESP comes later on the forward path; TLM_COMPLETED
  // or TLM_UPDATED with END_RESP: the response channel is free again.
  if (s == tlm::TLM_ACCEPTED || (s == tlm::TLM_UPDATED && phase != tlm::END_RESP))
    resp_busy_[static_cast<size_t>(r.initiator)] = true;
}

}  // namespace apfsim
