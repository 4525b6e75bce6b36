/* time.c — guest time. The only clock is rdtsc, which the simulator answers from simulated
 * time (TSC = 0 at time 0 on every vCPU, counting at boot_info.tsc_khz); no division wider
 * than 64 bits, so no libgcc helpers. */
#include "kernel.h"
#include "x86.h"

uint64_t tsc_to_ns(uint64_t tsc) {
  uint64_t khz = boot_info.tsc_khz;
  return tsc / khz * 1000000 + tsc % khz * 1000000 / khz;
}

uint64_t ns_to_tsc(uint64_t ns) { return ns / 1000000 * boot_info.tsc_khz + ns % 1000000 * boot_info.tsc_khz / 1000000; }

uint64_t ktime_ns(void) { return tsc_to_ns(rdtsc()); }
