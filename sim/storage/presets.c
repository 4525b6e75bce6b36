/* presets.c — the device class table (see presets.h; derivations in
 * docs/storage.md, "Device presets"). Access latencies exclude the 4 KiB
 * transfer, which the model adds from the bandwidth: a datasheet's
 * queue-depth-1 latency = access + 4096 B / bandwidth. */
#include "storage/presets.h"

#include <stddef.h>
#include <string.h>

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)

static const struct swap_device_preset presets[] = {
    {DEVICE_PRESET_CUSTOM, "custom", LATENCY_FIXED, 100 * US, 0, 1, 0, 100 * US, 10000,
     "neutral starting point for hand-set values"},
    /* 8.2 ms average read seek + 4.17 ms average rotational latency (7200 rpm) = 12.37 ms. */
    {DEVICE_PRESET_HDD, "hdd", LATENCY_LOGNORMAL, 11800 * US, 300, 1, 150000000, 12370436, 81,
     "HGST Ultrastar 7K4000 spec (seek 8.2 ms read, 7200 rpm); sigma and 150 MB/s assumed"},
    /* QD1 10k IOPS = 100 us; QD32 97k IOPS -> ~10 requests in service. */
    {DEVICE_PRESET_SATA_SSD, "sata-ssd", LATENCY_LOGNORMAL, 92 * US, 100, 10, 550000000, 99909,
     100091, "Samsung 850/860 EVO spec (QD1 10k IOPS, QD32 97k IOPS, 550 MB/s read)"},
    /* QD1 19k IOPS = 52.6 us; QD32 600k IOPS -> ~32 requests in service. */
    {DEVICE_PRESET_NVME_SSD, "nvme-ssd", LATENCY_LOGNORMAL, 51 * US, 100, 32, 3500000000, 52427,
     610377, "Samsung 970 EVO Plus 1 TB spec (QD1 19k IOPS, QD32 600k IOPS, 3500 MB/s read)"},
    {DEVICE_PRESET_ZSWAP, "zswap", LATENCY_LOGNORMAL, 6 * US, 200, 4, 0, 6121, 653466,
     "Lagar-Cavilla et al., ASPLOS 2019: zswap (lzo) far memory at ~6 us; 4 CPUs assumed"},
    {DEVICE_PRESET_RDMA, "rdma", LATENCY_LOGNORMAL, 4 * US, 250, 16, 12500000000, 4455, 3051758,
     "assumption: single-digit-us RDMA paging (Gu et al., NSDI 2017) on a 100 Gb/s link"},
};

#define N_PRESETS (sizeof presets / sizeof presets[0])

const struct swap_device_preset *storage_preset(enum device_preset id) {
  for (size_t i = 0; i < N_PRESETS; i++)
    if (presets[i].id == id) return &presets[i];
  return NULL;
}

const struct swap_device_preset *storage_preset_by_name(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < N_PRESETS; i++)
    if (strcmp(presets[i].name, name) == 0) return &presets[i];
  return NULL;
}

bool storage_preset_apply(enum device_preset id, struct swap_device_config *swap) {
  const struct swap_device_preset *p = storage_preset(id);
  if (!p) return false;
  swap->preset = id;
  swap->latency.dist = p->dist;
  if (p->dist == LATENCY_FIXED) {
    swap->latency.fixed_ns = p->value_ns;
  } else {
    swap->latency.median_ns = p->value_ns;
    swap->latency.sigma_milli = p->sigma_milli;
  }
  swap->channels = p->channels;
  swap->bandwidth_bytes_per_s = p->bandwidth_bytes_per_s;
  return true;
}
