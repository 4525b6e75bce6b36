// sim_time.h — simulated time in SystemC: the platform fixes the resolution
// at 1 ps so that integer nanoseconds convert exactly, with no floating point.
#ifndef APFSIM_SIM_TIME_H
#define APFSIM_SIM_TIME_H

#include <cstdint>
#include <systemc>

namespace apfsim {

constexpr uint64_t kPsPerNs = 1000;

// Call before any sc_time is constructed.
void fix_time_resolution();

inline uint64_t now_ns() { return sc_core::sc_time_stamp().value() / kPsPerNs; }
inline sc_core::sc_time ns(uint64_t v) { return sc_core::sc_time::from_value(v * kPsPerNs); }

}  // namespace apfsim
#endif
