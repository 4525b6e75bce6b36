// smoke.h — the platform smoke scenario (issue 2): no guest yet. A periodic
// timer and a request generator driving the swap device skeleton advance
// SystemC time, so the platform, trace and summary can be checked end to end.
// Replaced as the default scenario once the guest kernel runs.
#ifndef APFSIM_SMOKE_H
#define APFSIM_SMOKE_H

#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>

#include "run_context.h"

namespace apfsim {

class SmokeTimer : public sc_core::sc_module {
 public:
  SmokeTimer(sc_core::sc_module_name name, RunContext &ctx);
  uint64_t ticks() const { return ticks_; }

 private:
  void run();
  RunContext &ctx_;
  uint64_t ticks_ = 0;
};

class SmokeRequestGenerator : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<SmokeRequestGenerator> socket;
  SmokeRequestGenerator(sc_core::sc_module_name name, RunContext &ctx);
  uint64_t issued() const { return issued_; }
  uint64_t completed() const { return completed_; }

 private:
  static constexpr uint32_t kPageBytes = 4096;
  void run();
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload &trans, tlm::tlm_phase &phase,
                                     sc_core::sc_time &delay);
  RunContext &ctx_;
  std::vector<tlm::tlm_generic_payload> payloads_;
  uint64_t issued_ = 0;
  uint64_t completed_ = 0;
};

}  // namespace apfsim
#endif
