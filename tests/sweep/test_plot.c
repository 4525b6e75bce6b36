/* test_plot.c — what `apfsim plot` draws: series per combination of the
 * series columns, mean and sample standard deviation per x over seeds,
 * numeric x from values with units, categorical x otherwise, and rows
 * without a number left out and counted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sweep/aggregate.h"

#define OUT SWEEP_TEST_OUT "/plot"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void series_means_and_deviations(void **state) {
  (void)state;
  mkdir(SWEEP_TEST_OUT, 0777);
  mkdir(OUT, 0777);
  write_file(OUT "/a.csv",
             "point,lat,proto,seed,rep,outcome,y\n"
             "0,10us,off,1,1,ok,10\n"
             "1,10us,off,2,1,ok,14\n"
             "2,10us,2020,1,1,ok,20\n"
             "3,10us,2020,2,1,crashed,\n"
             "4,1ms,off,1,1,ok,1\n"
             "5,1ms,off,2,1,ok,3\n"
             "6,1ms,2020,1,1,ok,2.5\n"
             "7,1ms,2020,2,1,ok,3.5\n");
  struct sweep_table t;
  struct diag err;
  if (!sweep_table_read(OUT "/a.csv", &t, &err)) fail_msg("%s", err.msg);
  size_t series = 2;
  struct plot_data d;
  char why[128];
  assert_true(plot_aggregate(&t, 1, 6, &series, 1, &d, why, sizeof why));
  assert_true(d.numeric_x);
  assert_int_equal(d.x_family, QUANTITY_DURATION);
  assert_int_equal(d.skipped_rows, 1);
  assert_int_equal(d.n_series, 2);
  assert_string_equal(d.series[0].label, "proto=off");
  assert_string_equal(d.series[1].label, "proto=2020");
  const struct plot_series *s = &d.series[0];
  assert_int_equal(s->n_points, 2);
  assert_true(s->points[0].x == 10000.0 && s->points[1].x == 1000000.0); /* ns, sorted */
  assert_true(fabs(s->points[0].mean - 12) < 1e-12);
  assert_true(fabs(s->points[0].sd - sqrt(8)) < 1e-12); /* sample sd of 10, 14 */
  assert_int_equal(s->points[0].n, 2);
  s = &d.series[1];
  assert_true(s->points[0].mean == 20 && s->points[0].sd == 0 && s->points[0].n == 1);
  assert_true(fabs(s->points[1].mean - 3) < 1e-12);
  assert_true(d.min_x == 10000.0 && d.max_x == 1000000.0);
  plot_data_free(&d);

  /* Categorical x (not all numbers): in order of first appearance. */
  size_t by_lat = 1;
  assert_true(plot_aggregate(&t, 2, 6, &by_lat, 1, &d, why, sizeof why));
  assert_false(d.numeric_x);
  assert_int_equal(d.n_categories, 2);
  assert_string_equal(d.categories[0], "off");
  assert_string_equal(d.categories[1], "2020");
  plot_data_free(&d);
  sweep_table_free(&t);

  /* A malformed row is reported with its line. */
  write_file(OUT "/b.csv", "point,x,seed\n0,1,1\n1,2\n");
  assert_false(sweep_table_read(OUT "/b.csv", &t, &err));
  assert_string_equal(err.msg, OUT "/b.csv:3: has 2 cells; the header has 3");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(series_means_and_deviations)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
