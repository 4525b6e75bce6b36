/* test_machine_dax.c — the virtiofs DAX window in the machine (issue 5 item 5) on
 * configs/dax-truncate-sync.xml and variants of it: a synchronous access to a page the
 * host truncated ends the run with efault_exit and a verdict naming gpa, rip (with its
 * symbol) and file offset; pages below the new end of file stay readable; a page-cache
 * miss blocks the vCPU for exactly the configured latency; a read in flight of a page
 * the truncate removed fails; runs are deterministic. Under APF (2020, mainline error
 * reporting) the truncated page's fault/page-ready loop ends as a livelock exactly at
 * apf/livelock-faults (docs/truncation.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define SCENARIO "dax-truncate-sync.xml"
#define WINDOW_GPA UINT64_C(0x100000000) /* dax/window-gpa's default, which the scenario keeps */

static void temp_path(char *path, size_t len) {
  snprintf(path, len, "/tmp/apfsim-machine-dax-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
}

/* Runs SCENARIO with overrides to its end; the trace goes to trace_path (NULL: none). */
static void run(struct harness *h, struct run_summary *s, const char *const *set, size_t n, const char *trace_path) {
  hx_start(h, hx_config(SCENARIO, set, n), trace_path);
  hx_run(h, MACHINE_NEVER, NULL, NULL);
  memset(s, 0, sizeof *s);
  hx_finish(h, s);
  print_message("%s: %s\n", outcome_name(s->outcome), s->verdict);
}

/* Calls fn for every event of the trace. */
static void each_event(const char *trace_path, void (*fn)(const struct trace_record *r, void *ctx), void *ctx) {
  struct diag d = {{0}};
  struct trace_reader *r = trace_reader_open(trace_path, &d);
  if (!r) fail_msg("%s", d.msg);
  struct trace_record rec;
  enum trace_read_status st;
  while ((st = trace_reader_next(r, &rec, &d)) == TRACE_READ_EVENT) fn(&rec, ctx);
  if (st == TRACE_READ_ERROR) fail_msg("%s", d.msg);
  trace_reader_close(r);
}

static uint64_t field(const struct trace_record *r, const char *key) {
  const char *p = strstr(r->fields, key);
  if (!p) fail_msg("%s: no %s in \"%s\"", r->name, key, r->fields);
  return strtoull(p + strlen(key), NULL, 0);
}

/* ---- the scenario: efault_exit ---- */

struct efault_seen {
  unsigned efaults, truncates;
  uint64_t truncate_ns, efault_ns;
  char efault_fields[256];
};

static void see_efault(const struct trace_record *r, void *ctx) {
  struct efault_seen *e = ctx;
  if (!strcmp(r->name, "efault")) {
    e->efaults++;
    e->efault_ns = r->time_ns;
    snprintf(e->efault_fields, sizeof e->efault_fields, "%s", r->fields);
  }
  if (!strcmp(r->name, "dax_truncate")) {
    e->truncates++;
    e->truncate_ns = r->time_ns;
    assert_int_equal(field(r, "old_size "), 256 * 1024);
    assert_int_equal(field(r, "new_size "), 64 * 1024);
    assert_int_equal(field(r, "pages_gone "), 48);
  }
}

static void truncated_page_ends_the_run_with_efault_exit(void **state) {
  (void)state;
  char trace_path[64];
  temp_path(trace_path, sizeof trace_path);
  struct harness h;
  struct run_summary s;
  run(&h, &s, NULL, 0, trace_path);
  assert_int_equal(s.outcome, OUTCOME_EFAULT_EXIT);
  /* The reader went through the whole window once, then faults on the first page past
   * the new end of file (64 KiB): file offset 0x10000 at gpa window + 0x10000. */
  assert_non_null(strstr(s.verdict, "\"kvm run failed: Bad address\""));
  assert_non_null(strstr(s.verdict, "KVM_RUN failed with EFAULT on vCPU 0"));
  assert_non_null(strstr(s.verdict, "read fault on gpa 0x100010000 "));
  assert_non_null(strstr(s.verdict, "file offset 0x10000)"));
  assert_non_null(strstr(s.verdict, " = user_main+0x"));
  assert_non_null(strstr(s.verdict, "(user mode)"));
  assert_non_null(strstr(s.verdict, "truncated the file at 2.000 ms from 262144 to 65536 bytes"));
  assert_true(s.sim_time_ns > 2000000 && s.sim_time_ns < 3000000);

  assert_int_equal(hx_section_value(&s, "dax", 0, "window_gpa"), WINDOW_GPA);
  assert_int_equal(hx_section_value(&s, "dax", 0, "file_bytes"), 64 * 1024);
  assert_int_equal(hx_section_value(&s, "dax", 0, "page_cache_reads"), 64); /* every page once, cold */
  assert_int_equal(hx_section_value(&s, "dax", 0, "reads_done"), 64);
  assert_int_equal(hx_section_value(&s, "dax", 0, "pages_truncated"), 48);
  assert_int_equal(hx_section_value(&s, "dax", 0, "efault_exits"), 1);
  assert_int_equal(s.vcpus[0].sync_faults, 64); /* each page-cache miss blocked the reader */

  struct efault_seen e = {0};
  each_event(trace_path, see_efault, &e);
  unlink(trace_path);
  assert_int_equal(e.truncates, 1);
  assert_int_equal(e.truncate_ns, 2000000);
  assert_int_equal(e.efaults, 1);
  assert_int_equal(e.efault_ns, s.sim_time_ns);
  assert_non_null(strstr(e.efault_fields, "gpa 0x100010000 "));
  assert_non_null(strstr(e.efault_fields, " sym user_main+0x"));
  assert_non_null(strstr(e.efault_fields, " file_offset 0x10000 reason truncated"));
  hx_free(&h);
}

/* dax-copy: the kernel's copy_to_user faults on the truncated page; with no error path in
 * the synchronous fault, the same EFAULT exit names the kernel instruction. */
static void kernel_copy_from_a_truncated_page_also_exits(void **state) {
  (void)state;
  const char *set[] = {"workload/process[1]/@kind=dax-copy"};
  struct harness h;
  struct run_summary s;
  run(&h, &s, set, 1, NULL);
  assert_int_equal(s.outcome, OUTCOME_EFAULT_EXIT);
  assert_non_null(strstr(s.verdict, " = copy_user_generic+0x"));
  assert_non_null(strstr(s.verdict, "(kernel mode)"));
  assert_non_null(strstr(s.verdict, "\"kvm run failed: Bad address\""));
  hx_free(&h);
}

/* ---- pages below the new end of file ---- */

struct below_seen {
  uint64_t truncate_ns;
  unsigned reads_ok_after, reads_failed;
  uint64_t highest_gpa;
};

static void see_below(const struct trace_record *r, void *ctx) {
  struct below_seen *b = ctx;
  if (!strcmp(r->name, "dax_truncate")) b->truncate_ns = r->time_ns;
  if (!strcmp(r->name, "dax_read_done")) {
    if (strstr(r->fields, "result ok") && b->truncate_ns && r->time_ns > b->truncate_ns) b->reads_ok_after++;
    if (!strstr(r->fields, "result ok")) b->reads_failed++;
    if (field(r, "gpa ") > b->highest_gpa) b->highest_gpa = field(r, "gpa ");
  }
}

/* Two readers of the first 16 pages (1024 lines each), the file cut from 256 KiB to
 * 62 KiB while they are at it: pages 0-14 stay, page 15 stays with a zero tail, the rest
 * is gone but never read. Both finish: ok. */
static void pages_below_the_new_end_stay_readable(void **state) {
  (void)state;
  char trace_path[64];
  temp_path(trace_path, sizeof trace_path);
  const char *set[] = {"workload/process[1]/ops=1024", "workload/process[1]/count=2", "workload/process[2]/ops=100",
                       "dax/truncate-at=200us", "dax/truncate-to=63488"};
  struct harness h;
  struct run_summary s;
  run(&h, &s, set, sizeof set / sizeof *set, trace_path);
  assert_int_equal(s.outcome, OUTCOME_OK);
  assert_int_equal(hx_section_value(&s, "processes", 0, "ops"), 1024);
  assert_int_equal(hx_section_value(&s, "processes", 1, "ops"), 1024);
  assert_int_equal(hx_section_value(&s, "dax", 0, "efault_exits"), 0);
  assert_int_equal(hx_section_value(&s, "dax", 0, "pages_truncated"), 64 - 16);
  assert_int_equal(hx_section_value(&s, "dax", 0, "file_bytes"), 63488);

  /* The page holding the new end keeps its head and reads zeros past it; every other
   * word holds its file offset (the fill's tag in the top byte). */
  const uint8_t *mem = machine_guest_memory(h.m, NULL);
  for (uint64_t off = 0; off < 16 * 4096; off += 8) {
    uint64_t word;
    memcpy(&word, mem + WINDOW_GPA + off, 8);
    if (off < 63488)
      assert_int_equal(word, UINT64_C(0xda00000000000000) | off);
    else
      assert_int_equal(word, 0);
  }

  struct below_seen b = {0};
  each_event(trace_path, see_below, &b);
  unlink(trace_path);
  assert_int_equal(b.truncate_ns, 200000);
  assert_true(b.reads_ok_after > 0); /* the truncate fell in the middle of the reading */
  assert_int_equal(b.reads_failed, 0);
  assert_int_equal(b.highest_gpa, WINDOW_GPA + 15 * 4096);
  hx_free(&h);
}

/* ---- page-cache misses block for the configured latency ---- */

struct latency_seen {
  uint64_t submit_ns[2], ready_ns[2];
  bool pending[2];
  unsigned misses, checked;
  uint64_t min_ns, max_ns;
};

static void see_latency(const struct trace_record *r, void *ctx) {
  struct latency_seen *l = ctx;
  if (r->cpu < 0 || r->cpu > 1) return;
  const unsigned c = (unsigned)r->cpu;
  if (!strcmp(r->name, "dax_read_submit")) {
    l->submit_ns[c] = r->time_ns;
    l->ready_ns[c] = field(r, "ready_ns ");
    l->misses++;
  }
  if (!strcmp(r->name, "sync_fault_start") && strstr(r->fields, "kind dax_read")) {
    assert_int_equal(r->time_ns, l->submit_ns[c]);
    l->pending[c] = true;
  }
  if (!strcmp(r->name, "sync_fault_end") && l->pending[c]) {
    /* the vCPU waited from its fault to the read's completion, and that was the draw */
    const uint64_t waited = field(r, "latency_ns ");
    assert_int_equal(r->time_ns, l->ready_ns[c]);
    assert_int_equal(waited, l->ready_ns[c] - l->submit_ns[c]);
    if (!l->checked || waited < l->min_ns) l->min_ns = waited;
    if (waited > l->max_ns) l->max_ns = waited;
    l->pending[c] = false;
    l->checked++;
  }
}

static void page_cache_misses_block_for_the_configured_latency(void **state) {
  (void)state;
  char trace_path[64];
  temp_path(trace_path, sizeof trace_path);
  struct harness h;
  struct run_summary s;
  run(&h, &s, NULL, 0, trace_path);
  struct latency_seen l = {0};
  each_event(trace_path, see_latency, &l);
  assert_int_equal(l.misses, 64);
  assert_int_equal(l.checked, 64);
  assert_int_equal(l.min_ns, 20000); /* fixed 20 us */
  assert_int_equal(l.max_ns, 20000);
  assert_int_equal(hx_section_value(&s, "vcpu_time", 0, "blocked_ns"), 64 * 20000);
  hx_free(&h);

  /* uniform 10-30 us: each wait is its own draw, inside the bounds */
  const char *set[] = {"dax/page-cache-latency/@dist=uniform", "dax/page-cache-latency/min=10us",
                       "dax/page-cache-latency/max=30us"};
  run(&h, &s, set, 3, trace_path);
  memset(&l, 0, sizeof l);
  each_event(trace_path, see_latency, &l);
  unlink(trace_path);
  assert_int_equal(l.checked, l.misses);
  assert_true(l.checked >= 16);
  assert_true(l.min_ns >= 10000 && l.max_ns <= 30000 && l.min_ns < l.max_ns);
  hx_free(&h);
}

/* ---- a read in flight when the truncate removes its page ---- */

static void see_failed_read(const struct trace_record *r, void *ctx) {
  unsigned *seen = ctx;
  if (!strcmp(r->name, "dax_truncate")) {
    assert_int_equal(field(r, "reads_cancelled "), 1);
    seen[0]++;
  }
  if (!strcmp(r->name, "dax_read_done") && strstr(r->fields, "result truncated")) {
    assert_int_equal(field(r, "gpa "), WINDOW_GPA + 2 * 4096);
    seen[1]++;
  }
}

/* 500 us reads: page 2's read runs from ~1.2 ms to ~1.7 ms; the truncate to 8 KiB at
 * 1.5 ms removes it, so the read fails and the reader's retry is the EFAULT exit. */
static void a_read_in_flight_of_a_truncated_page_fails(void **state) {
  (void)state;
  char trace_path[64];
  temp_path(trace_path, sizeof trace_path);
  const char *set[] = {"dax/page-cache-latency/value=500us", "dax/truncate-at=1500us", "dax/truncate-to=8KiB"};
  struct harness h;
  struct run_summary s;
  run(&h, &s, set, 3, trace_path);
  assert_int_equal(s.outcome, OUTCOME_EFAULT_EXIT);
  assert_non_null(strstr(s.verdict, "gpa 0x100002000 "));
  assert_non_null(strstr(s.verdict, "file offset 0x2000)"));
  assert_int_equal(hx_section_value(&s, "dax", 0, "reads_failed"), 1);
  assert_true(s.sim_time_ns > 1500000 && s.sim_time_ns < 1800000);
  unsigned seen[2] = {0};
  each_event(trace_path, see_failed_read, seen);
  unlink(trace_path);
  assert_int_equal(seen[0], 1);
  assert_int_equal(seen[1], 1);
  hx_free(&h);
}

/* ---- under APF (docs/truncation.md): the loop and its detector ---- */

struct loop_seen {
  unsigned failed, livelocks, other_gfn;
  uint64_t livelock_faults;
};

static void see_loop(const struct trace_record *r, void *ctx) {
  struct loop_seen *l = ctx;
  if (!strcmp(r->name, "apf_fetch_failed")) {
    l->failed++;
    if (field(r, "gfn ") != (WINDOW_GPA >> 12) + 0x10) l->other_gfn++;
  }
  if (!strcmp(r->name, "apf_livelock")) {
    l->livelocks++;
    assert_int_equal(field(r, "gfn "), (WINDOW_GPA >> 12) + 0x10);
    l->livelock_faults = field(r, "faults ");
  }
}

/* The 2020 protocol, mainline error reporting: page-cache misses are async faults (no
 * vCPU blocks), and after the truncate the reader's fault on the first page past the new
 * end (gfn 0x10 of the window) fails and is
 * retried, on that one gfn, until apf/livelock-faults ends the run: the
 * N-th fault is the livelock, after N-1 failed get-pages. */
static void async_truncation_loop_is_a_livelock_at_the_threshold(void **state) {
  (void)state;
  static const unsigned limits[] = {1, 7};
  for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
    char trace_path[64], limit[48], want[96];
    temp_path(trace_path, sizeof trace_path);
    snprintf(limit, sizeof limit, "apf/livelock-faults=%u", limits[k]);
    const char *set[] = {"apf/protocol=2020", limit};
    struct harness h;
    struct run_summary s;
    run(&h, &s, set, 2, trace_path);
    assert_int_equal(s.outcome, OUTCOME_LIVELOCK);
    snprintf(want, sizeof want, "took %u async page fault%s in a row on gpa 0x100010000 (gfn 0x100010;", limits[k],
             limits[k] == 1 ? "" : "s");
    assert_non_null(strstr(s.verdict, want));
    assert_non_null(strstr(s.verdict, "file offset 0x10000)"));
    assert_non_null(strstr(s.verdict, " = user_main+0x"));
    assert_non_null(strstr(s.verdict, "in task pid 1 (dax-read)"));
    assert_non_null(strstr(s.verdict, "truncated the file at 2.000 ms"));
    assert_int_equal(hx_section_value(&s, "dax", 0, "page_cache_reads"), 64);
    assert_int_equal(hx_section_value(&s, "dax", 0, "efault_exits"), 0);
    for (unsigned i = 0; i < s.n_vcpus; i++) assert_int_equal(s.vcpus[i].sync_faults, 0);
    assert_true(s.apf.not_present >= 64 + limits[k]);
    struct loop_seen l = {0};
    each_event(trace_path, see_loop, &l);
    unlink(trace_path);
    assert_int_equal(l.failed, limits[k] - 1);
    assert_int_equal(l.other_gfn, 0);
    assert_int_equal(l.livelocks, 1);
    assert_int_equal(l.livelock_faults, limits[k]);
    hx_free(&h);
  }
}

/* ---- determinism ---- */

static void two_runs_give_the_same_trace(void **state) {
  (void)state;
  char sha[2][65];
  for (int k = 0; k < 2; k++) {
    struct harness h;
    struct run_summary s;
    run(&h, &s, NULL, 0, NULL);
    memcpy(sha[k], s.trace_sha256, sizeof sha[k]);
    hx_free(&h);
  }
  assert_string_equal(sha[0], sha[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(truncated_page_ends_the_run_with_efault_exit),
      cmocka_unit_test(kernel_copy_from_a_truncated_page_also_exits),
      cmocka_unit_test(pages_below_the_new_end_stay_readable),
      cmocka_unit_test(page_cache_misses_block_for_the_configured_latency),
      cmocka_unit_test(a_read_in_flight_of_a_truncated_page_fails),
      cmocka_unit_test(two_runs_give_the_same_trace),
      cmocka_unit_test(async_truncation_loop_is_a_livelock_at_the_threshold),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
