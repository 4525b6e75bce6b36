/* fuzz_config_check.c — see fuzz_config_check.h. */
#include "fuzz_config_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

/* Offset of the first differing byte, for the report. */
static size_t first_difference(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  size_t i = 0;
  while (i < n && x[i] == y[i]) i++;
  return i;
}

void fuzz_config_round_trip(const char *harness, const char *name, const struct sim_config *cfg) {
  fuzz_note(harness, "accepted");
  char *xml = config_to_xml(cfg);
  if (!xml) fuzz_fail(harness, "config_to_xml returned NULL for a loaded config");
  struct sim_config *again = config_new(), *a = malloc(sizeof *a);
  if (!again || !a) fuzz_fail(harness, "out of memory");
  struct diag err;
  if (!config_load_buffer(name, xml, strlen(xml), NULL, 0, NULL, again, &err))
    fuzz_fail(harness, "the canonical form does not load: %s\n%s", err.msg, xml);
  memcpy(a, cfg, sizeof *a);
  /* source_path is the name both were loaded under; copy it so the compare
   * covers everything else, padding included. */
  memcpy(a->source_path, again->source_path, sizeof a->source_path);
  if (memcmp(a, again, sizeof *a) != 0)
    fuzz_fail(harness, "canonical form loads back different (struct offset %zu):\n%s",
              first_difference(a, again, sizeof *a), xml);
  char *xml2 = config_to_xml(again);
  if (!xml2 || strcmp(xml, xml2) != 0)
    fuzz_fail(harness, "canonical form is not a fixed point:\n%s\n----\n%s", xml, xml2 ? xml2 : "(null)");
  free(xml2);
  free(a);
  free(again);
  free(xml);
}
