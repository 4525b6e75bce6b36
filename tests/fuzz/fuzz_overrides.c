/* fuzz_overrides.c — libFuzzer harness: `--set PATH=VALUE` overrides, applied
 * by config_load_buffer to a fixed base config.
 *
 * Input format (tests/fuzz/corpus/overrides/ has examples):
 *   byte 0        chooses the base config (value % 3: empty <apfsim/>, the
 *                 smoke scenario, or one with every list and an inline
 *                 histogram, like configs/full-example.xml)
 *   bytes 1..     override strings separated by '\n', at most 32; each is
 *                 passed as its own exactly-sized string, as argv would.
 * A NUL byte ends an override early, as it would on a command line.
 *
 * Oracles: as fuzz_config.c (one-line messages; canonical round trip of an
 * accepted config).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "config/config.h"
#include "fuzz_common.h"
#include "fuzz_config_check.h"

#define MAX_OVERRIDES 32

static const char *const bases[] = {
    "<apfsim/>",
    "<apfsim>\n"
    "  <seed>42</seed>\n"
    "  <limits><max-sim-time>5ms</max-sim-time></limits>\n"
    "  <machine><vcpus>2</vcpus></machine>\n"
    "  <swap-device preset=\"nvme-ssd\"/>\n"
    "  <smoke>\n"
    "    <timer-period>100us</timer-period>\n"
    "    <device-requests>20</device-requests>\n"
    "    <request-interval>37us</request-interval>\n"
    "  </smoke>\n"
    "</apfsim>\n",
    "<apfsim>\n"
    "  <seed>0x5eed</seed>\n"
    "  <machine><vcpus>4</vcpus><guest-memory>256MiB</guest-memory></machine>\n"
    "  <guest><kernel>guest/apfsim-guest.elf</kernel><not-present-delivery>pf</not-present-delivery></guest>\n"
    "  <host>\n"
    "    <memory-limit>192MiB</memory-limit>\n"
    "    <evictions>\n"
    "      <evict at=\"2ms\" gpa=\"0x1000000\" size=\"4MiB\"/>\n"
    "      <evict at=\"7.5ms\" gpa=\"0x2000000\" size=\"64KiB\"/>\n"
    "    </evictions>\n"
    "  </host>\n"
    "  <swap-device preset=\"sata-ssd\">\n"
    "    <latency dist=\"empirical\">\n"
    "      <histogram inlined-from=\"sata-ssd-qd1.hist\">\n"
    "        <bin upper=\"60us\" count=\"40\"/>\n"
    "        <bin upper=\"90us\" count=\"2100\"/>\n"
    "      </histogram>\n"
    "    </latency>\n"
    "  </swap-device>\n"
    "  <dax>\n"
    "    <window-gpa>0x40000000</window-gpa>\n"
    "    <window-size>128MiB</window-size>\n"
    "    <file-size>64MiB</file-size>\n"
    "    <page-cache-latency dist=\"uniform\"><min>1us</min><max>3us</max></page-cache-latency>\n"
    "  </dax>\n"
    "  <race>\n"
    "    <nmi trigger=\"at-instruction\"><vcpu>1</vcpu><at-instruction>184467</at-instruction></nmi>\n"
    "    <nmi trigger=\"after-event\"><event>kvm_async_pf_not_present</event><nth>3</nth></nmi>\n"
    "  </race>\n"
    "  <workload>\n"
    "    <process kind=\"memory\"><pattern>zipf</pattern><count>2</count>"
    "<working-set>64MiB</working-set><zipf-s>1.1</zipf-s></process>\n"
    "    <process kind=\"compute\"><compute-per-op>5000</compute-per-op></process>\n"
    "  </workload>\n"
    "</apfsim>\n",
};
#define N_BASES (sizeof bases / sizeof bases[0])

static char name[512];

static void init_once(void) {
  if (name[0]) return;
  /* An override may point a histogram at a file; give it one to find. */
  fuzz_tmpdir_put("my-device.hist", "10us 1\n20us 5\n");
  fuzz_tmpdir_path("base.xml", name, sizeof name);
  atexit(xmlCleanupParser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size == 0) return 0;
  const char *base = bases[data[0] % N_BASES];
  char *ov[MAX_OVERRIDES];
  size_t n = 0;
  const uint8_t *p = data + 1, *end = data + size;
  while (p < end && n < MAX_OVERRIDES) {
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    const uint8_t *stop = nl ? nl : end;
    const uint8_t *nul = memchr(p, '\0', (size_t)(stop - p));
    size_t len = (size_t)((nul ? nul : stop) - p);
    ov[n] = malloc(len + 1);
    if (!ov[n]) break;
    memcpy(ov[n], p, len);
    ov[n][len] = '\0';
    n++;
    p = nl ? nl + 1 : end;
  }
  struct sim_config *cfg = config_new();
  if (cfg) {
    struct diag err;
    if (config_load_buffer(name, base, strlen(base), (const char *const *)ov, n, NULL, cfg, &err))
      fuzz_config_round_trip("overrides", name, cfg);
    else
      fuzz_check_message("overrides", &err);
    free(cfg);
  }
  for (size_t i = 0; i < n; i++) free(ov[i]);
  return 0;
}
