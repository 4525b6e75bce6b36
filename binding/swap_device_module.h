// swap_device_module.h — the host swap device as a SystemC module behind a
// TLM-2.0 target socket, so a researcher can plug in another SystemC model.
//
// Protocol (TLM-2.0 base protocol, non-blocking): an initiator calls
// nb_transport_fw with BEGIN_REQ (TLM_READ_COMMAND or TLM_WRITE_COMMAND;
// address = guest-physical address, for the trace only; length = bytes
// moved); the device answers TLM_UPDATED / END_REQ at once, so the next
// request may follow immediately. The request reaches the device at
// sc_time_stamp() + the annotated delay; at its completion time the device
// calls nb_transport_bw with BEGIN_RESP (TLM_OK_RESPONSE). The initiator
// returns TLM_COMPLETED, or TLM_ACCEPTED and later sends END_RESP: until it
// does, further responses to that initiator wait (the base protocol's
// response exclusion rule). Other commands get TLM_COMMAND_ERROR_RESPONSE
// when they arrive. Any number of initiators may bind to the socket; each
// gets its own responses.
//
// Timing comes from the C model (sim/storage/swap_device.h); requests enter
// it in arrival order (equal times: call order), so results do not depend on
// which initiator ran first in a SystemC evaluation phase beyond that order.
// Trace events (source "dev"), one pair per request:
//   swap_read_submit req N initiator I gpa 0x… bytes B done_at T
//   swap_read_done   req N gpa 0x… latency_ns L
// (swap_write_* for writes; done_at stays the last field of *_submit).
//
// Completion time at submission (SwapTiming extension): an initiator that must
// know when its request completes as soon as it sends it — the machine, so that
// an APF page-ready bounds running vCPUs' horizons — attaches a SwapTiming to
// the payload. Such a request enters the C model at once, in call order (as the
// C model's own callers do), instead of at its arrival, and the device writes
// its completion time into the extension before nb_transport_fw returns. The
// response still comes at that time through BEGIN_RESP.
#ifndef APFSIM_SWAP_DEVICE_MODULE_H
#define APFSIM_SWAP_DEVICE_MODULE_H

#include <cstdint>
#include <deque>
#include <map>
#include <utility>
#include <vector>

#include <systemc>
#include <tlm>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include "run_context.h"

extern "C" {
#include "storage/latency.h"
#include "storage/swap_device.h"
}

namespace apfsim {

// Ignorable extension (TLM-2.0 §14.2): a target that does not know it serves
// the request as usual, and done_ns stays kUnknown.
struct SwapTiming : tlm::tlm_extension<SwapTiming> {
  static constexpr uint64_t kUnknown = UINT64_MAX;
  uint64_t done_ns = kUnknown;
  tlm::tlm_extension_base *clone() const override { return new SwapTiming(*this); }
  void copy_from(const tlm::tlm_extension_base &e) override {
    done_ns = static_cast<const SwapTiming &>(e).done_ns;
  }
};

class SwapDeviceModule : public sc_core::sc_module {
 public:
  tlm_utils::multi_passthrough_target_socket<SwapDeviceModule> socket;

  // The run's swap device: ctx.cfg.swap, latency stream "swap-device".
  SwapDeviceModule(sc_core::sc_module_name name, RunContext &ctx);
  // Another device (e.g. a second swap area, or a test): `cfg` must outlive
  // the module; draws come from stream `stream_name` of the run's seed.
  SwapDeviceModule(sc_core::sc_module_name name, RunContext &ctx, const swap_device_config &cfg,
                   const char *stream_name);

  const swap_device_stats &stats() const { return model_.stats; }
  // Percentiles, means and utilisation up to the current simulated time.
  swap_device_summary summary() const;
  uint64_t completed() const { return completed_; }
  uint64_t reads() const { return reads_; }
  uint64_t writes() const { return writes_; }

 private:
  struct Request {
    tlm::tlm_generic_payload *trans;
    int initiator;
    uint64_t id;
    uint64_t arrival_ns;
    uint64_t done_ns;
  };
  using Key = std::pair<uint64_t, uint64_t>;  // (time ns, request id): FIFO at equal times

  tlm::tlm_sync_enum nb_transport_fw(int initiator, tlm::tlm_generic_payload &trans,
                                     tlm::tlm_phase &phase, sc_core::sc_time &delay);
  void accept_arrivals();   // SC_METHOD on arrival_event_
  void start(Request &r);   // into the C model: done_ns decided, traced, in service
  void complete_requests();  // SC_METHOD on done_event_
  void respond(const Request &r);
  void send_begin_resp(const Request &r);
  static void notify_next(sc_core::sc_event &ev, const std::map<Key, Request> &queue);

  RunContext &ctx_;
  latency_source latency_;
  swap_device model_;
  std::map<Key, Request> arriving_;  // submitted, not yet at the device
  std::map<Key, Request> in_service_;  // in the device, keyed by completion
  sc_core::sc_event arrival_event_;
  sc_core::sc_event done_event_;
  // Per initiator: waiting for its END_RESP, and responses held until then.
  std::vector<bool> resp_busy_;
  std::vector<std::deque<Request>> resp_held_;
  uint64_t next_id_ = 0;
  uint64_t completed_ = 0;
  uint64_t reads_ = 0;
  uint64_t writes_ = 0;
};

}  // namespace apfsim
#endif
