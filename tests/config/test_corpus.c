/* test_corpus.c — malformed and out-of-range configs. Each file in bad/ must
 * fail with exactly the message recorded for it in bad/expected.txt, one
 * "<file> | <message>" per line.
 * Inputs too big to commit (a 10 MB file, a 17 MiB file, 100000 nested
 * elements) are generated into the build directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "config/config.h"
#include "xsd_paths.h"

#define BAD_DIR APFSIM_SOURCE_DIR "/tests/config/bad"

/* Loads `name` (relative to the current directory) expecting failure with
 * `expected`; prints and counts a mismatch instead of stopping, so one run
 * shows every broken case. */
static int check_case(const char *name, const char *expected) {
  struct sim_config *cfg = config_new();
  struct diag err = {{0}};
  /* Nothing may reach stderr: the message is the caller's to print. */
  fflush(stderr);
  int saved = dup(2);
  FILE *capture = tmpfile();
  assert_true(saved >= 0 && capture);
  dup2(fileno(capture), 2);
  bool ok = config_load(name, NULL, 0, NULL, cfg, &err);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  struct stat st;
  assert_int_equal(fstat(fileno(capture), &st), 0);
  fclose(capture);
  free(cfg);
  if (st.st_size != 0) {
    print_error("%s: loading wrote %lld bytes to stderr\n", name, (long long)st.st_size);
    return 1;
  }
  if (ok) {
    print_error("%s: loaded, expected: %s\n", name, expected);
    return 1;
  }
  if (strcmp(err.msg, expected) != 0) {
    print_error("%s:\n  expected: %s\n  got:      %s\n", name, expected, err.msg);
    return 1;
  }
  return 0;
}

static void committed_corpus(void **state) {
  (void)state;
  assert_int_equal(chdir(BAD_DIR), 0);
  char *manifest = read_text_file("expected.txt", NULL);
  assert_non_null(manifest);
  char names[128][128];
  int n = 0, failures = 0;
  for (char *line = manifest, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    if (!line[0] || line[0] == '#') continue;
    const char *bar = strstr(line, " | ");
    if (!bar) fail_msg("expected.txt: no ' | ' in: %s", line);
    assert_true(n < 128);
    snprintf(names[n], sizeof names[n], "%.*s", (int)(bar - line), line);
    for (int i = 0; i < n; i++)
      if (!strcmp(names[i], names[n])) fail_msg("expected.txt lists %s twice", names[n]);
    failures += check_case(names[n], bar + 3);
    n++;
  }
  free(manifest);
  /* Every config in bad/ has an expectation. */
  DIR *dir = opendir(".");
  assert_non_null(dir);
  for (struct dirent *e; (e = readdir(dir));) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 4, ".xml") != 0) continue;
    int i = 0;
    while (i < n && strcmp(names[i], e->d_name) != 0) i++;
    if (i == n) {
      print_error("%s has no line in expected.txt\n", e->d_name);
      failures++;
    }
  }
  closedir(dir);
  print_message("%d malformed configs checked\n", n);
  assert_true(n >= 25);
  assert_int_equal(failures, 0);
}

static void write_file(const char *name, const char *head, char fill, size_t count,
                       const char *tail) {
  FILE *f = fopen(name, "wb");
  assert_non_null(f);
  fputs(head, f);
  for (size_t i = 0; i < count; i++) fputc(fill, f);
  fputs(tail, f);
  assert_int_equal(fclose(f), 0);
}

static void generated_inputs(void **state) {
  (void)state;
  assert_int_equal(chdir(CONFIG_TEST_OUT), 0);
  int failures = 0;

  /* 10 MB: a well-formed file whose one value is absurdly long. */
  write_file("bad-10mb.xml", "<apfsim><guest><kernel>", 'k', 10u * 1024 * 1024,
             "</kernel></guest></apfsim>\n");
  failures += check_case("bad-10mb.xml", "bad-10mb.xml:1: guest/kernel: value is 10485760 bytes "
                                         "long; at most 4095 bytes allowed");

  /* Over the 16 MiB limit: refused before parsing (sparse, so cheap). */
  FILE *f = fopen("bad-17mib.xml", "wb");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), 17 * 1024 * 1024), 0);
  fclose(f);
  failures += check_case("bad-17mib.xml", "bad-17mib.xml: file is 17825792 bytes, more than the "
                                          "16 MiB a config may have");

  /* 100000 nested elements: libxml2's depth limit, not a stack overflow. */
  f = fopen("bad-deep.xml", "wb");
  assert_non_null(f);
  fputs("<apfsim>\n", f);
  for (int i = 0; i < 100000; i++) fputs("<machine>", f);
  for (int i = 0; i < 100000; i++) fputs("</machine>", f);
  fputs("\n</apfsim>\n", f);
  assert_int_equal(fclose(f), 0);
  failures +=
      check_case("bad-deep.xml", "bad-deep.xml:2: xml: elements nested more than 256 levels deep");

  /* 8 MB of repeated entries: more <process> than the format allows. */
  write_file("bad-many.xml", "<apfsim><workload>", ' ', 0, "");
  f = fopen("bad-many.xml", "ab");
  assert_non_null(f);
  for (int i = 0; i < 300000; i++) fputs("<process kind='compute'/>\n", f);
  fputs("</workload></apfsim>\n", f);
  assert_int_equal(fclose(f), 0);
  failures += check_case("bad-many.xml",
                         "bad-many.xml:65: workload/process[65]: more than 64 <process> entries");

  remove("bad-10mb.xml");
  remove("bad-17mib.xml");
  remove("bad-deep.xml");
  remove("bad-many.xml");
  assert_int_equal(failures, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(committed_corpus),
      cmocka_unit_test(generated_inputs),
  };
  int rc = cmocka_run_group_tests_name("config_bad_corpus", tests, NULL, NULL);
  xmlCleanupParser();
  return rc;
}
