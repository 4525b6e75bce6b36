/* fuzz_config_check.h — the canonical round-trip oracle shared by the config,
 * override and histogram harnesses (fuzz_config_check.c). */
#ifndef APFSIM_FUZZ_CONFIG_CHECK_H
#define APFSIM_FUZZ_CONFIG_CHECK_H

#include "config/config.h"

/* cfg was loaded under `name`. Writes its canonical XML, loads that back
 * under the same name, and aborts unless the struct is identical (source_path
 * aside) and writing it again gives the same text (config.h: "Loading it back
 * gives an identical struct"). */
void fuzz_config_round_trip(const char *harness, const char *name, const struct sim_config *cfg);

#endif
