/* test_corpus.c — malformed sweep files. Each file in bad/ must fail to
 * load (spec, base config, and every point's config checked, as `apfsim
 * sweep` does before running anything) with exactly the message recorded
 * for it in bad/expected.txt, one "<file> | <message>" per line; nothing may
 * reach stderr. */
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

#include "sweep/plan.h"

#define BAD_DIR APFSIM_SOURCE_DIR "/tests/sweep/bad"
#define MAX_CASES 128

static bool load_and_check(const char *name, struct diag *err) {
  struct sweep_plan *p;
  if (!sweep_plan_open(name, &p, err)) return false;
  bool ok = sweep_plan_check_points(p, err);
  sweep_plan_free(p);
  return ok;
}

static int check_case(const char *name, const char *expected) {
  struct diag err = {{0}};
  fflush(stderr);
  int saved = dup(2);
  FILE *capture = tmpfile();
  assert_true(saved >= 0 && capture);
  dup2(fileno(capture), 2);
  bool ok = load_and_check(name, &err);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  struct stat st;
  assert_int_equal(fstat(fileno(capture), &st), 0);
  fclose(capture);
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

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strdup(buf);
}

static void bad_sweeps_fail_with_their_message(void **state) {
  (void)state;
  assert_int_equal(chdir(BAD_DIR), 0);
  char *manifest = read_all("expected.txt");
  assert_non_null(manifest);
  static char names[MAX_CASES][128];
  int n = 0, failures = 0;
  for (char *line = manifest, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    if (!line[0] || line[0] == '#') continue;
    const char *bar = strstr(line, " | ");
    if (!bar) fail_msg("expected.txt: no ' | ' in: %s", line);
    assert_true(n < MAX_CASES);
    snprintf(names[n], sizeof names[n], "%.*s", (int)(bar - line), line);
    for (int i = 0; i < n; i++)
      if (!strcmp(names[i], names[n])) fail_msg("expected.txt lists %s twice", names[n]);
    failures += check_case(names[n], bar + 3);
    n++;
  }
  free(manifest);
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
  print_message("%d malformed sweeps checked\n", n);
  assert_true(n >= 10);
  assert_int_equal(failures, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(bad_sweeps_fail_with_their_message)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
