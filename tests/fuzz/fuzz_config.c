/* fuzz_config.c — libFuzzer harness: a config file (XML, XSD validation,
 * semantic checks) through config_load_buffer.
 *
 * The input is the file's bytes. It is loaded as "<scratch>/fuzz.xml", so a
 * relative <histogram file="..."> finds the few histogram files this harness
 * puts next to it (the names the seed corpus uses), and the histogram reader
 * is reached from the config as in real use.
 *
 * Oracles besides the sanitizers:
 *  - a rejected file gives a one-line message (fuzz_check_message);
 *  - an accepted one survives the canonical round trip config.h promises:
 *    config_to_xml, loaded back, gives a struct identical byte for byte
 *    (source_path aside), and writing that again gives the same text. A trace
 *    header carries exactly this text, so replay depends on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "config/config.h"
#include "fuzz_common.h"
#include "fuzz_config_check.h"

/* Histogram files the corpus refers to (tests/config/data, tests/config/bad,
 * configs/full-example.xml's comment). */
static void put_histograms(void) {
  fuzz_tmpdir_put("nvme-qd1.hist", "# 4 KiB random reads at queue depth 1\n"
                                   "50us   120\n80us   3100\n\n120us  610   # tail\n1ms    4\n");
  fuzz_tmpdir_put("my-device.hist", "1ns 1\n");
  fuzz_tmpdir_put("malformed.hist", "# 4 KiB reads\n50us 120\n80us lots\n");
  fuzz_tmpdir_put("unordered.hist", "50us 120\n80us 3100\n70us 12\n");
}

static char name[512];

static void init_once(void) {
  if (name[0]) return;
  put_histograms();
  fuzz_tmpdir_path("fuzz.xml", name, sizeof name);
  /* libxml2 keeps parser-wide state; release it at exit so LeakSanitizer
   * reports only real leaks. */
  atexit(xmlCleanupParser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  struct sim_config *cfg = config_new();
  if (!cfg) return 0;
  struct diag err;
  if (config_load_buffer(name, (const char *)data, size, NULL, 0, NULL, cfg, &err))
    fuzz_config_round_trip("config", name, cfg);
  else
    fuzz_check_message("config", &err);
  free(cfg);
  return 0;
}
