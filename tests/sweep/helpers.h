/* helpers.h — shared by the sweep tests: a spec built from text whose base
 * is the smoke scenario, and the values of a parameter joined for compact
 * comparisons. */
#ifndef APFSIM_TEST_SWEEP_HELPERS_H
#define APFSIM_TEST_SWEEP_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep/plan.h"
#include "sweep/spec.h"

#define SMOKE APFSIM_SOURCE_DIR "/configs/smoke.xml"

/* "<sweep><base>SMOKE</base>" + body + "</sweep>", loaded as "test.xml". */
static inline struct sweep_spec *spec_from(const char *body, struct diag *err) {
  char xml[16384];
  snprintf(xml, sizeof xml, "<sweep><base>%s</base>%s</sweep>", SMOKE, body);
  struct sweep_spec *s = NULL;
  if (!sweep_spec_load_buffer("test.xml", xml, strlen(xml), &s, err)) return NULL;
  return s;
}

static inline struct sweep_plan *plan_from(const char *body, struct diag *err) {
  struct sweep_spec *s = spec_from(body, err);
  struct sweep_plan *p = NULL;
  if (s && !sweep_plan_from_spec(s, &p, err)) return NULL;
  return p;
}

/* The values of a parameter, space separated, in a static buffer. */
static inline const char *joined(const struct sweep_param *p) {
  static char buf[4096];
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < p->n_values && used < sizeof buf; i++)
    used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", i ? " " : "", p->values[i]);
  return buf;
}

#endif
