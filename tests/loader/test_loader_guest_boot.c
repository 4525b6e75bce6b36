/* test_loader_guest_boot.c — the real guest kernel booted by the loader on apfsim's vCPUs
 * (sim/cpu) with the x2APIC model (sim/cpu/lapic.c), under a minimal platform defined
 * here: round-robin quanta, time = retired instructions at 1 cycle each, halted vCPUs
 * skipping ahead to their next timer. Not the real platform (binding/) — just enough to
 * pin the kernel's behaviour end to end until that exists:
 *   boot on several vCPUs, workloads to completion, preemption, determinism, the panic
 *   channel, unhandled exceptions, the nested-NMI protocol (a second NMI while the handler
 *   runs; an NMI in its exit sequence) and the NMI's CR2 policies. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/lapic.h"
#include "cpu/vcpu.h"
#include "helpers.h"
#include "loader/boot_info.h"

#define MAX_VCPUS 4
#define QUANTUM 5000
#define MHZ 2000

struct node {
  struct vcpu *v;
  struct lapic apic;
  uint64_t idle_ns;
  bool halted;
};

enum machine_state { M_RUNNING, M_SHUTDOWN, M_PANIC, M_FAILED };

struct machine {
  struct guest_image *img;
  uint8_t *mem;
  unsigned nv;
  struct node cpu[MAX_VCPUS];
  struct vcpu_msr_table *msrs;
  struct vcpu_platform plat;
  struct vcpu_text_range text[4];
  struct apfsim_boot_info bi;
  char console[32768];
  size_t console_len;
  enum machine_state state;
  uint64_t panic_gpa;
  char failure[512];
  uint64_t instructions;
};

static struct guest_image *image; /* opened once for the group */

static uint64_t now_ns(const struct node *n) { return vcpu_retired(n->v) * 1000 / MHZ + n->idle_ns; }

static struct node *node_of(struct machine *m, struct vcpu *v) { return &m->cpu[vcpu_id(v)]; }

static uint64_t cb_tsc(void *ctx, struct vcpu *v) { return now_ns(node_of(ctx, v)) * MHZ / 1000; }

static enum vcpu_cb cb_out(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t value) {
  struct machine *m = ctx;
  (void)v;
  (void)bytes;
  switch (port) {
  case APFSIM_PORT_CONSOLE:
    if (m->console_len + 1 < sizeof m->console) m->console[m->console_len++] = (char)value;
    return VCPU_CB_OK;
  case APFSIM_PORT_PANIC:
    m->state = M_PANIC;
    m->panic_gpa = value;
    return VCPU_CB_EXIT;
  case APFSIM_PORT_SHUTDOWN:
    m->state = M_SHUTDOWN;
    return VCPU_CB_EXIT;
  default:
    return VCPU_CB_OK;
  }
}

static int cb_irq_ack(void *ctx, struct vcpu *v) {
  struct node *n = node_of(ctx, v);
  return lapic_pending_vector(&n->apic) < 0 ? -1 : lapic_acknowledge(&n->apic);
}

static enum vcpu_msr_result apic_read(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value) {
  struct node *n = node_of(ctx, v);
  return lapic_rdmsr(&n->apic, msr, now_ns(n), value) == LAPIC_MSR_OK ? VCPU_MSR_OK : VCPU_MSR_GP;
}

static enum vcpu_msr_result apic_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  struct machine *m = ctx;
  struct node *n = node_of(m, v);
  struct lapic_ipi ipi;
  if (lapic_wrmsr(&n->apic, msr, value, now_ns(n), &ipi) != LAPIC_MSR_OK) return VCPU_MSR_GP;
  for (unsigned i = 0; ipi.valid && i < m->nv; i++) {
    if (!lapic_ipi_targets(&ipi, &m->cpu[i].apic)) continue;
    if (ipi.mode == LAPIC_DM_FIXED) lapic_accept(&m->cpu[i].apic, ipi.vector);
    if (ipi.mode == LAPIC_DM_NMI) vcpu_queue_nmi(m->cpu[i].v);
  }
  return VCPU_MSR_OK;
}

/* A configuration as configs/boot.xml might have it, scaled down. */
static struct sim_config *small_config(unsigned vcpus) {
  struct sim_config *cfg = config_new();
  cfg->machine.vcpus = vcpus;
  cfg->machine.guest_memory_bytes = GUEST_RAM;
  cfg->costs.cpu_mhz = MHZ;
  cfg->guest.timer_period_ns = 1000000;
  cfg->workload.n_processes = 3;
  cfg->workload.processes[0] =
      (struct process_config){.kind = WORKLOAD_COMPUTE, .count = 2, .ops = 300, .compute_per_op = 1000};
  cfg->workload.processes[1] = (struct process_config){
      .kind = WORKLOAD_MEMORY, .pattern = ACCESS_RANDOM, .count = 1, .ops = 20000, .working_set_bytes = 1 << 20};
  cfg->workload.processes[2] = (struct process_config){.kind = WORKLOAD_MIXED, .pattern = ACCESS_ZIPF, .count = 1, .ops = 5000,
                                                       .working_set_bytes = 2 << 20, .zipf_s_milli = 900, .compute_per_op = 100};
  return cfg;
}

static void machine_boot(struct machine *m, const struct sim_config *cfg, void (*edit)(struct apfsim_boot_info *)) {
  struct diag d = {{0}};
  memset(m, 0, sizeof *m);
  m->img = image;
  m->nv = cfg->machine.vcpus;
  m->mem = new_guest_ram(GUEST_RAM);
  memset(m->mem, 0, GUEST_RAM);
  if (!guest_image_load(image, m->mem, GUEST_RAM, &d) ||
      !guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &m->bi, &d) ||
      !guest_boot_info_write(image, &m->bi, m->mem, GUEST_RAM, NULL, &d))
    fail_msg("%s", d.msg);
  if (edit) edit((struct apfsim_boot_info *)(m->mem + APFSIM_BOOT_INFO_GPA));

  m->msrs = vcpu_msr_table_new();
  struct vcpu_msr_handler apic = {.name = "x2apic", .first = LAPIC_MSR_X2APIC_FIRST, .last = LAPIC_MSR_X2APIC_LAST,
                                  .read = apic_read, .write = apic_write, .ctx = m};
  assert_true(vcpu_msr_register(m->msrs, &apic, &d));
  m->plat = (struct vcpu_platform){.ctx = m, .tsc = cb_tsc, .port_out = cb_out, .irq_ack = cb_irq_ack};
  uint64_t ranges[4][2];
  size_t n_text = guest_image_text_ranges(image, ranges, 4);
  for (size_t i = 0; i < n_text; i++) m->text[i] = (struct vcpu_text_range){ranges[i][0], ranges[i][1]};

  for (unsigned i = 0; i < m->nv; i++) {
    struct node *n = &m->cpu[i];
    struct vcpu_config vc = {.id = i, .mem = m->mem, .mem_bytes = GUEST_RAM, .text = m->text, .n_text = n_text,
                             .platform = &m->plat, .msrs = m->msrs, .costs = {.cpi_milli = 1000}, .cpuid_x2apic = true};
    n->v = vcpu_create(&vc, &d);
    if (!n->v) fail_msg("%s", d.msg);
    struct guest_entry_state st;
    assert_true(guest_entry_state(image, i, m->nv, &st, &d));
    struct lapic_config lc = {.apic_id = st.x2apic_id, .timer_hz = GUEST_APIC_TIMER_KHZ_KVM * 1000, .maxphyaddr = 46, .bsp = i == 0};
    assert_true(lapic_init(&n->apic, &lc, &d));
    struct lapic_ipi ipi;
    assert_int_equal(lapic_wrmsr(&n->apic, LAPIC_MSR_APIC_BASE, st.apic_base, 0, &ipi), LAPIC_MSR_OK);
    struct vcpu_boot b = {.rip = st.rip, .rsp = st.rsp, .rflags = st.rflags, .cr0 = st.cr0, .cr3 = st.cr3, .cr4 = st.cr4,
                          .efer = st.efer, .gdt_base = st.gdt_base, .gdt_limit = st.gdt_limit, .idt_base = st.idt_base,
                          .idt_limit = st.idt_limit, .cs = st.cs, .ss = st.ss, .ds = st.ds, .tr = st.tr};
    if (!vcpu_boot(n->v, &b, &d)) fail_msg("%s", d.msg);
    struct vcpu_regs r;
    vcpu_get_regs(n->v, &r);
    r.rdi = st.rdi;
    r.rsi = st.rsi;
    vcpu_set_regs(n->v, &r);
  }
}

static void machine_free(struct machine *m) {
  for (unsigned i = 0; i < m->nv; i++) vcpu_destroy(m->cpu[i].v);
  vcpu_msr_table_free(m->msrs);
  free(m->mem);
}

/* One quantum on every vCPU, in index order. */
static void machine_round(struct machine *m) {
  for (unsigned i = 0; i < m->nv && m->state == M_RUNNING; i++) {
    struct node *n = &m->cpu[i];
    lapic_advance(&n->apic, now_ns(n));
    if (n->halted && lapic_pending_vector(&n->apic) < 0) {
      /* skip ahead: to the busiest vCPU's time, but not past this one's next tick */
      uint64_t target = lapic_next_timer_ns(&n->apic);
      for (unsigned j = 0; j < m->nv; j++)
        if (!m->cpu[j].halted && now_ns(&m->cpu[j]) > now_ns(n) && now_ns(&m->cpu[j]) < target) target = now_ns(&m->cpu[j]);
      if (target != LAPIC_NO_TIMER && target > now_ns(n)) n->idle_ns += target - now_ns(n);
      lapic_advance(&n->apic, now_ns(n));
      if (lapic_pending_vector(&n->apic) < 0) continue;
    }
    n->halted = false;
    vcpu_set_irq_line(n->v, lapic_pending_vector(&n->apic) >= 0);
    struct vcpu_exit ex;
    bool ok = vcpu_run(n->v, QUANTUM, &ex);
    m->instructions += ex.instructions;
    if (!ok || ex.reason == VCPU_EXIT_TRIPLE_FAULT || ex.reason == VCPU_EXIT_INTERNAL_ERROR) {
      char sym[128];
      guest_image_symbolize(image, ex.rip, sym, sizeof sym);
      snprintf(m->failure, sizeof m->failure, "vCPU %u: %s at %s: %s", i, vcpu_exit_reason_name(ex.reason), sym, ex.message);
      m->state = M_FAILED;
    }
    if (ex.reason == VCPU_EXIT_HLT) n->halted = true;
  }
}

static void machine_run(struct machine *m, unsigned max_rounds) {
  for (unsigned r = 0; r < max_rounds && m->state == M_RUNNING; r++) machine_round(m);
  if (m->state == M_FAILED) fail_msg("%s\nconsole:\n%.*s", m->failure, (int)m->console_len, m->console);
}

static struct apfsim_proc_stats proc_stats(struct machine *m, unsigned k) {
  struct apfsim_proc_stats ps;
  struct diag d;
  assert_true(guest_read_proc_stats(image, m->mem, GUEST_RAM, k, &ps, &d));
  return ps;
}

static struct apfsim_vcpu_stats vcpu_stats(struct machine *m, unsigned i) {
  struct apfsim_vcpu_stats vs;
  struct diag d;
  assert_true(guest_read_vcpu_stats(image, m->mem, GUEST_RAM, i, &vs, &d));
  return vs;
}

static struct apfsim_panic_record panic_record(struct machine *m) {
  struct apfsim_panic_record r;
  struct diag d = {{0}};
  if (!guest_read_panic_record(m->mem, GUEST_RAM, m->panic_gpa, &r, &d)) fail_msg("%s", d.msg);
  return r;
}

/* ---- tests ---- */

static void workload_runs_to_shutdown_on_two_vcpus(void **state) {
  (void)state;
  struct sim_config *cfg = small_config(2);
  struct machine *m = malloc(sizeof *m);
  machine_boot(m, cfg, NULL);
  machine_run(m, 20000);
  assert_int_equal(m->state, M_SHUTDOWN);
  const uint64_t targets[] = {300, 300, 20000, 5000};
  for (unsigned k = 0; k < 4; k++) {
    struct apfsim_proc_stats ps = proc_stats(m, k);
    assert_int_equal(ps.pid, k + 1);
    assert_int_equal(ps.state, APFSIM_PROC_EXITED);
    assert_int_equal(ps.ops_done, targets[k]);
    assert_int_equal(ps.exit_code, 0);
    assert_true(ps.exit_tsc > ps.start_tsc);
  }
  /* random over 256 pages, 20000 touches: every page, plus the stack page */
  assert_int_equal(proc_stats(m, 2).demand_faults, 257);
  assert_int_equal(proc_stats(m, 4).pid, 0);
  for (unsigned i = 0; i < 2; i++) assert_int_equal(vcpu_stats(m, i).online, 1);
  m->console[m->console_len] = '\0';
  assert_non_null(strstr(m->console, "apfsim guest kernel, boot contract v2: 2 vCPUs, 64 MiB RAM"));
  assert_non_null(strstr(m->console, "all processes exited\n"));
  machine_free(m);
  free(m);
  free(cfg);
}

static void one_vcpu_shares_time_round_robin(void **state) {
  (void)state;
  struct sim_config *cfg = small_config(1);
  cfg->workload.n_processes = 1;
  cfg->workload.processes[0] = (struct process_config){.kind = WORKLOAD_COMPUTE, .count = 3, .ops = 2000, .compute_per_op = 1000};
  struct machine *m = malloc(sizeof *m);
  machine_boot(m, cfg, NULL);
  machine_run(m, 20000);
  assert_int_equal(m->state, M_SHUTDOWN);
  for (unsigned k = 0; k < 3; k++) assert_true(proc_stats(m, k).switches_in >= 3); /* preempted by the tick */
  assert_true(vcpu_stats(m, 0).ticks >= 5);
  machine_free(m);
  free(m);
  free(cfg);
}

static void two_runs_are_identical(void **state) {
  (void)state;
  struct sim_config *cfg = small_config(2);
  struct machine *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  machine_boot(a, cfg, NULL);
  machine_run(a, 20000);
  machine_boot(b, cfg, NULL);
  machine_run(b, 20000);
  assert_int_equal(a->instructions, b->instructions);
  assert_int_equal(a->console_len, b->console_len);
  assert_memory_equal(a->console, b->console, a->console_len);
  assert_memory_equal(a->mem, b->mem, GUEST_RAM); /* all of guest memory, stats included */
  machine_free(a);
  machine_free(b);
  free(a);
  free(b);
  free(cfg);
}

static void break_magic(struct apfsim_boot_info *bi) { bi->magic ^= 1; }

static void bad_boot_info_panics_through_the_record(void **state) {
  (void)state;
  struct sim_config *cfg = small_config(2);
  struct machine *m = malloc(sizeof *m);
  machine_boot(m, cfg, break_magic);
  machine_run(m, 100);
  assert_int_equal(m->state, M_PANIC);
  struct apfsim_panic_record r = panic_record(m);
  assert_string_equal(r.message, "boot info: bad magic 0x4f464e49544f4f43");
  assert_int_equal(r.vector, APFSIM_PANIC_NO_VECTOR);
  assert_int_equal(r.vcpu, 0);
  assert_int_equal(r.pid, APFSIM_PANIC_NO_PID);
  char sym[64];
  guest_image_symbolize(image, r.rip, sym, sizeof sym);
  assert_true(strncmp(sym, "start_kernel+", 13) == 0);
  m->console[m->console_len] = '\0';
  assert_non_null(strstr(m->console, "PANIC: boot info: bad magic 0x4f464e49544f4f43\n"));
  machine_free(m);
  free(m);
  free(cfg);
}

/* Runs vCPU 0 until it is at CPL3 inside process `pid`'s code, with RSP in the top page
 * of its stack (not in the memory op's fresh-stack access, APFSIM_USER_F_FRESH_STACK_ACCESS). */
static void run_until_user(struct machine *m, unsigned pid) {
  /* no interrupts while the test steers vCPU 0 by hand (the APIC keeps them pending) */
  vcpu_set_irq_line(m->cpu[0].v, false);
  for (unsigned r = 0; r < 200000; r++) {
    struct vcpu_sregs s;
    vcpu_get_sregs(m->cpu[0].v, &s);
    if (s.cpl == 3) {
      struct vcpu_regs regs;
      vcpu_get_regs(m->cpu[0].v, &regs);
      struct apfsim_proc_stats ps = proc_stats(m, pid - 1);
      struct apfsim_proc_layout l;
      apfsim_proc_layout(&m->bi.classes[ps.class_index], &l);
      uint64_t top = ps.range_base + l.stack_off + l.stack_bytes;
      if (regs.rsp >= top - APFSIM_PAGE_SIZE && regs.rsp < top) return;
    }
    struct vcpu_exit ex;
    vcpu_run(m->cpu[0].v, 97, &ex);
    assert_int_equal(m->state, M_RUNNING);
  }
  fail_msg("pid %u never ran in user mode on vCPU 0", pid);
}

static void unhandled_user_exception_names_vector_rip_and_task(void **state) {
  (void)state;
  struct sim_config *cfg = small_config(1);
  struct machine *m = malloc(sizeof *m);
  machine_boot(m, cfg, NULL);
  run_until_user(m, 3);
  struct vcpu_regs regs;
  vcpu_get_regs(m->cpu[0].v, &regs);
  vcpu_queue_exception(m->cpu[0].v, 6, VCPU_NO_ERROR_CODE, 0); /* #UD */
  machine_run(m, 10);
  assert_int_equal(m->state, M_PANIC);
  struct apfsim_panic_record r = panic_record(m);
  assert_int_equal(r.vector, 6);
  assert_int_equal(r.pid, 3);
  assert_int_equal(r.rip, regs.rip);
  assert_int_equal(r.cs & 3, 3);
  char want[256];
  snprintf(want, sizeof want,
           "unhandled exception: #UD (vector 6) in user mode at rip %#" PRIx64 ", error code 0x0, cr2 %#" PRIx64 ", task memory pid 3, vCPU 0",
           regs.rip, r.cr2);
  assert_string_equal(r.message, want);
  machine_free(m);
  free(m);
  free(cfg);
}

/* Points the interrupted user frame pointer at the unmapped guard page after the parameter
 * page, so the NMI's user-stack read takes a real guest #PF inside the NMI (fixed up), then
 * single-steps until the NMI has returned to the user instruction. `second_at` (a symbol
 * prefix): where to raise a second NMI. Restores RBP afterwards. */
static void nmi_with_user_fault(struct machine *m, const char *second_at, uint64_t cr2_marker, uint64_t *cr2_after) {
  struct vcpu *v = m->cpu[0].v;
  run_until_user(m, 3);
  struct vcpu_regs saved, r;
  vcpu_get_regs(v, &saved);
  r = saved;
  r.rbp = proc_stats(m, 2).range_base + APFSIM_PAGE_SIZE;
  vcpu_set_regs(v, &r);
  vcpu_set_cr2(v, cr2_marker);
  vcpu_queue_nmi(v);
  bool second = second_at == NULL;
  for (unsigned steps = 0;; steps++) {
    struct vcpu_exit ex;
    vcpu_run(v, 1, &ex);
    vcpu_get_regs(v, &r);
    char sym[96];
    guest_image_symbolize(image, r.rip, sym, sizeof sym);
    if (!second && strncmp(sym, second_at, strlen(second_at)) == 0) {
      vcpu_queue_nmi(v);
      second = true;
    }
    if (r.rip == saved.rip) break;
    if (steps > 20000) fail_msg("the NMI never returned (at %s)", sym);
  }
  assert_true(second);
  *cr2_after = vcpu_cr2(v);
  r.rbp = saved.rbp;
  vcpu_set_regs(v, &r);
}

static void nmi_during_the_handler_is_latched_and_repeated(void **state) {
  (void)state;
  struct sim_config *cfg = small_config(1);
  cfg->guest.nmi_reads_user_stack = true;
  struct machine *m = malloc(sizeof *m);
  machine_boot(m, cfg, NULL);
  uint64_t cr2;
  /* second NMI while the first's user read runs: blocked by the CPU until the #PF's IRET,
   * then taken inside the handler, where the guest latches it */
  nmi_with_user_fault(m, "copy_user_generic", 0, &cr2);
  struct apfsim_vcpu_stats vs = vcpu_stats(m, 0);
  assert_int_equal(vs.nmis, 2);
  assert_int_equal(vs.nmi_nested, 1);
  assert_int_equal(vs.nmi_user_faults, 2);
  machine_run(m, 20000);
  assert_int_equal(m->state, M_SHUTDOWN);
  machine_free(m);
  free(m);
  free(cfg);
}

static void nmi_in_the_exit_sequence_takes_over_the_frame(void **state) {
  (void)state;
  static const char *const points[] = {"nmi_exit_window", "nmi_exit_window+0xa", "nmi_exit_window+0x34",
                                       "nmi_exit_window+0x41"};
  for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
    struct sim_config *cfg = small_config(1);
    cfg->guest.nmi_reads_user_stack = true;
    struct machine *m = malloc(sizeof *m);
    machine_boot(m, cfg, NULL);
    uint64_t cr2;
    nmi_with_user_fault(m, points[i], 0, &cr2);
    struct apfsim_vcpu_stats vs = vcpu_stats(m, 0);
    assert_int_equal(vs.nmis, 2);
    assert_int_equal(vs.nmi_nested, 0);
    machine_run(m, 20000);
    assert_int_equal(m->state, M_SHUTDOWN);
    machine_free(m);
    free(m);
    free(cfg);
  }
}

/* DESIGN.md §2 "The race": the NMI's nested #PF writes CR2. Without a save the
 * interrupted context sees the nested fault's address; Linux's save/restore puts it back. */
static void nmi_cr2_policy_decides_what_the_interrupted_context_sees(void **state) {
  (void)state;
  const uint64_t marker = 0x5a5a000;
  for (int policy = 0; policy < 2; policy++) {
    struct sim_config *cfg = small_config(1);
    cfg->guest.nmi_reads_user_stack = true;
    cfg->guest.nmi_cr2 = policy ? NMI_CR2_SAVE_RESTORE : NMI_CR2_NONE;
    struct machine *m = malloc(sizeof *m);
    machine_boot(m, cfg, NULL);
    uint64_t cr2;
    nmi_with_user_fault(m, NULL, marker, &cr2);
    uint64_t guard = proc_stats(m, 2).range_base + APFSIM_PAGE_SIZE;
    assert_int_equal(cr2, policy ? marker : guard);
    machine_free(m);
    free(m);
    free(cfg);
  }
}

static int setup(void **state) {
  (void)state;
  struct diag d = {{0}};
  if (!vcpu_backend_selfcheck(&d)) {
    fprintf(stderr, "vCPU self-check: %s\n", d.msg);
    return -1;
  }
  image = guest_image_open(APFSIM_GUEST_KERNEL, &d);
  return image ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  guest_image_free(image);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(workload_runs_to_shutdown_on_two_vcpus),
      cmocka_unit_test(one_vcpu_shares_time_round_robin),
      cmocka_unit_test(two_runs_are_identical),
      cmocka_unit_test(bad_boot_info_panics_through_the_record),
      cmocka_unit_test(unhandled_user_exception_names_vector_rip_and_task),
      cmocka_unit_test(nmi_during_the_handler_is_latched_and_repeated),
      cmocka_unit_test(nmi_in_the_exit_sequence_takes_over_the_frame),
      cmocka_unit_test(nmi_cr2_policy_decides_what_the_interrupted_context_sees),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
