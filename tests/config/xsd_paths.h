/* xsd_paths.h — the value paths ("machine/vcpus", "race/nmi/@trigger") a
 * schema written in configs/apfsim.xsd's style declares, for tests that keep
 * the schema, the loader's format table and docs/config.md in step. */
#ifndef APFSIM_TEST_XSD_PATHS_H
#define APFSIM_TEST_XSD_PATHS_H

#include <stdbool.h>
#include <stddef.h>

struct xsd_leaf {
  char path[256];
  bool required; /* use="required" attribute */
};

/* Fills out[] with every leaf element and attribute below the root element,
 * in document order; returns how many (0 when the text is not such a schema). */
size_t xsd_leaves(const char *xsd_text, struct xsd_leaf *out, size_t max);

/* Reads a whole file into a NUL-terminated heap buffer (NULL on error). */
char *read_text_file(const char *path, size_t *len);

#endif
