/* test_machine_guest_bug.c — a guest bug is diagnosable: the host corrupts the
 * instruction a user process is about to run (a `ud2` written over it with machine_poke,
 * as a bad page would), the real guest kernel takes the #UD it does not handle, and the
 * run ends with outcome guest_panic and a verdict naming the vector, the RIP with its
 * guest symbol, the mode and the task. Also: a panic()'s record (bad boot info) and the
 * guest_panic trace event. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "loader/boot_info.h"

struct target {
  unsigned pid;
  unsigned vcpu;
  uint64_t rip;
};

/* Stops once `pid` runs in user mode on some vCPU (its RSP in the process's range). */
static bool in_user_mode(struct harness *h, unsigned vcpu, const struct machine_step *st, void *ctx) {
  struct target *t = ctx;
  (void)st;
  struct vcpu *v = machine_vcpu(h->m, vcpu);
  struct vcpu_sregs s;
  vcpu_get_sregs(v, &s);
  if (s.cpl != 3) return false;
  struct vcpu_regs r;
  vcpu_get_regs(v, &r);
  uint64_t ram;
  const uint8_t *mem = machine_guest_memory(h->m, &ram);
  struct apfsim_proc_stats ps;
  struct diag d;
  if (!guest_read_proc_stats(h->img, mem, ram, t->pid - 1, &ps, &d)) fail_msg("%s", d.msg);
  if (r.rsp < ps.range_base || r.rsp >= ps.range_base + ps.range_bytes) return false;
  t->vcpu = vcpu;
  t->rip = r.rip;
  return true;
}

static void unhandled_user_exception_names_vector_rip_symbol_and_task(void **state) {
  (void)state;
  const char *set[] = {"machine/vcpus=1"}; /* nobody else can run the poked code first */
  char trace_path[] = "/tmp/apfsim-machine-bug-XXXXXX";
  int fd = mkstemp(trace_path);
  assert_true(fd >= 0);
  close(fd);
  struct harness h;
  hx_start(&h, hx_config("boot.xml", set, 1), trace_path);
  struct target t = {.pid = 3};
  assert_false(hx_run(&h, MACHINE_NEVER, in_user_mode, &t)); /* stopped by in_user_mode */
  static const uint8_t ud2[] = {0x0f, 0x0b};
  struct diag d = {{0}};
  if (!machine_poke(h.m, t.rip, ud2, sizeof ud2, &d)) fail_msg("%s", d.msg);
  hx_run(&h, MACHINE_NEVER, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);

  print_message("verdict: %s\n", s.verdict);
  assert_int_equal(s.outcome, OUTCOME_GUEST_PANIC);
  char sym[128], want[512];
  guest_image_symbolize(h.img, t.rip, sym, sizeof sym);
  assert_non_null(strchr(sym, '+')); /* a symbol, not a bare address */
  snprintf(want, sizeof want, "#UD (vector 6) at rip %#" PRIx64 " = %s (user mode), task pid 3 (memory)", t.rip, sym);
  if (!strstr(s.verdict, want)) fail_msg("verdict: %s\nwanted: %s", s.verdict, want);
  assert_non_null(strstr(s.verdict, "guest panic on vCPU 0 at "));
  assert_non_null(strstr(s.verdict, "unhandled exception: #UD (vector 6) in user mode"));

  /* the trace carries the same facts as one event */
  struct trace_reader *r = trace_reader_open(trace_path, &d);
  assert_non_null(r);
  struct trace_record rec;
  unsigned panics = 0;
  while (trace_reader_next(r, &rec, &d) == TRACE_READ_EVENT) {
    if (strcmp(rec.name, "guest_panic")) continue;
    panics++;
    snprintf(want, sizeof want, "vcpu 0 pid 3 vector 6 rip %#" PRIx64 " sym %s ", t.rip, sym);
    assert_non_null(strstr(rec.fields, want));
  }
  assert_int_equal(panics, 1);
  trace_reader_close(r);
  unlink(trace_path);
  hx_free(&h);
}

static void bad_boot_info_is_a_kernel_panic_with_its_caller(void **state) {
  (void)state;
  struct harness h;
  hx_start(&h, hx_config("boot.xml", NULL, 0), NULL);
  /* the kernel checks the boot info first thing: break its magic before it runs */
  uint64_t ram;
  const uint8_t *mem = machine_guest_memory(h.m, &ram);
  uint64_t magic;
  memcpy(&magic, mem + APFSIM_BOOT_INFO_GPA, sizeof magic);
  magic ^= 1;
  struct diag d = {{0}};
  assert_true(machine_poke(h.m, APFSIM_BOOT_INFO_GPA, &magic, sizeof magic, &d));
  hx_run(&h, MACHINE_NEVER, NULL, NULL);
  struct run_summary s = {0};
  hx_finish(&h, &s);
  print_message("verdict: %s\n", s.verdict);
  assert_int_equal(s.outcome, OUTCOME_GUEST_PANIC);
  assert_non_null(strstr(s.verdict, "guest panic on vCPU 0 at "));
  assert_non_null(strstr(s.verdict, ": \"boot info: bad magic "));
  assert_non_null(strstr(s.verdict, "panic() called from start_kernel+0x"));
  assert_non_null(strstr(s.verdict, "(kernel mode), no task (idle or boot)"));
  hx_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unhandled_user_exception_names_vector_rip_symbol_and_task),
      cmocka_unit_test(bad_boot_info_is_a_kernel_panic_with_its_caller),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
