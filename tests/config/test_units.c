/* test_units.c — value syntax (units.c) and the format table (fields.c)
 * against configs/apfsim.xsd: every schema leaf is read by the loader, every
 * table entry is in the schema, and every range fits its C field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "config/internal.h"
#include "xsd_paths.h"

struct parse_case {
  enum value_type type;
  unsigned flags;
  const char *text;
  bool ok;
  uint64_t value;
  const char *why;
};

static void parse_cases(void **state) {
  (void)state;
  static const struct parse_case cases[] = {
      {T_DURATION, 0, "250ns", true, 250, NULL},
      {T_DURATION, 0, "10us", true, 10000, NULL},
      {T_DURATION, 0, "5ms", true, 5000000, NULL},
      {T_DURATION, 0, "1s", true, 1000000000, NULL},
      {T_DURATION, 0, "1.5ms", true, 1500000, NULL},
      {T_DURATION, 0, "0.000000001s", true, 1, NULL},
      {T_DURATION, 0, "2.50000us", true, 2500, NULL},
      {T_DURATION, 0, "1000000s", true, 1000000000000000ull, NULL},
      {T_DURATION, 0, "1000000.000000001s", false, 0,
       "'1000000.000000001s' is longer than the 1000000s limit"},
      {T_DURATION, 0, "1.5ns", false, 0, "'1.5ns' is not a whole number of ns"},
      {T_DURATION, 0, "20", false, 0, "'20' has no unit (expected ns, us, ms or s)"},
      {T_DURATION, 0, "20 us", false, 0, "'20 us': no space allowed between number and unit"},
      {T_DURATION, 0, "20min", false, 0,
       "'20min' has unknown unit 'min' (expected ns, us, ms or s)"},
      {T_DURATION, 0, "-5us", false, 0, "'-5us' is negative"},
      {T_DURATION, 0, "us", false, 0, "'us' is not a duration"},
      {T_DURATION, 0, "1.us", false, 0, "'1.us' is not a duration"},
      {T_DURATION, 0, "", false, 0, "missing value"},
      {T_DURATION, 0, "99999999999999999999s", false, 0,
       "'99999999999999999999s' is too large (does not fit in 64 bits)"},
      {T_DURATION, 0, "0.1234567890123456789s", false, 0,
       "'0.1234567890123456789s' has too many decimal places"},
      {T_SIZE, 0, "4096", true, 4096, NULL},
      {T_SIZE, 0, "4KiB", true, 4096, NULL},
      {T_SIZE, 0, "1.5KiB", true, 1536, NULL},
      {T_SIZE, 0, "16EiB", false, 0,
       "'16EiB' has unknown unit 'EiB' (expected B, KiB, MiB, GiB or TiB)"},
      {T_SIZE, 0, "16777216TiB", false, 0, "'16777216TiB' is too large (does not fit in 64 bits)"},
      {T_SIZE, 0, "16777215TiB", true, 16777215ull << 40, NULL},
      {T_SIZE, 0, "18446744073709551615", true, UINT64_MAX, NULL},
      {T_SIZE, 0, "18446744073709551616", false, 0,
       "'18446744073709551616' is too large (does not fit in 64 bits)"},
      {T_SIZE, 0, "0.5B", false, 0, "'0.5B' is not a whole number of bytes"},
      {T_SIZE, F_UNLIMITED, "unlimited", true, 0, NULL},
      {T_SIZE, 0, "unlimited", false, 0, "'unlimited' is not a size"},
      {T_FREQ, 0, "2GHz", true, 2000, NULL},
      {T_FREQ, 0, "2.6GHz", true, 2600, NULL},
      {T_FREQ, 0, "1.5MHz", false, 0, "'1.5MHz' is not a whole number of MHz"},
      {T_FREQ, 0, "2000", false, 0, "'2000' has no unit (expected MHz or GHz)"},
      {T_BANDWIDTH, 0, "500MB/s", true, 500000000, NULL},
      {T_BANDWIDTH, 0, "1MiB/s", true, 1048576, NULL},
      {T_BANDWIDTH, 0, "5Mb/s", false, 0,
       "'5Mb/s' has unknown unit 'Mb/s' (expected B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s)"},
      {T_MILLI, 0, "0.99", true, 990, NULL},
      {T_MILLI, 0, "1", true, 1000, NULL},
      {T_MILLI, 0, "0.0005", false, 0, "'0.0005' has more than 3 decimal places"},
      {T_MILLI, 0, "1e3", false, 0, "'1e3' is not a decimal number"},
      {T_UINT, 0, "42", true, 42, NULL},
      {T_UINT, 0, "0x10", false, 0, "'0x10' is not a decimal number"},
      {T_UINT, F_HEX, "0x10", true, 16, NULL},
      {T_UINT, F_HEX, "0xFFFFFFFFFFFFFFFF", true, UINT64_MAX, NULL},
      {T_UINT, F_HEX, "0x10000000000000000", false, 0,
       "'0x10000000000000000' is too large (does not fit in 64 bits)"},
      {T_UINT, F_HEX, "0x", false, 0, "'0x' is not a number"},
      {T_UINT, F_HEX, "0xZZ", false, 0, "'0xZZ' is not a decimal or 0x-hexadecimal number"},
      {T_UINT, 0, "-1", false, 0, "'-1' is negative"},
      {T_UINT, 0, "two", false, 0, "'two' is not a whole number"},
      {T_UINT, F_UNLIMITED, "unlimited", true, 0, NULL},
      {T_BOOL, 0, "true", true, 1, NULL},
      {T_BOOL, 0, "0", true, 0, NULL},
      {T_BOOL, 0, "yes", false, 0, "'yes' is not a boolean (expected true or false)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct parse_case *c = &cases[i];
    uint64_t v = 0;
    char why[256] = "";
    bool ok = value_parse(c->type, c->flags, NULL, c->text, &v, why, sizeof why);
    if (ok != c->ok)
      fail_msg("'%s': expected %s, got %s (%s)", c->text, c->ok ? "ok" : "error",
               ok ? "ok" : "error", why);
    if (ok && v != c->value)
      fail_msg("'%s': expected %" PRIu64 ", got %" PRIu64, c->text, c->value, v);
    if (!ok && strcmp(why, c->why) != 0)
      fail_msg("'%s':\n  expected: %s\n  got:      %s", c->text, c->why, why);
  }
}

static void format_cases(void **state) {
  (void)state;
  static const struct {
    enum value_type type;
    unsigned flags;
    uint64_t v;
    const char *text;
  } cases[] = {
      {T_DURATION, 0, 0, "0ns"},
      {T_DURATION, 0, 1500, "1500ns"},
      {T_DURATION, 0, 37000, "37us"},
      {T_DURATION, 0, 5000000, "5ms"},
      {T_DURATION, 0, 120000000000ull, "120s"},
      {T_SIZE, 0, 0, "0B"},
      {T_SIZE, 0, 4097, "4097B"},
      {T_SIZE, 0, 1ull << 30, "1GiB"},
      {T_SIZE, 0, 3ull << 40, "3TiB"},
      {T_SIZE, F_UNLIMITED, 0, "unlimited"},
      {T_FREQ, 0, 2000, "2GHz"},
      {T_FREQ, 0, 2600, "2600MHz"},
      {T_BANDWIDTH, 0, 12500000000ull, "12500MB/s"},
      {T_BANDWIDTH, 0, 1048576, "1048576B/s"},
      {T_MILLI, 0, 1000, "1"},
      {T_MILLI, 0, 250, "0.25"},
      {T_MILLI, 0, 1, "0.001"},
      {T_MILLI, 0, 10500, "10.5"},
      {T_UINT, F_HEX, 0xf3, "0xf3"},
      {T_UINT, F_HEX_IN, 0x10, "16"},
      {T_BOOL, 0, 1, "true"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[64];
    value_format(cases[i].type, cases[i].flags, NULL, cases[i].v, buf, sizeof buf);
    assert_string_equal(buf, cases[i].text);
    /* and it reads back to the same number */
    uint64_t v;
    char why[128];
    assert_true(value_parse(cases[i].type, cases[i].flags, NULL, buf, &v, why, sizeof why));
    assert_true(v == cases[i].v);
  }
}

/* ---- the format table */

struct table_walk {
  char paths[256][256];
  bool required[256];
  size_t n;
};

static void check_leaf(const struct field *f, const char *path) {
  if (f->type == T_ENUM) {
    if (f->size != sizeof(int)) fail_msg("%s: enum field is not int-sized", path);
    assert_non_null(f->enums);
    return;
  }
  if (f->type == T_BOOL) {
    if (f->size != sizeof(bool)) fail_msg("%s: bool field has size %zu", path, f->size);
    return;
  }
  if (f->type == T_STRING || f->type == T_HIST_FILE) {
    if (f->size < 2) fail_msg("%s: string capacity %zu", path, f->size);
    return;
  }
  if (f->size != 1 && f->size != 4 && f->size != 8)
    fail_msg("%s: integer of size %zu", path, f->size);
  if (f->min > f->max) fail_msg("%s: min above max", path);
  if (f->size < 8 && f->max >> (8 * f->size))
    fail_msg("%s: max does not fit %zu bytes", path, f->size);
}

static void walk_table(struct table_walk *w, const struct field *fields, const char *path) {
  for (const struct field *f = fields; f->name; f++) {
    char sub[256];
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "/" : "", f->name);
    if (f->node == N_LEAF) {
      check_leaf(f, sub);
      assert_true(w->n < 256);
      snprintf(w->paths[w->n], sizeof w->paths[w->n], "%s", sub);
      w->required[w->n++] = f->flags & F_REQUIRED;
    } else {
      if (f->node == N_LIST) {
        assert_true(f->max_entries > 0);
        assert_non_null(f->children);
      }
      walk_table(w, f->children, sub);
    }
  }
}

static void table_matches_schema(void **state) {
  (void)state;
  static struct table_walk w;
  static struct xsd_leaf leaves[256];
  walk_table(&w, config_root.children, "");
  size_t n = xsd_leaves(config_schema_xsd, leaves, 256);
  assert_true(n > 50);
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < w.n && strcmp(w.paths[j], leaves[i].path) != 0) j++;
    if (j == w.n) fail_msg("schema leaf %s is not in the loader's format table", leaves[i].path);
    if (w.required[j] != leaves[i].required)
      fail_msg("%s: required in the schema and the table differ", leaves[i].path);
  }
  for (size_t j = 0; j < w.n; j++) {
    size_t i = 0;
    while (i < n && strcmp(w.paths[j], leaves[i].path) != 0) i++;
    if (i == n) fail_msg("table entry %s is not in the schema", w.paths[j]);
  }
  assert_int_equal(n, w.n);
}

/* The embedded schema is configs/apfsim.xsd as it was at build time. */
static void embedded_schema_is_the_file(void **state) {
  (void)state;
  char *text = read_text_file(APFSIM_SOURCE_DIR "/configs/apfsim.xsd", NULL);
  assert_non_null(text);
  assert_string_equal(config_schema_xsd, text);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_cases),
      cmocka_unit_test(format_cases),
      cmocka_unit_test(table_matches_schema),
      cmocka_unit_test(embedded_schema_is_the_file),
  };
  int rc = cmocka_run_group_tests_name("config_units", tests, NULL, NULL);
  xmlCleanupParser();
  return rc;
}
