/* test_docs.c — docs/config.md and configs/apfsim.xsd stay in step: every
 * leaf element and attribute of the schema has exactly one row in the
 * document's parameter tables, every row names something in the schema,
 * "required" rows are exactly the schema's required attributes, timing and
 * device rows say where their numbers come from, and each documented default
 * is the value config_to_xml() writes for it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "config/config.h"
#include "xsd_paths.h"

#define MAX_ROWS 256

struct row {
  char path[256];
  char type[512];
  char unit[512];
  char deflt[512];
  char source[512];
  int line;
};

static struct row rows[MAX_ROWS];
static size_t n_rows;
static struct xsd_leaf leaves[MAX_ROWS];
static size_t n_leaves;

static void trim_cell(const char *s, size_t n, char *out, size_t len) {
  while (n > 0 && (*s == ' ')) s++, n--;
  while (n > 0 && s[n - 1] == ' ') n--;
  snprintf(out, len, "%.*s", (int)n, s);
}

/* Parameter rows are the table lines under "## Parameters" whose first cell
 * is a `path`. Columns: Path | Type | Unit | Default | Range | Meaning | Source */
static int load_docs(void **state) {
  (void)state;
  char *doc = read_text_file(APFSIM_SOURCE_DIR "/docs/config.md", NULL);
  if (!doc) return -1;
  bool in_params = false;
  int line_no = 0;
  for (char *line = doc, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    line_no++;
    if (!strncmp(line, "## ", 3)) in_params = !strcmp(line, "## Parameters");
    if (!in_params || strncmp(line, "| `", 3) != 0) continue;
    if (n_rows == MAX_ROWS) break;
    struct row *r = &rows[n_rows++];
    r->line = line_no;
    char cells[8][512];
    int n = 0;
    const char *p = line + 1;
    while (n < 8) {
      const char *bar = strchr(p, '|');
      if (!bar) break;
      trim_cell(p, (size_t)(bar - p), cells[n++], sizeof cells[0]);
      p = bar + 1;
    }
    if (n != 7) {
      snprintf(r->path, sizeof r->path, "(row with %d cells)", n);
      continue;
    }
    trim_cell(cells[0] + 1, strlen(cells[0]) - 2, r->path, sizeof r->path); /* strip `` */
    snprintf(r->type, sizeof r->type, "%s", cells[1]);
    snprintf(r->unit, sizeof r->unit, "%s", cells[2]);
    snprintf(r->deflt, sizeof r->deflt, "%s", cells[3]);
    snprintf(r->source, sizeof r->source, "%s", cells[6]);
  }
  free(doc);
  char *xsd = read_text_file(APFSIM_SOURCE_DIR "/configs/apfsim.xsd", NULL);
  if (!xsd) return -1;
  n_leaves = xsd_leaves(xsd, leaves, MAX_ROWS);
  free(xsd);
  return n_rows > 0 && n_leaves > 0 ? 0 : -1;
}

static const struct row *row_for(const char *path) {
  for (size_t i = 0; i < n_rows; i++)
    if (!strcmp(rows[i].path, path)) return &rows[i];
  return NULL;
}

static void every_schema_leaf_has_one_row(void **state) {
  (void)state;
  for (size_t i = 0; i < n_leaves; i++) {
    int count = 0;
    for (size_t j = 0; j < n_rows; j++) count += !strcmp(rows[j].path, leaves[i].path);
    if (count != 1)
      fail_msg("docs/config.md: %d rows for schema leaf `%s` (want 1)", count, leaves[i].path);
  }
}

static void every_row_is_in_the_schema(void **state) {
  (void)state;
  for (size_t j = 0; j < n_rows; j++) {
    size_t i = 0;
    while (i < n_leaves && strcmp(rows[j].path, leaves[i].path) != 0) i++;
    if (i == n_leaves)
      fail_msg("docs/config.md:%d: `%s` is not in configs/apfsim.xsd", rows[j].line, rows[j].path);
    if (!rows[j].type[0] || !rows[j].unit[0])
      fail_msg("docs/config.md:%d: `%s` needs a type and a unit", rows[j].line, rows[j].path);
    if ((!strcmp(rows[j].deflt, "required")) != leaves[i].required)
      fail_msg("docs/config.md:%d: `%s`: default 'required' must match use=\"required\"",
               rows[j].line, rows[j].path);
  }
}

/* Cycle costs and device figures must say where they come from. */
static void timing_rows_name_a_source(void **state) {
  (void)state;
  for (size_t j = 0; j < n_rows; j++) {
    const char *p = rows[j].path;
    bool timing =
        !strncmp(p, "costs/", 6) ||
        ((!strncmp(p, "swap-device/", 12) || !strncmp(p, "dax/page-cache-latency/", 23)) &&
         !strstr(p, "histogram"));
    if (timing && (!rows[j].source[0] || !strcmp(rows[j].source, "—")))
      fail_msg("docs/config.md:%d: `%s` needs a source (or 'assumption')", rows[j].line, p);
  }
}

/* The text at `path` in a canonical document ("" when it is left out). */
static char *canonical_value(xmlDoc *doc, const char *path) {
  char xpath[300];
  snprintf(xpath, sizeof xpath, "/apfsim/%s", path);
  xmlXPathContext *ctx = xmlXPathNewContext(doc);
  xmlXPathObject *obj = xmlXPathEvalExpression((const xmlChar *)xpath, ctx);
  char *out = NULL;
  if (obj && obj->nodesetval && obj->nodesetval->nodeNr > 0) {
    xmlChar *v = xmlNodeGetContent(obj->nodesetval->nodeTab[0]);
    out = strdup(v ? (const char *)v : "");
    xmlFree(v);
  } else {
    out = strdup("");
  }
  xmlXPathFreeObject(obj);
  xmlXPathFreeContext(ctx);
  return out;
}

static void documented_defaults_are_the_real_ones(void **state) {
  (void)state;
  /* One entry of each repeated element, so their per-entry defaults show. */
  static const char xml[] =
      "<apfsim>"
      "<host><evictions><evict at='0ns' gpa='0' size='4KiB'/></evictions></host>"
      "<race><nmi trigger='at-instruction'/></race>"
      "<workload><process kind='memory'/></workload>"
      "</apfsim>";
  struct sim_config *cfg = config_new();
  struct diag err;
  if (!config_load_buffer("defaults.xml", xml, strlen(xml), NULL, 0, NULL, cfg, &err))
    fail_msg("%s", err.msg);
  char *canonical = config_to_xml(cfg);
  xmlDoc *doc = xmlReadMemory(canonical, (int)strlen(canonical), "canonical.xml", NULL, 0);
  assert_non_null(doc);
  for (size_t j = 0; j < n_rows; j++) {
    const struct row *r = &rows[j];
    if (!strcmp(r->deflt, "required")) continue;
    if (strstr(r->path, "histogram/")) continue; /* no histogram by default */
    char want[128];
    if (!strcmp(r->deflt, "(empty)"))
      want[0] = '\0';
    else if (r->deflt[0] == '`' && strlen(r->deflt) >= 2)
      snprintf(want, sizeof want, "%.*s", (int)strlen(r->deflt) - 2, r->deflt + 1);
    else
      fail_msg("docs/config.md:%d: default of `%s` must be `value`, (empty) or required", r->line,
               r->path);
    char *got = canonical_value(doc, r->path);
    if (strcmp(got, want) != 0)
      fail_msg("docs/config.md:%d: `%s` default documented as '%s', config_defaults gives '%s'",
               r->line, r->path, want, got);
    free(got);
  }
  xmlFreeDoc(doc);
  free(canonical);
  free(cfg);
}

static void rows_are_unique_and_known(void **state) {
  (void)state;
  assert_non_null(row_for("machine/vcpus"));
  assert_non_null(row_for("swap-device/latency/@dist"));
  assert_true(n_rows == n_leaves);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_schema_leaf_has_one_row),
      cmocka_unit_test(every_row_is_in_the_schema),
      cmocka_unit_test(timing_rows_name_a_source),
      cmocka_unit_test(documented_defaults_are_the_real_ones),
      cmocka_unit_test(rows_are_unique_and_known),
  };
  int rc = cmocka_run_group_tests_name("config_docs", tests, load_docs, NULL);
  xmlCleanupParser();
  return rc;
}
