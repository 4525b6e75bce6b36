/* fuzz_sweep.c — libFuzzer harness: a sweep file (configs/sweep.xsd) through
 * sweep_spec_load_buffer, the public entry point of sim/sweep/spec.h.
 *
 * The base config a sweep names is only resolved here, never opened (plan.h
 * loads it), so the harness needs no files.
 *
 * Oracles besides the sanitizers: a rejected file gives a one-line message
 * and no spec; an accepted one is self-consistent (every dimension has
 * values, zipped parameters have as many as their dimension, the point count
 * is within SWEEP_MAX_POINTS) — the runner relies on all of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "fuzz_common.h"
#include "sweep/spec.h"

static bool initialized;

static void check_spec(const struct sweep_spec *s) {
  if (!s) fuzz_fail("sweep", "accepted without a spec");
  if (!s->base_path || !s->base_path[0]) fuzz_fail("sweep", "accepted without a base config");
  if (s->repetitions < 1 || s->repetitions > SWEEP_MAX_REPETITIONS)
    fuzz_fail("sweep", "%u repetitions", s->repetitions);
  for (size_t d = 0; d < s->n_dims; d++) {
    const struct sweep_dim *dim = &s->dims[d];
    if (dim->n_params == 0 || dim->n_values == 0) fuzz_fail("sweep", "dimension %zu is empty", d + 1);
    for (size_t i = 0; i < dim->n_params; i++) {
      const struct sweep_param *p = &dim->params[i];
      if (p->n_values != dim->n_values)
        fuzz_fail("sweep", "dimension %zu: %s has %zu values, the dimension %zu", d + 1, p->path, p->n_values,
                  dim->n_values);
      for (size_t v = 0; v < p->n_values; v++)
        if (!p->values[v]) fuzz_fail("sweep", "%s: value %zu is NULL", p->path, v + 1);
    }
  }
  for (size_t i = 0; i < s->n_sets; i++)
    if (!s->sets[i].path || !s->sets[i].value) fuzz_fail("sweep", "set %zu incomplete", i + 1);
  uint64_t points = sweep_spec_points(s);
  fuzz_note("sweep", "accepted: %llu points", (unsigned long long)points);
  if (points == 0 || points > SWEEP_MAX_POINTS) fuzz_fail("sweep", "%llu points", (unsigned long long)points);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!initialized) {
    initialized = true;
    atexit(xmlCleanupParser);
  }
  struct sweep_spec *spec = NULL;
  struct diag err;
  if (sweep_spec_load_buffer("fuzz/sweep.xml", (const char *)data, size, &spec, &err)) {
    check_spec(spec);
  } else {
    fuzz_check_message("sweep", &err);
    if (spec) fuzz_fail("sweep", "failed but returned a spec");
  }
  sweep_spec_free(spec);
  return 0;
}
