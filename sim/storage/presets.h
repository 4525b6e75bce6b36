/* presets.h — the swap device classes (HDD, SATA SSD, NVMe SSD, zswap, RDMA
 * far memory) as numbers in config units, so the config loader can apply a
 * preset and everything else can quote it. docs/storage.md gives the source
 * and the derivation of every figure.
 *
 * This file depends only on the types of config/config.h, and presets.c on
 * nothing else, so apfsim_config can link it (library apfsim_storage_presets)
 * without a dependency cycle.
 *
 * Not for: timing (swap_device.h) or reading XML (sim/config). */
#ifndef APFSIM_STORAGE_PRESETS_H
#define APFSIM_STORAGE_PRESETS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

struct swap_device_preset {
  enum device_preset id;
  const char *name; /* as written in the config: "nvme-ssd" */
  /* What the preset sets (struct swap_device_config fields): */
  enum latency_dist dist; /* LATENCY_FIXED or LATENCY_LOGNORMAL */
  uint64_t value_ns;      /* fixed: the latency; lognormal: the median */
  uint32_t sigma_milli;   /* lognormal: sigma of ln(latency), x1000 */
  uint32_t channels;
  uint64_t bandwidth_bytes_per_s; /* 0 = unlimited */
  /* What follows from it, as stated in docs/storage.md and checked by
   * tests/storage: the mean latency of one 4 KiB read on an idle device
   * (access + transfer), and the bound on 4 KiB reads per second,
   * min(channels / mean, bandwidth / 4096) (the model saturates at 93-100 %
   * of it; docs/storage.md). */
  uint64_t mean_4k_ns;
  uint64_t max_4k_per_s;
  const char *source; /* one line; the full citation is in docs/storage.md */
};

/* The preset, or NULL for a value outside enum device_preset. */
const struct swap_device_preset *storage_preset(enum device_preset id);

/* By config name ("hdd", "sata-ssd", "nvme-ssd", "zswap", "rdma", "custom"),
 * or NULL. */
const struct swap_device_preset *storage_preset_by_name(const char *name);

/* Sets swap->preset, the latency distribution (dist and the fields it uses:
 * fixed_ns, or median_ns and sigma_milli), channels and bandwidth; leaves the
 * other latency fields as they are. False (nothing changed) for an unknown
 * id. */
bool storage_preset_apply(enum device_preset id, struct swap_device_config *swap);

#endif
