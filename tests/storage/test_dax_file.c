/* test_dax_file.c — the virtiofs DAX host file (dax_file.h): page-cache
 * residency and reads with a latency, and host truncation as Linux does it
 * (pages entirely past the new size go, the page holding the new EOF stays,
 * growing the file again gives fresh hole pages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "storage/dax_file.h"

#define PG DAX_PAGE_SIZE

static uint64_t read_latency = 2000;

static void init_checks_sizes(void **state) {
  (void)state;
  struct dax_file f;
  struct diag err;
  assert_false(dax_file_init(&f, 10 * PG, 8 * PG, DAX_START_COLD, fixed_sample, &read_latency, &err));
  assert_non_null(strstr(err.msg, "larger than the window"));
  assert_false(dax_file_init(&f, 0, 0, DAX_START_COLD, fixed_sample, &read_latency, &err));
  assert_true(dax_file_init(&f, 0, PG, DAX_START_COLD, fixed_sample, &read_latency, &err));
  assert_int_equal(dax_file_page_state(&f, 0, 0), DAX_PAGE_BEYOND_EOF); /* empty file */
  dax_file_destroy(&f);
}

static void cold_and_warm_start(void **state) {
  (void)state;
  struct dax_file f;
  struct diag err;
  /* 10.5 pages in a 16-page window: page 10 is partial but part of the file */
  assert_true(dax_file_init(&f, 10 * PG + 100, 16 * PG, DAX_START_COLD, fixed_sample,
                            &read_latency, &err));
  for (uint64_t p = 0; p < 11; p++) assert_int_equal(dax_file_page_state(&f, p * PG, 0), DAX_PAGE_NEEDS_READ);
  for (uint64_t p = 11; p < 20; p++) assert_int_equal(dax_file_page_state(&f, p * PG, 0), DAX_PAGE_BEYOND_EOF);
  dax_file_destroy(&f);
  assert_true(dax_file_init(&f, 10 * PG + 100, 16 * PG, DAX_START_WARM, fixed_sample,
                            &read_latency, &err));
  for (uint64_t p = 0; p < 11; p++) assert_int_equal(dax_file_page_state(&f, p * PG + 7, 0), DAX_PAGE_RESIDENT);
  assert_int_equal(dax_file_page_state(&f, 11 * PG, 0), DAX_PAGE_BEYOND_EOF);
  dax_file_destroy(&f);
}

static void read_brings_page_in_after_its_latency(void **state) {
  (void)state;
  const uint64_t lat[] = {5000, 7000};
  struct script s = {lat, 2, 0};
  struct dax_file f;
  struct diag err;
  assert_true(dax_file_init(&f, 4 * PG, 4 * PG, DAX_START_COLD, script_sample, &s, &err));
  uint64_t ready;
  assert_int_equal(dax_file_read(&f, PG + 10, 1000, &ready), DAX_OK);
  assert_int_equal(ready, 6000);
  assert_int_equal(dax_file_page_state(&f, PG, 5999), DAX_PAGE_READING);
  assert_int_equal(dax_file_page_state(&f, PG, 6000), DAX_PAGE_RESIDENT);
  /* a second fault while the read runs waits for the same read */
  assert_int_equal(dax_file_read(&f, PG, 3000, &ready), DAX_OK);
  assert_int_equal(ready, 6000);
  /* after it, a hit: ready at once */
  assert_int_equal(dax_file_read(&f, PG + 4000, 6500, &ready), DAX_OK);
  assert_int_equal(ready, 6500);
  /* another page: its own read */
  assert_int_equal(dax_file_read(&f, 3 * PG, 7000, &ready), DAX_OK);
  assert_int_equal(ready, 14000);
  assert_int_equal(f.stats.faults, 4);
  assert_int_equal(f.stats.reads, 2);
  assert_int_equal(f.stats.joined, 1);
  assert_int_equal(f.stats.hits, 1);
  assert_int_equal(latency_hist_percentile(&f.stats.read_latency, 1000), 7000);
  /* eviction makes it need a read again; a locked (reading) page stays */
  assert_false(dax_file_evict(&f, 3 * PG, 8000));
  assert_true(dax_file_evict(&f, PG, 8000));
  assert_false(dax_file_evict(&f, PG, 8000));
  assert_int_equal(dax_file_page_state(&f, PG, 8000), DAX_PAGE_NEEDS_READ);
  assert_int_equal(f.stats.evictions, 1);
  dax_file_destroy(&f);
}

/* 1000 pages, all resident; truncate at T to exactly 600 pages: exactly
 * pages 600..999 become unresolvable, faults on them fail, faults below
 * still resolve. */
static void truncate_removes_exactly_the_pages_past_eof(void **state) {
  (void)state;
  struct dax_file f;
  struct diag err;
  assert_true(dax_file_init(&f, 1000 * PG, 1024 * PG, DAX_START_WARM, fixed_sample,
                            &read_latency, &err));
  struct dax_truncate_result r;
  assert_true(dax_file_truncate(&f, 600 * PG, 50000, &r, &err));
  assert_int_equal(r.old_size, 1000 * PG);
  assert_int_equal(r.new_size, 600 * PG);
  assert_int_equal(r.first_gone_page, 600);
  assert_int_equal(r.pages_gone, 400);
  assert_false(r.partial_page_kept);
  assert_int_equal(dax_file_size(&f), 600 * PG);
  for (uint64_t p = 0; p < 1024; p++) {
    enum dax_page_state s = dax_file_page_state(&f, p * PG, 50000);
    enum dax_page_state want = p < 600 ? DAX_PAGE_RESIDENT : p < 1000 ? DAX_PAGE_TRUNCATED : DAX_PAGE_BEYOND_EOF;
    if (s != want) fail_msg("page %llu: %s, want %s", (unsigned long long)p, dax_page_state_name(s), dax_page_state_name(want));
    uint64_t ready = 0;
    enum dax_status st = dax_file_read(&f, p * PG + 123, 60000, &ready);
    assert_int_equal(st, p < 600 ? DAX_OK : DAX_EFAULT);
    if (st == DAX_OK) assert_int_equal(ready, 60000);
  }
  assert_int_equal(f.stats.efaults, 424);
  assert_int_equal(f.stats.truncates, 1);
  assert_int_equal(f.stats.pages_truncated, 400);
  dax_file_destroy(&f);
}

/* Truncating to a size inside a page keeps that page (Linux unmaps from
 * round_up(size, PAGE_SIZE)); only pages entirely past the new EOF go. */
static void partial_page_at_new_eof_stays(void **state) {
  (void)state;
  struct dax_file f;
  struct diag err;
  assert_true(dax_file_init(&f, 137 * PG, 200 * PG, DAX_START_COLD, fixed_sample, &read_latency, &err));
  uint64_t ready;
  assert_int_equal(dax_file_read(&f, 70 * PG, 0, &ready), DAX_OK); /* page 70 resident at 2000 */
  struct dax_truncate_result r;
  assert_true(dax_file_truncate(&f, 70 * PG + 1, 10000, &r, &err));
  assert_true(r.partial_page_kept);
  assert_int_equal(r.partial_page, 70);
  assert_int_equal(r.first_gone_page, 71);
  assert_int_equal(r.pages_gone, 66);
  assert_int_equal(dax_file_page_state(&f, 70 * PG + 4095, 10000), DAX_PAGE_RESIDENT); /* past EOF, same page */
  assert_int_equal(dax_file_page_state(&f, 69 * PG, 10000), DAX_PAGE_NEEDS_READ);
  for (uint64_t p = 71; p < 137; p++) assert_int_equal(dax_file_page_state(&f, p * PG, 10000), DAX_PAGE_TRUNCATED);
  assert_int_equal(dax_file_page_state(&f, 137 * PG, 10000), DAX_PAGE_BEYOND_EOF);
  /* a truncate inside the last page removes nothing */
  assert_true(dax_file_truncate(&f, 70 * PG + 1, 11000, &r, &err));
  assert_int_equal(r.pages_gone, 0);
  assert_true(dax_file_truncate(&f, 70 * PG, 12000, &r, &err)); /* now page 70 goes too */
  assert_false(r.partial_page_kept);
  assert_int_equal(r.first_gone_page, 70);
  assert_int_equal(r.pages_gone, 1);
  assert_int_equal(dax_file_page_state(&f, 70 * PG, 12000), DAX_PAGE_TRUNCATED);
  dax_file_destroy(&f);
}

/* A read in flight when its page is truncated is cancelled: at its ready
 * time the page is TRUNCATED (the fault fails). Reads of kept pages finish. */
static void truncate_cancels_reads_of_gone_pages(void **state) {
  (void)state;
  uint64_t slow = 100000;
  struct dax_file f;
  struct diag err;
  assert_true(dax_file_init(&f, 64 * PG, 64 * PG, DAX_START_COLD, fixed_sample, &slow, &err));
  uint64_t ready_kept, ready_gone;
  assert_int_equal(dax_file_read(&f, 3 * PG, 0, &ready_kept), DAX_OK);
  assert_int_equal(dax_file_read(&f, 40 * PG, 0, &ready_gone), DAX_OK);
  struct dax_truncate_result r;
  assert_true(dax_file_truncate(&f, 32 * PG, 50000, &r, &err));
  assert_int_equal(r.reads_cancelled, 1);
  assert_int_equal(dax_file_page_state(&f, 40 * PG, ready_gone), DAX_PAGE_TRUNCATED);
  assert_int_equal(dax_file_page_state(&f, 3 * PG, ready_kept), DAX_PAGE_RESIDENT);
  uint64_t ready;
  assert_int_equal(dax_file_read(&f, 40 * PG, ready_gone, &ready), DAX_EFAULT);
  assert_int_equal(f.stats.reads_cancelled, 1);
  dax_file_destroy(&f);
}

/* Truncate then grow: the re-added range is holes (resolvable again, not
 * cached: the old page-cache pages are gone), the rest stays truncated. */
static void truncate_then_extend(void **state) {
  (void)state;
  struct dax_file f;
  struct diag err;
  assert_true(dax_file_init(&f, 100 * PG, 128 * PG, DAX_START_WARM, fixed_sample, &read_latency, &err));
  assert_true(dax_file_truncate(&f, 10 * PG, 1000, NULL, &err));
  struct dax_truncate_result r;
  assert_true(dax_file_truncate(&f, 50 * PG, 2000, &r, &err));
  assert_int_equal(r.pages_gone, 0);
  assert_int_equal(r.pages_added, 40);
  for (uint64_t p = 0; p < 128; p++) {
    enum dax_page_state want = p < 10    ? DAX_PAGE_RESIDENT
                               : p < 50  ? DAX_PAGE_NEEDS_READ
                               : p < 100 ? DAX_PAGE_TRUNCATED
                                         : DAX_PAGE_BEYOND_EOF;
    assert_int_equal(dax_file_page_state(&f, p * PG, 2000), want);
  }
  uint64_t ready;
  assert_int_equal(dax_file_read(&f, 20 * PG, 3000, &ready), DAX_OK);
  assert_int_equal(ready, 5000);
  /* grow to the whole window: every page is part of the file again */
  assert_true(dax_file_truncate(&f, 128 * PG, 4000, &r, &err));
  assert_int_equal(r.pages_added, 78);
  assert_int_equal(dax_file_page_state(&f, 127 * PG, 4000), DAX_PAGE_NEEDS_READ);
  /* past the window: refused, nothing changes */
  assert_false(dax_file_truncate(&f, 128 * PG + 1, 5000, &r, &err));
  assert_non_null(strstr(err.msg, "past the window"));
  assert_int_equal(dax_file_size(&f), 128 * PG);
  /* to zero: every page unresolvable, offset 0 included */
  assert_true(dax_file_truncate(&f, 0, 6000, &r, &err));
  assert_int_equal(r.pages_gone, 128);
  assert_int_equal(dax_file_page_state(&f, 0, 6000), DAX_PAGE_TRUNCATED);
  assert_int_equal(dax_file_read(&f, 0, 6000, &ready), DAX_EFAULT);
  dax_file_destroy(&f);
}

/* Time never goes backwards: an earlier now is the latest seen. */
static void earlier_time_is_latest_seen(void **state) {
  (void)state;
  struct dax_file f;
  struct diag err;
  assert_true(dax_file_init(&f, 4 * PG, 4 * PG, DAX_START_COLD, fixed_sample, &read_latency, &err));
  uint64_t ready;
  assert_int_equal(dax_file_read(&f, 0, 10000, &ready), DAX_OK);
  assert_int_equal(dax_file_read(&f, PG, 5000, &ready), DAX_OK);
  assert_int_equal(ready, 12000);
  dax_file_destroy(&f);
}

/* A big window: a truncate costs word operations, and bit ranges that do
 * not start or end on a 64-page boundary are exact. */
static void large_file_truncates_exactly(void **state) {
  (void)state;
  struct dax_file f;
  struct diag err;
  const uint64_t pages = (UINT64_C(4) << 30) / PG; /* 4 GiB, 1M pages */
  assert_true(dax_file_init(&f, pages * PG, pages * PG, DAX_START_WARM, fixed_sample, &read_latency, &err));
  const uint64_t cut = 333333;
  assert_true(dax_file_truncate(&f, cut * PG + 5, 100, NULL, &err));
  for (uint64_t p = cut - 130; p < cut + 130; p++)
    assert_int_equal(dax_file_page_state(&f, p * PG, 100), p <= cut ? DAX_PAGE_RESIDENT : DAX_PAGE_TRUNCATED);
  assert_int_equal(dax_file_page_state(&f, (pages - 1) * PG, 100), DAX_PAGE_TRUNCATED);
  assert_int_equal(dax_file_page_state(&f, 0, 100), DAX_PAGE_RESIDENT);
  dax_file_destroy(&f);
}

static void state_names(void **state) {
  (void)state;
  assert_string_equal(dax_page_state_name(DAX_PAGE_TRUNCATED), "truncated");
  assert_true(dax_page_resolvable(DAX_PAGE_READING));
  assert_false(dax_page_resolvable(DAX_PAGE_BEYOND_EOF));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(init_checks_sizes),
      cmocka_unit_test(cold_and_warm_start),
      cmocka_unit_test(read_brings_page_in_after_its_latency),
      cmocka_unit_test(truncate_removes_exactly_the_pages_past_eof),
      cmocka_unit_test(partial_page_at_new_eof_stays),
      cmocka_unit_test(truncate_cancels_reads_of_gone_pages),
      cmocka_unit_test(truncate_then_extend),
      cmocka_unit_test(earlier_time_is_latest_seen),
      cmocka_unit_test(large_file_truncates_exactly),
      cmocka_unit_test(state_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
