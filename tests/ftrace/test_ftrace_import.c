/* test_ftrace_import.c — whole files: pairing starts with completions (by
 * gva and by token, first-in first-out), counting what does not pair or
 * parse, refusing input where nothing parses, and the histogram and
 * schedule outputs — the histogram loading through config_load as an
 * empirical swap-device latency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "ftrace/ftrace.h"

struct scratch {
  char dir[64];
  char path[256];
};

static int setup(void **state) {
  struct scratch *s = calloc(1, sizeof *s);
  if (!s) return -1;
  strcpy(s->dir, "/tmp/apfsim-ftrace-test-XXXXXX");
  if (!mkdtemp(s->dir)) return -1;
  *state = s;
  return 0;
}

static int teardown(void **state) {
  struct scratch *s = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
  if (system(cmd) != 0) return -1;
  free(s);
  return 0;
}

static const char *file_with(struct scratch *s, const char *name, const char *text) {
  snprintf(s->path, sizeof s->path, "%s/%s", s->dir, name);
  FILE *f = fopen(s->path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return s->path;
}

/* Line numbers in comments: what the import must report. */
static const char mixed[] =
    "# tracer: nop\n"                                                                      /* 1 */
    "cpus=4\n"                                                                             /* 2 */
    " qemu-kvm-100 [001] d..1 10.000000: kvm_try_async_get_page: gva = 0x1000, gfn = 0x1\n" /* 3 */
    " qemu-kvm-100 [001] d..1 10.000001: kvm_async_pf_not_present: token 0x1000 gva 0x1000\n"
    " qemu-kvm-100 [001] d..1 10.000010: kvm_try_async_get_page: gva = 0x2000, gfn = 0x2\n"
    " qemu-kvm-100 [001] 10.000011: kvm_async_pf_not_present: token 0x2000 gva 0x2000\n" /* 6 */
    "garbage line here\n"                                                                 /* 7 */
    " kworker/1:1-50 [002] .... 10.000050: kvm_async_pf_completed: gva 0x1000 address 0x7f00\n"
    " qemu-kvm-100 [001] d..1 10.000060: kvm_async_pf_ready: token 0x1000 gva 0x1000\n"
    /* A second fault on the same gva: pairs with the second completion. */
    " qemu-kvm-100 [001] d..1 10.000070: kvm_try_async_get_page: gva = 0x1000, gfn = 0x1\n"
    " kworker/1:1-50 [002] .... 10.000100: kvm_async_pf_completed: gva 0x2000 address 0x7f01\n"
    " kworker/1:1-50 [002] 10.000300: kvm_async_pf_completed: gva 0x1000 address 0x7f00\n"
    " qemu-kvm-100 [001] d..1 10.000400: kvm_async_pf_ready: token 0xffffffff gva 0\n" /* 13 */
    " qemu-kvm-100 [001] d..1 10.000500: kvm_async_pf_ready: token 0x9000 gva 0x9000\n"
    " kworker/1:1-50 [002] .... 10.000600: kvm_async_pf_completed: gva 0x5000 address 0x7f05\n"
    " qemu-kvm-100 [001] d..1 10.000700: kvm_try_async_get_page: gva = 0x6000, gfn = 0x6\n"
    " qemu-kvm-100 [001] d..1 10.000800: kvm_exit: vcpu 0 reason EPT_VIOLATION rip 0x4005d0 "
    "info1 0x0000000000000181 info2 0x0000000000000000 intr_info 0x00000000 error_code "
    "0x00000000\n"
    " qemu-kvm-100 [001] d..1 10.000900: kvm_page_fault: vcpu 0 rip 0x4005d0 address "
    "0x0000000000006000 error_code 0x181\n"
    "CPU:1 [LOST 10 EVENTS]\n"                                                             /* 19 */
    " qemu-kvm-100 [001] d..1 10.001000: kvm_async_pf_not_present: token zz gva 1\n"       /* 20 */
    " qemu-kvm-100 [001] d..1 10.001100: sched_switch: prev_comm=qemu-kvm prev_pid=100\n";

static void pairs_by_gva_fifo_and_counts(void **state) {
  struct scratch *s = *state;
  struct ftrace_import im;
  struct diag d = {{0}};
  assert_true(ftrace_import_file(file_with(s, "mixed.txt", mixed), FTRACE_PAIR_AUTO, &im, &d));
  assert_int_equal(im.lines, 21);
  assert_int_equal(im.events, 16);
  assert_int_equal(im.skipped, 2);
  assert_int_equal(im.lost_notes, 1);
  assert_int_equal(im.unparseable, 2);
  assert_int_equal(im.n_bad, 2);
  assert_int_equal(im.bad[0].line, 7);
  assert_int_equal(im.bad[1].line, 20);
  assert_int_equal(im.by_kind[FTRACE_EV_TRY_ASYNC_GET_PAGE], 4);
  assert_int_equal(im.by_kind[FTRACE_EV_COMPLETED], 4);
  assert_int_equal(im.by_kind[FTRACE_EV_NOT_PRESENT], 2);
  assert_int_equal(im.by_kind[FTRACE_EV_READY], 3);
  assert_int_equal(im.by_kind[FTRACE_EV_EXIT], 1);
  assert_int_equal(im.by_kind[FTRACE_EV_PAGE_FAULT], 1);
  assert_int_equal(im.by_kind[FTRACE_EV_OTHER], 1);
  /* auto picks get-page: 3 pairs against 1 by token. */
  assert_int_equal(im.pairing, FTRACE_PAIR_GET_PAGE);
  assert_int_equal(im.n_pairs, 3);
  assert_int_equal(im.unpaired_starts, 1); /* gva 0x6000 */
  assert_int_equal(im.unpaired_ends, 1);   /* gva 0x5000 */
  assert_int_equal(im.wake_all, 1);
  const struct {
    uint64_t start, lat, gva;
    long line;
  } want[] = {{10000000000ULL, 50000, 0x1000, 3},
              {10000010000ULL, 90000, 0x2000, 5},
              {10000070000ULL, 230000, 0x1000, 10}};
  for (size_t i = 0; i < 3; i++) {
    assert_true(im.pairs[i].start_ns == want[i].start);
    assert_true(im.pairs[i].latency_ns == want[i].lat);
    assert_true(im.pairs[i].gva == want[i].gva);
    assert_int_equal(im.pairs[i].start_line, want[i].line);
  }
  ftrace_import_free(&im);
}

static void pairs_by_token(void **state) {
  struct scratch *s = *state;
  struct ftrace_import im;
  struct diag d = {{0}};
  assert_true(ftrace_import_file(file_with(s, "mixed.txt", mixed), FTRACE_PAIR_TOKEN, &im, &d));
  assert_int_equal(im.pairing, FTRACE_PAIR_TOKEN);
  assert_int_equal(im.n_pairs, 1);
  assert_true(im.pairs[0].latency_ns == 59000 && im.pairs[0].gva == 0x1000);
  assert_int_equal(im.unpaired_starts, 1); /* token 0x2000 never ready */
  assert_int_equal(im.unpaired_ends, 1);   /* token 0x9000 never not-present */
  assert_int_equal(im.wake_all, 1);        /* not an unpaired end */
  ftrace_import_free(&im);
}

/* A completion printed a line before its start in the same µs tick pairs
 * with it (latency counted as 1 ns), and unsorted input is sorted. */
static void same_tick_and_unsorted(void **state) {
  struct scratch *s = *state;
  const char *text =
      "q-1 [000] 2.000005: kvm_async_pf_completed: gva 0x1 address 0x1\n"
      "q-1 [001] 2.000005: kvm_try_async_get_page: gva = 0x1, gfn = 0x0\n"
      "q-1 [001] 3.000000: kvm_async_pf_completed: gva 0x2 address 0x2\n"
      "q-1 [001] 1.000000: kvm_try_async_get_page: gva = 0x2, gfn = 0x0\n";
  struct ftrace_import im;
  struct diag d = {{0}};
  assert_true(ftrace_import_file(file_with(s, "tick.txt", text), FTRACE_PAIR_GET_PAGE, &im, &d));
  assert_int_equal(im.n_pairs, 2);
  assert_int_equal(im.unpaired_starts + im.unpaired_ends, 0);
  assert_int_equal(im.zero_latency, 1);
  assert_true(im.pairs[0].gva == 2 && im.pairs[0].latency_ns == 2000000000ULL);
  assert_true(im.pairs[1].gva == 1 && im.pairs[1].latency_ns == 1);
  ftrace_import_free(&im);
}

static void nothing_parses_is_an_error(void **state) {
  struct scratch *s = *state;
  struct ftrace_import im;
  struct diag d = {{0}};
  const char *p = file_with(s, "junk.txt", "hello\nworld\n# a comment\n");
  assert_false(ftrace_import_file(p, FTRACE_PAIR_AUTO, &im, &d));
  assert_int_equal(im.unparseable, 2);
  assert_non_null(strstr(d.msg, "nothing parses as ftrace text: 3 lines, 2 unparseable (the first "
                                "on line 1)"));
  ftrace_import_free(&im);

  p = file_with(s, "empty.txt", "# tracer: nop\n");
  assert_false(ftrace_import_file(p, FTRACE_PAIR_AUTO, &im, &d));
  assert_non_null(strstr(d.msg, "no ftrace events in 1 lines"));
  ftrace_import_free(&im);

  p = file_with(s, "trace.dat", "\x17\x08\x44tracing6\n");
  assert_false(ftrace_import_file(p, FTRACE_PAIR_AUTO, &im, &d));
  assert_non_null(strstr(d.msg, "binary trace-cmd file (trace.dat)"));
  ftrace_import_free(&im);

  snprintf(s->path, sizeof s->path, "%s/missing.txt", s->dir);
  assert_false(ftrace_import_file(s->path, FTRACE_PAIR_AUTO, &im, &d));
  assert_non_null(strstr(d.msg, "cannot open"));
  ftrace_import_free(&im);
}

/* Only the first FTRACE_REPORTED_LINES bad lines are kept; all are counted. */
static void many_bad_lines_are_counted(void **state) {
  struct scratch *s = *state;
  char text[4096] = "";
  for (int i = 0; i < 20; i++) strcat(text, "not ftrace\n");
  strcat(text, "q-1 [000] 1.000000: kvm_try_async_get_page: gva = 0x1, gfn = 0x0\n");
  strcat(text, "q-1 [000] 1.000010: kvm_async_pf_completed: gva 0x1 address 0x1\n");
  struct ftrace_import im;
  struct diag d = {{0}};
  assert_true(ftrace_import_file(file_with(s, "bad.txt", text), FTRACE_PAIR_AUTO, &im, &d));
  assert_int_equal(im.unparseable, 20);
  assert_int_equal(im.n_bad, FTRACE_REPORTED_LINES);
  assert_int_equal(im.bad[FTRACE_REPORTED_LINES - 1].line, FTRACE_REPORTED_LINES);
  assert_int_equal(im.n_pairs, 1);
  ftrace_import_free(&im);
}

static struct ftrace_import fake_import(const uint64_t *lat, size_t n) {
  struct ftrace_import im;
  memset(&im, 0, sizeof im);
  im.pairing = FTRACE_PAIR_GET_PAGE;
  im.pairs = calloc(n, sizeof *im.pairs);
  im.n_pairs = n;
  for (size_t i = 0; i < n; i++)
    im.pairs[i] = (struct ftrace_pair){.start_ns = 1000 * i, .latency_ns = lat[i], .gva = 4096 * i};
  return im;
}

static void histogram_bins_are_equal_count(void **state) {
  (void)state;
  struct ftrace_hist_bin b[FTRACE_MAX_BINS + 1];
  /* 100 latencies 1..100 us into 4 bins: 25 each, bounds at the quartiles,
   * after an empty bin that ends just below the minimum. */
  uint64_t lat[100];
  for (int i = 0; i < 100; i++) lat[i] = (uint64_t)(100 - i) * 1000;
  struct ftrace_import im = fake_import(lat, 100);
  size_t n = ftrace_histogram(&im, 4, b);
  assert_int_equal(n, 5);
  assert_true(b[0].upper_ns == 999 && b[0].count == 0);
  assert_true(b[1].upper_ns == 25000 && b[1].count == 25);
  assert_true(b[2].upper_ns == 50000 && b[2].count == 25);
  assert_true(b[3].upper_ns == 75000 && b[3].count == 25);
  assert_true(b[4].upper_ns == 100000 && b[4].count == 25);
  /* Ties collapse: never two bins with the same bound, nothing lost. */
  n = ftrace_histogram(&im, 255, b);
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    total += b[i].count;
    if (i) assert_true(b[i].upper_ns > b[i - 1].upper_ns);
  }
  assert_int_equal(total, 100);
  assert_int_equal(n, 101);
  free(im.pairs);

  uint64_t same[] = {7000, 7000, 7000};
  im = fake_import(same, 3);
  n = ftrace_histogram(&im, 64, b);
  assert_int_equal(n, 2);
  assert_true(b[1].upper_ns == 7000 && b[1].count == 3);
  free(im.pairs);
}

/* End to end inside the library: import, write the histogram file, load a
 * config that names it as swap-device/latency dist="empirical". */
static void histogram_loads_as_empirical_latency(void **state) {
  struct scratch *s = *state;
  struct ftrace_import im;
  struct diag d = {{0}};
  assert_true(ftrace_import_file(file_with(s, "mixed.txt", mixed), FTRACE_PAIR_AUTO, &im, &d));
  char hist[300];
  snprintf(hist, sizeof hist, "%s/kvm.hist", s->dir);
  FILE *f = fopen(hist, "w");
  assert_non_null(f);
  assert_true(ftrace_write_histogram(f, &im, 2, "mixed.txt"));
  fclose(f);
  f = fopen(hist, "r");
  char text[2048] = "";
  size_t len = fread(text, 1, sizeof text - 1, f);
  text[len] = '\0';
  fclose(f);
  assert_non_null(strstr(text, "\n49999ns 0\n90us 2\n230us 1\n"));
  assert_non_null(strstr(text, "# 3 samples: min 50us, median 90us, max 230us; 3 bins"));

  const char *cfg_path =
      file_with(s, "run.xml",
                "<apfsim><swap-device preset=\"nvme-ssd\"><latency dist=\"empirical\">"
                "<histogram file=\"kvm.hist\"/></latency></swap-device></apfsim>\n");
  struct sim_config *cfg = config_new();
  assert_non_null(cfg);
  if (!config_load(cfg_path, NULL, 0, NULL, cfg, &d)) fail_msg("config_load: %s", d.msg);
  assert_int_equal(cfg->swap.latency.dist, LATENCY_EMPIRICAL);
  assert_int_equal(cfg->swap.latency.n_bins, 3);
  struct ftrace_hist_bin b[FTRACE_MAX_BINS + 1];
  size_t n = ftrace_histogram(&im, 2, b);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++) {
    assert_true(cfg->swap.latency.bins[i].upper_ns == b[i].upper_ns);
    assert_true(cfg->swap.latency.bins[i].count == b[i].count);
  }
  free(cfg);

  /* The most bins an import can write still loads (the config's limit). */
  uint64_t lat[1000];
  for (int i = 0; i < 1000; i++) lat[i] = 1000 + (uint64_t)i * 37;
  struct ftrace_import big = fake_import(lat, 1000);
  f = fopen(hist, "w");
  assert_true(ftrace_write_histogram(f, &big, FTRACE_MAX_BINS, "big"));
  fclose(f);
  cfg = config_new();
  if (!config_load(cfg_path, NULL, 0, NULL, cfg, &d)) fail_msg("config_load: %s", d.msg);
  assert_int_equal(cfg->swap.latency.n_bins, FTRACE_MAX_BINS + 1);
  assert_int_equal(FTRACE_MAX_BINS + 1, CONFIG_MAX_HISTOGRAM_BINS);
  free(cfg);
  free(big.pairs);
  ftrace_import_free(&im);
}

static void schedule_lines(void **state) {
  struct scratch *s = *state;
  struct ftrace_import im;
  struct diag d = {{0}};
  assert_true(ftrace_import_file(file_with(s, "mixed.txt", mixed), FTRACE_PAIR_AUTO, &im, &d));
  char out[300];
  snprintf(out, sizeof out, "%s/sched.txt", s->dir);
  FILE *f = fopen(out, "w");
  assert_true(ftrace_write_schedule(f, &im, "mixed.txt"));
  fclose(f);
  f = fopen(out, "r");
  char text[2048] = "";
  size_t len = fread(text, 1, sizeof text - 1, f);
  text[len] = '\0';
  fclose(f);
  assert_true(!strncmp(text, "# apfsim-ftrace-schedule 1\n", 27));
  assert_non_null(strstr(text, "\n0 0x1000 50000\n10000 0x2000 90000\n70000 0x1000 230000\n"));
  ftrace_import_free(&im);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(pairs_by_gva_fifo_and_counts, setup, teardown),
      cmocka_unit_test_setup_teardown(pairs_by_token, setup, teardown),
      cmocka_unit_test_setup_teardown(same_tick_and_unsorted, setup, teardown),
      cmocka_unit_test_setup_teardown(nothing_parses_is_an_error, setup, teardown),
      cmocka_unit_test_setup_teardown(many_bad_lines_are_counted, setup, teardown),
      cmocka_unit_test(histogram_bins_are_equal_count),
      cmocka_unit_test_setup_teardown(histogram_loads_as_empirical_latency, setup, teardown),
      cmocka_unit_test_setup_teardown(schedule_lines, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
