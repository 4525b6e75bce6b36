/* test_trace_writer.c — the writer's output, order, hashing and atomic
 * commit, and the writer -> reader round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "helpers.h"
#include "trace/trace.h"

static const struct trace_kv header[] = {
    {"apfsim-version", "0.1.0", 0},
    {"unicorn-version", "2.0.1", 0},
    {"guest-image-sha256", "none", 0},
    {"seed", "42", 0},
};
#define N_HEADER (sizeof header / sizeof header[0])

static const struct trace_block config_block[] = {
    {"config", "<apfsim>\n  <seed>42</seed>\n\n</apfsim>\n", 0},
};

/* The exact bytes of a small trace: pins the format of docs/trace-format.md
 * (column widths, source names, block and trailer lines). Events are emitted
 * out of order on purpose. */
static void writes_the_documented_format(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  const char *path = scratch_file(s, "t.trace");
  struct trace_writer *w = trace_writer_open(path, header, N_HEADER, config_block, 1, &d);
  assert_non_null(w);
  assert_true(trace_event(w, 2000, 1, "kvm_exit", NULL));
  assert_true(trace_event(w, 1000, 0, "kvm_async_pf_ready", "token %#x gva %#x", 0x1001, 0x7f001000));
  assert_true(trace_event(w, 1000, TRACE_CPU_HOST, "kvm_async_pf_completed", "gva %#x address %#x",
                          0x7f001000, 0x7f001000));
  assert_true(trace_event(w, 1000, TRACE_CPU_DEV, "swap_read_done", "gfn %#x", 0x7f001));
  assert_true(trace_close(w, NULL, &d));

  char *text = read_all(path, NULL);
  assert_string_equal(text,
                      "# apfsim-trace 1\n"
                      "# apfsim-version 0.1.0\n"
                      "# unicorn-version 2.0.1\n"
                      "# guest-image-sha256 none\n"
                      "# seed 42\n"
                      "# begin config\n"
                      "#| <apfsim>\n"
                      "#|   <seed>42</seed>\n"
                      "#|\n"
                      "#| </apfsim>\n"
                      "# end config\n"
                      "# header-end\n"
                      "           1000 dev   swap_read_done gfn 0x7f001\n"
                      "           1000 host  kvm_async_pf_completed gva 0x7f001000 address 0x7f001000\n"
                      "           1000 cpu0  kvm_async_pf_ready token 0x1001 gva 0x7f001000\n"
                      "           2000 cpu1  kvm_exit\n"
                      "# trace-end 4\n");
  free(text);
}

struct expected_event {
  uint64_t t;
  int cpu;
  const char *name, *fields;
};

static void round_trip_preserves_header_blocks_and_order(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  const char *path = scratch_file(s, "rt.trace");
  static const struct trace_block blocks[] = {
      {"config", "<a>\n# end config\n#| not a block line\n</a>", 0}, /* no final newline */
      {"input:ssd.csv", "", 0},
  };
  struct trace_writer *w = trace_writer_open(path, header, N_HEADER, blocks, 2, &d);
  assert_non_null(w);
  /* Quantum 1 (t < 500): vCPU 1 ran first, then vCPU 0. */
  assert_true(trace_event(w, 300, 1, "b_first_emitted", "x 1"));
  assert_true(trace_event(w, 300, 1, "b_second_emitted", "x 2"));
  assert_true(trace_event(w, 100, 0, "a", NULL));
  assert_true(trace_event(w, 300, 0, "c", "%s", ""));
  assert_true(trace_event(w, 600, 0, "held_back", "y")); /* beyond the bound: stays buffered */
  assert_true(trace_flush_until(w, 500, &d));
  assert_int_equal(trace_events_written(w), 4);
  /* Quantum 2: events at the bound itself are still allowed. */
  assert_true(trace_event(w, 500, 2, "at_bound", "z  two  spaces"));
  assert_true(trace_event(w, 700, TRACE_CPU_HOST, "h", NULL));
  assert_true(trace_close(w, NULL, &d));

  static const struct expected_event want[] = {
      {100, 0, "a", ""},
      {300, 0, "c", ""},
      {300, 1, "b_first_emitted", "x 1"},
      {300, 1, "b_second_emitted", "x 2"},
      {500, 2, "at_bound", "z  two  spaces"},
      {600, 0, "held_back", "y"},
      {700, TRACE_CPU_HOST, "h", ""},
  };

  struct trace_reader *r = trace_reader_open(path, &d);
  if (!r) fail_msg("%s", d.msg);
  assert_int_equal(trace_reader_header_count(r), N_HEADER);
  for (size_t i = 0; i < N_HEADER; i++) {
    const struct trace_kv *kv = trace_reader_header_at(r, i);
    assert_string_equal(kv->key, header[i].key);
    assert_string_equal(kv->value, header[i].value);
    assert_int_equal(kv->line, 2 + (long)i);
  }
  assert_string_equal(trace_reader_header(r, "seed")->value, "42");
  assert_null(trace_reader_header(r, "absent"));
  assert_int_equal(trace_reader_block_count(r), 2);
  assert_string_equal(trace_reader_block(r, "config")->text, "<a>\n# end config\n#| not a block line\n</a>\n");
  assert_int_equal(trace_reader_block(r, "config")->line, 6);
  assert_string_equal(trace_reader_block(r, "input:ssd.csv")->text, "");

  struct trace_record rec;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    assert_int_equal(trace_reader_next(r, &rec, &d), TRACE_READ_EVENT);
    assert_int_equal(rec.time_ns, want[i].t);
    assert_int_equal(rec.cpu, want[i].cpu);
    assert_string_equal(rec.name, want[i].name);
    assert_string_equal(rec.fields, want[i].fields);
    assert_int_equal(rec.line_no, 15 + (long)i);
  }
  assert_int_equal(trace_reader_next(r, &rec, &d), TRACE_READ_END);
  assert_string_equal(rec.line, "# trace-end 7");
  assert_int_equal(trace_reader_next(r, &rec, &d), TRACE_READ_END);
  trace_reader_close(r);
}

static void sha256_of_bytes(const char *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

static void write_sample(const char *path, int variant, char sha[65]) {
  struct diag d = {0};
  struct trace_writer *w = trace_writer_open(path, header, N_HEADER, config_block, 1, &d);
  assert_non_null(w);
  for (int i = 0; i < 1000; i++) {
    assert_true(trace_event(w, (uint64_t)(1000 - i) * 10, i % 4, "kvm_page_fault", "vcpu %d address 0x%016x", i % 4,
                            i * 4096 + (i == 500 ? variant : 0)));
  }
  assert_true(trace_close(w, sha, &d));
}

static void same_input_gives_same_sha256_and_it_hashes_the_file(void **state) {
  struct scratch *s = *state;
  char sha1[65], sha2[65], sha_nofile[65], sha_other[65], sha_file[65];
  write_sample(scratch_file(s, "one.trace"), 0, sha1);
  write_sample(scratch_file(s, "two.trace"), 0, sha2);
  write_sample(NULL, 0, sha_nofile);
  write_sample(NULL, 1, sha_other);
  assert_string_equal(sha1, sha2);
  assert_string_equal(sha1, sha_nofile);
  assert_string_not_equal(sha1, sha_other);

  size_t len = 0;
  char *a = read_all(scratch_file(s, "one.trace"), &len);
  sha256_of_bytes(a, len, sha_file);
  assert_string_equal(sha1, sha_file);
  char *b = read_all(scratch_file(s, "two.trace"), NULL);
  assert_string_equal(a, b);
  free(a);
  free(b);
}

static void running_sha256_covers_bytes_written_so_far(void **state) {
  (void)state;
  struct diag d = {0};
  struct trace_writer *w = trace_writer_open(NULL, NULL, 0, NULL, 0, &d);
  assert_non_null(w);
  char now[65], want[65];
  trace_sha256_hex(w, now);
  const char *hdr = "# apfsim-trace 1\n# header-end\n";
  sha256_of_bytes(hdr, strlen(hdr), want);
  assert_string_equal(now, want);
  assert_true(trace_event(w, 5, 0, "e", NULL));
  trace_sha256_hex(w, now); /* still buffered: not written, not hashed */
  assert_string_equal(now, want);
  assert_true(trace_flush_until(w, 6, &d));
  trace_sha256_hex(w, now);
  const char *more = "# apfsim-trace 1\n# header-end\n              5 cpu0  e\n";
  sha256_of_bytes(more, strlen(more), want);
  assert_string_equal(now, want);
  trace_abort(w);
}

static void nothing_appears_under_the_name_until_close(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  char path[256];
  snprintf(path, sizeof path, "%s", scratch_file(s, "late.trace"));
  struct trace_writer *w = trace_writer_open(path, header, N_HEADER, NULL, 0, &d);
  assert_non_null(w);
  assert_true(trace_event(w, 1, 0, "e", NULL));
  assert_true(trace_flush_until(w, 10, &d));
  assert_int_equal(access(path, F_OK), -1); /* only the temporary file exists */
  assert_int_equal(scratch_count(s), 1);
  assert_true(trace_close(w, NULL, &d));
  assert_int_equal(access(path, F_OK), 0);
  assert_int_equal(scratch_count(s), 1); /* the temporary file became the trace */
}

static void abort_leaves_nothing_and_keeps_an_old_trace(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  char path[256];
  snprintf(path, sizeof path, "%s", scratch_file(s, "keep.trace"));
  write_text(path, "previous contents\n");
  struct trace_writer *w = trace_writer_open(path, header, N_HEADER, NULL, 0, &d);
  assert_non_null(w);
  assert_true(trace_event(w, 1, 0, "e", NULL));
  trace_abort(w);
  assert_int_equal(scratch_count(s), 1);
  char *text = read_all(path, NULL);
  assert_string_equal(text, "previous contents\n");
  free(text);
}

static void an_event_before_the_flush_bound_fails_the_trace(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  char path[256];
  snprintf(path, sizeof path, "%s", scratch_file(s, "bad.trace"));
  struct trace_writer *w = trace_writer_open(path, header, N_HEADER, NULL, 0, &d);
  assert_non_null(w);
  assert_true(trace_event(w, 150, 0, "ok", NULL));
  assert_true(trace_flush_until(w, 200, &d));
  assert_false(trace_event(w, 199, 3, "kvm_exit", "reason HLT"));
  assert_true(trace_event(w, 200, 0, "ok", NULL));
  assert_false(trace_event(w, 10, 0, "also_late", NULL));
  assert_true(trace_flush_until(w, 100, &d)); /* a lower bound changes nothing */
  assert_false(trace_event(w, 150, 0, "still_late", NULL));
  assert_int_equal(trace_violations(w), 3);
  assert_false(trace_close(w, NULL, &d));
  assert_string_equal(d.msg,
                      "trace: event kvm_exit at t=199 ns (cpu3) arrived after the trace was flushed up to t=200 "
                      "ns; it can no longer be placed in order (3 events rejected in all); trace not written");
  assert_int_equal(scratch_count(s), 0);
}

static void invalid_header_and_events_are_refused(void **state) {
  (void)state;
  struct diag d = {0};
  static const struct trace_kv bad_key[] = {{"Seed", "1", 0}};
  assert_null(trace_writer_open(NULL, bad_key, 1, NULL, 0, &d));
  assert_string_equal(d.msg, "trace header: invalid key \"Seed\" (want [a-z0-9][a-z0-9._-]*)");
  static const struct trace_kv reserved[] = {{"header-end", "1", 0}};
  assert_null(trace_writer_open(NULL, reserved, 1, NULL, 0, &d));
  assert_string_equal(d.msg, "trace header: key \"header-end\" is reserved");
  static const struct trace_kv newline[] = {{"seed", "1\n2", 0}};
  assert_null(trace_writer_open(NULL, newline, 1, NULL, 0, &d));
  assert_string_equal(d.msg, "trace header: seed: value has a control character or surrounding space");
  static const struct trace_kv dup[] = {{"seed", "1", 0}, {"seed", "2", 0}};
  assert_null(trace_writer_open(NULL, dup, 2, NULL, 0, &d));
  assert_string_equal(d.msg, "trace header: seed: duplicate key");
  static const struct trace_block crlf[] = {{"config", "<a>\r\n</a>\r\n", 0}};
  assert_null(trace_writer_open(NULL, NULL, 0, crlf, 1, &d));
  assert_string_equal(d.msg, "trace header: block config: line 1: carriage return (normalize line endings first)");
  static const struct trace_block clash[] = {{"seed", "", 0}};
  assert_null(trace_writer_open(NULL, dup, 1, clash, 1, &d));
  assert_string_equal(d.msg, "trace header: block seed: name is also a header key");

  struct trace_writer *w = trace_writer_open(NULL, NULL, 0, NULL, 0, &d);
  assert_non_null(w);
  assert_false(trace_event(w, 1, 0, "Bad-Name", NULL));
  assert_false(trace_event(w, 1, 10000, "e", NULL));
  assert_false(trace_event(w, 1, -3, "e", NULL));
  assert_false(trace_event(w, 1, 0, "e", "two\nlines"));
  assert_false(trace_event(w, 1, 0, "e", "tab\there"));
  assert_int_equal(trace_violations(w), 5);
  assert_false(trace_close(w, NULL, &d));
  assert_string_equal(d.msg,
                      "trace: invalid event name \"Bad-Name\" at t=1 ns (want [a-z0-9_]+) (5 events rejected in "
                      "all); trace not written");
}

/* 200 quanta of 1000 ns; in each, 4 vCPUs plus host and dev emit events in
 * an order unrelated to time, and the quantum ends with a flush. The file
 * must equal a stable sort of all events by (time, source). */
struct emitted {
  uint64_t t;
  int cpu;
  int id;
};

static int cmp_emitted(const void *pa, const void *pb) {
  const struct emitted *a = pa, *b = pb;
  if (a->t != b->t) return a->t < b->t ? -1 : 1;
  if (a->cpu != b->cpu) return a->cpu < b->cpu ? -1 : 1;
  return a->id - b->id; /* emission order */
}

static void many_quanta_come_out_as_a_stable_sort(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  enum { QUANTA = 200, PER_QUANTUM = 50, QUANTUM_NS = 1000 };
  static struct emitted all[QUANTA * PER_QUANTUM];
  const char *path = scratch_file(s, "quanta.trace");
  struct trace_writer *w = trace_writer_open(path, NULL, 0, NULL, 0, &d);
  assert_non_null(w);
  uint64_t lcg = 12345;
  int n = 0;
  for (int q = 0; q < QUANTA; q++) {
    for (int i = 0; i < PER_QUANTUM; i++) {
      lcg = lcg * 6364136223846793005u + 1442695040888963407u;
      /* few distinct times, so ties on (time, source) are common */
      uint64_t t = (uint64_t)q * QUANTUM_NS + (lcg >> 33) % 8 * 125;
      int cpu = (int)((lcg >> 20) % 6) - 2;
      all[n] = (struct emitted){t, cpu, n};
      assert_true(trace_event(w, t, cpu, "e", "id %d", n));
      n++;
    }
    assert_true(trace_flush_until(w, (uint64_t)(q + 1) * QUANTUM_NS, &d));
  }
  assert_true(trace_close(w, NULL, &d));
  qsort(all, (size_t)n, sizeof all[0], cmp_emitted);

  struct trace_reader *r = trace_reader_open(path, &d);
  assert_non_null(r);
  struct trace_record rec;
  char want[32];
  for (int i = 0; i < n; i++) {
    assert_int_equal(trace_reader_next(r, &rec, &d), TRACE_READ_EVENT);
    assert_int_equal(rec.time_ns, all[i].t);
    assert_int_equal(rec.cpu, all[i].cpu);
    snprintf(want, sizeof want, "id %d", all[i].id);
    assert_string_equal(rec.fields, want);
  }
  assert_int_equal(trace_reader_next(r, &rec, &d), TRACE_READ_END);
  trace_reader_close(r);
}

static void unwritable_places_are_refused_at_open(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  char path[256], want[600];
  snprintf(path, sizeof path, "%s/no/such/dir/t.trace", s->dir);
  assert_null(trace_writer_open(path, header, N_HEADER, NULL, 0, &d));
  snprintf(want, sizeof want, "%s: cannot create the trace's temporary file %s/no/such/dir/.t.trace.tmp-%ld-0: "
           "No such file or directory", path, s->dir, (long)getpid());
  assert_string_equal(d.msg, want);
  assert_null(trace_writer_open(s->dir, header, N_HEADER, NULL, 0, &d));
  snprintf(want, sizeof want, "%s: the trace path names a directory", s->dir);
  assert_string_equal(d.msg, want);
  assert_int_equal(scratch_count(s), 0);
}

static void long_fields_are_kept_whole(void **state) {
  struct scratch *s = *state;
  struct diag d = {0};
  char path[256];
  snprintf(path, sizeof path, "%s", scratch_file(s, "long.trace"));
  static char big[20000];
  memset(big, 'x', sizeof big - 1);
  struct trace_writer *w = trace_writer_open(path, NULL, 0, NULL, 0, &d);
  assert_non_null(w);
  for (int i = 0; i < 50; i++) assert_true(trace_event(w, (uint64_t)i, 0, "big", "%d %s", i, big));
  assert_true(trace_close(w, NULL, &d));
  struct trace_reader *r = trace_reader_open(path, &d);
  assert_non_null(r);
  struct trace_record rec;
  for (int i = 0; i < 50; i++) {
    assert_int_equal(trace_reader_next(r, &rec, &d), TRACE_READ_EVENT);
    assert_int_equal(strlen(rec.fields), strlen(big) + 1 + (i < 10 ? 1 : 2));
  }
  assert_int_equal(trace_reader_next(r, &rec, &d), TRACE_READ_END);
  trace_reader_close(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(writes_the_documented_format, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(round_trip_preserves_header_blocks_and_order, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(same_input_gives_same_sha256_and_it_hashes_the_file, scratch_setup,
                                      scratch_teardown),
      cmocka_unit_test(running_sha256_covers_bytes_written_so_far),
      cmocka_unit_test_setup_teardown(nothing_appears_under_the_name_until_close, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(abort_leaves_nothing_and_keeps_an_old_trace, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(an_event_before_the_flush_bound_fails_the_trace, scratch_setup,
                                      scratch_teardown),
      cmocka_unit_test(invalid_header_and_events_are_refused),
      cmocka_unit_test_setup_teardown(many_quanta_come_out_as_a_stable_sort, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(unwritable_places_are_refused_at_open, scratch_setup, scratch_teardown),
      cmocka_unit_test_setup_teardown(long_fields_are_kept_whole, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name("trace writer", tests, NULL, NULL);
}
