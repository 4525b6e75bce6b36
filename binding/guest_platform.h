// guest_platform.h — the machine (sim/machine, C) in SystemC: one SC_THREAD per vCPU
// running it slice by slice in simulated time, a host thread for machine-wide timed
// events, and the swap device (TLM-2.0) serving the machine's page reads and
// write-backs. docs/platform.md describes the timing rules; the logic is all in C.
#ifndef APFSIM_GUEST_PLATFORM_H
#define APFSIM_GUEST_PLATFORM_H

#include <cstdint>
#include <ctime>
#include <memory>
#include <vector>

#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>

#include "run_context.h"
#include "swap_device_module.h"

extern "C" {
#include "machine/machine.h"
}

namespace apfsim {

class GuestPlatform : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<GuestPlatform> socket;

  // Spawns the threads; nothing runs before create() succeeded and sc_start().
  GuestPlatform(sc_core::sc_module_name name, RunContext &ctx);
  ~GuestPlatform() override;

  // Builds the machine (image: machine_open_kernel; must outlive this). False + err;
  // *config_error says whether the configuration was at fault.
  bool create(const guest_image *image, FILE *console, diag *err, bool *config_error);
  machine *get() const { return m_; }
  const SwapDeviceModule &device() const { return device_; }

 private:
  void vcpu_thread(unsigned i);
  void host_thread();
  bool host_time_exceeded();
  bool trace_memory_exceeded(uint64_t now);
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload &trans, tlm::tlm_phase &phase,
                                     sc_core::sc_time &delay);
  static uint64_t submit(void *ctx, machine_io_kind kind, uint64_t gpa, uint32_t bytes, uint64_t at_ps);
  static void kick(void *ctx, unsigned vcpu, uint64_t at_ps);
  static void stop(void *ctx);

  RunContext &ctx_;
  SwapDeviceModule device_;
  machine *m_ = nullptr;
  std::vector<std::unique_ptr<sc_core::sc_event>> wake_;  // per vCPU: it may run again
  sc_core::sc_event host_wake_;  // a vCPU made a machine-wide timed event due earlier
  uint64_t host_waits_until_ps_ = 0;  // the time the host thread waits for (MACHINE_NEVER: none)
  std::vector<std::unique_ptr<tlm::tlm_generic_payload>> payloads_;
  std::vector<tlm::tlm_generic_payload *> free_payloads_;
  timespec started_{};
  uint64_t slices_ = 0;
  uint64_t clock_sim_ps_ = 0;  // simulated time run since the last wall-clock read
};

}  // namespace apfsim
#endif
