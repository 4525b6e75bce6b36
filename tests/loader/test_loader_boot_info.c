/* test_loader_boot_info.c — the simulator's half of the boot contract: configuration ->
 * boot info (every field, and a message naming the field for what the guest cannot do),
 * the layout check against the real image, writing the boot info page, and reading back
 * what the guest reports (panic record, statistics) with bounds checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "loader/boot_info.h"

static struct guest_image *img;

static int setup(void **state) {
  (void)state;
  struct diag d = {{0}};
  img = guest_image_open(APFSIM_GUEST_KERNEL, &d);
  return img ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  guest_image_free(img);
  return 0;
}

/* A two-class workload on 2 vCPUs, as configs/boot.xml might have it. */
static struct sim_config *workload_config(void) {
  struct sim_config *cfg = config_new();
  snprintf(cfg->source_path, sizeof cfg->source_path, "test.xml");
  cfg->seed = 7;
  cfg->machine.vcpus = 2;
  cfg->machine.guest_memory_bytes = GUEST_RAM;
  cfg->costs.cpu_mhz = 2500;
  cfg->guest.timer_period_ns = 4000000;
  cfg->guest.hung_task_timeout_ns = 2000000000;
  cfg->guest.pf_entry_order = PF_ENTRY_REASON_FIRST;
  cfg->guest.nmi_cr2 = NMI_CR2_STASH_REASON;
  cfg->guest.nmi_reads_user_stack = true;
  cfg->apf.protocol = APF_2010;
  cfg->apf.send_always = true;
  cfg->apf.page_ready_vector = 0xf3;
  cfg->apf.error_reporting = APF_ERR_SYNC_EXCEPTION;
  cfg->workload.n_processes = 2;
  cfg->workload.processes[0] = (struct process_config){.kind = WORKLOAD_COMPUTE, .pattern = ACCESS_RANDOM, .count = 2,
                                                       .working_set_bytes = 1 << 20, .ops = 100, .compute_per_op = 1000};
  cfg->workload.processes[1] = (struct process_config){.kind = WORKLOAD_MIXED, .pattern = ACCESS_ZIPF, .count = 3,
                                                       .working_set_bytes = 4 << 20, .ops = 0, .compute_per_op = 10,
                                                       .zipf_s_milli = 990};
  return cfg;
}

static void every_field_comes_from_the_config(void **state) {
  (void)state;
  struct sim_config *cfg = workload_config();
  struct apfsim_boot_info bi;
  struct diag d = {{0}};
  assert_true(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_int_equal(bi.magic, APFSIM_BOOT_MAGIC);
  assert_int_equal(bi.version, APFSIM_BOOT_VERSION);
  assert_int_equal(bi.size, sizeof bi);
  assert_int_equal(bi.n_vcpus, 2);
  assert_int_equal(bi.ram_bytes, GUEST_RAM);
  assert_int_equal(bi.tsc_khz, 2500000);
  assert_int_equal(bi.apic_timer_khz, 1000000);
  assert_int_equal(bi.timer_period_ns, 4000000);
  assert_int_equal(bi.hung_task_timeout_ns, 2000000000);
  assert_int_equal(bi.seed, 7);
  assert_int_equal(bi.apf_protocol, APFSIM_APF_2010);
  assert_int_equal(bi.pf_entry_order, APFSIM_PF_REASON_FIRST);
  assert_int_equal(bi.nmi_cr2_policy, APFSIM_NMI_CR2_STASH_REASON);
  assert_int_equal(bi.not_present_delivery, APFSIM_NP_PF);
  assert_int_equal(bi.flags, APFSIM_BOOT_F_NMI_READS_USER_STACK | APFSIM_BOOT_F_APF_SEND_ALWAYS | APFSIM_BOOT_F_VE_PAGE_ERROR);
  assert_int_equal(bi.page_ready_vector, 0xf3);
  assert_int_equal(bi.dax_bytes, 0);
  assert_int_equal(bi.n_classes, 2);
  assert_int_equal(bi.classes[0].kind, APFSIM_WORK_COMPUTE);
  assert_int_equal(bi.classes[0].count, 2);
  assert_int_equal(bi.classes[0].working_set_bytes, 0); /* compute touches no working set */
  assert_int_equal(bi.classes[0].ops, 100);
  assert_int_equal(bi.classes[0].compute_per_op, 1000);
  assert_int_equal(bi.classes[1].kind, APFSIM_WORK_MIXED);
  assert_int_equal(bi.classes[1].pattern, APFSIM_ACCESS_ZIPF);
  assert_int_equal(bi.classes[1].working_set_bytes, 4 << 20);
  assert_int_equal(bi.classes[1].zipf_s_milli, 990);
  assert_int_equal(bi.classes[1].ops, 0);
  for (size_t i = 0; i < sizeof bi.reserved / sizeof bi.reserved[0]; i++) assert_int_equal(bi.reserved[i], 0);
  free(cfg);
}

static void defaults_give_a_bootable_info(void **state) {
  (void)state;
  struct sim_config *cfg = config_new();
  struct apfsim_boot_info bi;
  struct diag d = {{0}};
  assert_true(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_int_equal(bi.apf_protocol, APFSIM_APF_2020);
  assert_int_equal(bi.pf_entry_order, APFSIM_PF_CR2_FIRST);
  assert_int_equal(bi.nmi_cr2_policy, APFSIM_NMI_CR2_SAVE_RESTORE);
  assert_int_equal(bi.n_classes, 0);
  free(cfg);
}

/* The guest variants of issue 7: #VE delivery, page-ready errors (2020 only), DAX kinds. */
static void race_and_truncation_variants_map_to_the_boot_info(void **state) {
  (void)state;
  struct apfsim_boot_info bi;
  struct diag d = {{0}};
  struct sim_config *cfg = workload_config();
  cfg->apf.protocol = APF_2020;
  cfg->apf.error_reporting = APF_ERR_PAGE_READY;
  cfg->guest.not_present_delivery = NOT_PRESENT_VE;
  cfg->dax.enabled = true;
  cfg->dax.window_gpa = UINT64_C(0x100000000);
  cfg->dax.window_bytes = 8 << 20;
  cfg->workload.processes[0].kind = WORKLOAD_DAX_READ;
  cfg->workload.processes[0].pattern = ACCESS_SEQUENTIAL;
  cfg->workload.processes[1].kind = WORKLOAD_DAX_COPY;
  cfg->workload.processes[1].pattern = ACCESS_RANDOM;
  assert_true(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_int_equal(bi.not_present_delivery, APFSIM_NP_VE);
  assert_int_equal(bi.flags, APFSIM_BOOT_F_NMI_READS_USER_STACK | APFSIM_BOOT_F_APF_SEND_ALWAYS | APFSIM_BOOT_F_APF_PAGE_ERROR);
  assert_int_equal(bi.dax_gpa, UINT64_C(0x100000000));
  assert_int_equal(bi.dax_bytes, 8 << 20);
  assert_int_equal(bi.classes[0].kind, APFSIM_WORK_DAX_READ);
  assert_int_equal(bi.classes[0].working_set_bytes, 0);
  assert_int_equal(bi.classes[1].kind, APFSIM_WORK_DAX_COPY);
  /* DAX processes need page tables for the window: it fits, and the pool grew */
  struct apfsim_guest_layout with, without;
  assert_null(apfsim_guest_layout(&bi, img->contract.image_end, &with));
  bi.dax_bytes = 4096;
  assert_null(apfsim_guest_layout(&bi, img->contract.image_end, &without));
  assert_true(with.user_start >= without.user_start);
  cfg->apf.error_reporting = APF_ERR_FORCE_SYNC;
  assert_true(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_int_equal(bi.flags, APFSIM_BOOT_F_NMI_READS_USER_STACK | APFSIM_BOOT_F_APF_SEND_ALWAYS);
  free(cfg);
}

/* What the guest kernel cannot do is refused with the configuration field. */
static void unsupported_settings_name_their_field(void **state) {
  (void)state;
  struct apfsim_boot_info bi;
  struct diag d = {{0}};
  struct sim_config *cfg;

  cfg = workload_config();
  cfg->machine.guest_memory_bytes = 8 << 20;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: machine/guest-memory: the guest kernel needs at least 16 MiB, in whole 2 MiB");
  free(cfg);

  cfg = workload_config();
  cfg->machine.guest_memory_bytes = (64 << 20) + 4096;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: machine/guest-memory: the guest kernel needs at least 16 MiB, in whole 2 MiB");
  free(cfg);

  cfg = workload_config(); /* protocol 2010 */
  cfg->guest.not_present_delivery = NOT_PRESENT_VE;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: guest/not-present-delivery: #VE delivery of not-present events needs apf/protocol 2020");
  free(cfg);

  cfg = workload_config();
  cfg->apf.error_reporting = APF_ERR_PAGE_READY;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: apf/error-reporting: page-ready error reporting is an extension of apf/protocol 2020");
  free(cfg);

  cfg = workload_config();
  cfg->workload.processes[1].kind = WORKLOAD_DAX_COPY;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: workload/process[2]/pattern: DAX workloads read sequential or random lines, not zipf");
  cfg->workload.processes[1].pattern = ACCESS_RANDOM;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: workload/process[2]/@kind: a DAX workload needs the DAX window (dax/@enabled)");
  cfg->dax.enabled = true;
  cfg->dax.window_gpa = 16 << 20; /* inside guest RAM */
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: dax/window-gpa: the DAX window must lie above guest RAM");
  free(cfg);

  cfg = workload_config();
  cfg->apf.page_ready_vector = 0xec;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: apf/page-ready-vector: the guest kernel uses 0x80 (int 0x80), 0xec (timer), "
                             "0xfd (reschedule) and 0xff (spurious) itself");
  free(cfg);

  cfg = workload_config();
  cfg->workload.processes[1].working_set_bytes = 100;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: workload/process[2]/working-set: a memory workload needs a working set of whole 4 KiB pages, at least one");
  free(cfg);

  cfg = workload_config();
  cfg->workload.processes[0].count = 200;
  cfg->workload.processes[1].count = 57;
  assert_false(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_string_equal(d.msg, "test.xml: workload/process: more than 256 processes in total");
  free(cfg);
}

static void write_places_the_page_and_reports_the_layout(void **state) {
  (void)state;
  struct sim_config *cfg = workload_config();
  struct apfsim_boot_info bi;
  struct apfsim_guest_layout layout;
  struct diag d = {{0}};
  uint8_t *mem = new_guest_ram(GUEST_RAM);
  memset(mem, 0xAA, GUEST_RAM);
  assert_true(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_true(guest_boot_info_write(img, &bi, mem, GUEST_RAM, &layout, &d));
  assert_memory_equal(mem + APFSIM_BOOT_INFO_GPA, &bi, sizeof bi);
  for (uint64_t b = sizeof bi; b < APFSIM_BOOT_INFO_BYTES; b++) assert_int_equal(mem[APFSIM_BOOT_INFO_GPA + b], 0);
  assert_int_equal(mem[APFSIM_BOOT_INFO_GPA - 1], 0xAA);
  assert_int_equal(mem[APFSIM_BOOT_INFO_GPA + APFSIM_BOOT_INFO_BYTES], 0xAA);
  assert_int_equal(layout.n_processes, 5);
  assert_int_equal(layout.pool_start, img->contract.image_end);
  assert_int_equal(layout.user_start % APFSIM_LARGE_PAGE_SIZE, 0);
  assert_true(layout.user_start > layout.pool_start);
  /* 2 compute ranges of 2 MiB, 3 mixed ranges of ws 4 MiB + zipf table 8 KiB + stack: 6 MiB */
  assert_int_equal(layout.user_end - layout.user_start, 2 * (2 << 20) + 3 * (6 << 20));
  assert_true(layout.user_end <= GUEST_RAM);
  free(mem);
  free(cfg);
}

static void write_refuses_a_workload_larger_than_ram(void **state) {
  (void)state;
  struct sim_config *cfg = workload_config();
  struct apfsim_boot_info bi;
  struct diag d = {{0}};
  uint8_t *mem = new_guest_ram(GUEST_RAM);
  memset(mem, 0xAA, GUEST_RAM);
  cfg->workload.processes[1].working_set_bytes = 32 << 20; /* 3 x 34 MiB > 64 MiB */
  assert_true(guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d));
  assert_false(guest_boot_info_write(img, &bi, mem, GUEST_RAM, NULL, &d));
  char prefix[600];
  snprintf(prefix, sizeof prefix, "%s: machine/guest-memory: the workload does not fit in guest RAM: the kernel and 5 processes need ",
           APFSIM_GUEST_KERNEL);
  assert_true(strncmp(d.msg, prefix, strlen(prefix)) == 0);
  assert_non_null(strstr(d.msg, " MiB, the machine has 64 MiB"));
  assert_int_equal(mem[APFSIM_BOOT_INFO_GPA], 0xAA); /* nothing written */

  assert_false(guest_boot_info_write(img, &bi, mem, GUEST_RAM / 2, NULL, &d));
  assert_non_null(strstr(d.msg, "boot info says 67108864 bytes of RAM, the buffer has 33554432"));
  free(mem);
  free(cfg);
}

static void panic_record_is_read_with_checks(void **state) {
  (void)state;
  struct diag d = {{0}};
  uint8_t *mem = new_guest_ram(GUEST_RAM);
  struct apfsim_panic_record rec = {.magic = APFSIM_PANIC_MAGIC, .vcpu = 1, .pid = 3, .vector = 14, .rip = 0x101234, .cr2 = 0xdead000};
  memset(rec.message, 'x', sizeof rec.message); /* not terminated by the guest */
  memcpy(mem + 0x300000, &rec, sizeof rec);
  struct apfsim_panic_record out;
  assert_true(guest_read_panic_record(mem, GUEST_RAM, 0x300000, &out, &d));
  assert_int_equal(out.vector, 14);
  assert_int_equal(out.cr2, 0xdead000);
  assert_int_equal(strlen(out.message), APFSIM_PANIC_MSG_BYTES - 1);

  assert_false(guest_read_panic_record(mem, GUEST_RAM, GUEST_RAM - 16, &out, &d));
  assert_string_equal(d.msg, "guest panic record at 0x3fffff0 lies outside guest RAM");
  assert_false(guest_read_panic_record(mem, GUEST_RAM, UINT64_MAX, &out, &d));
  memset(mem + 0x200000, 0, sizeof rec);
  assert_false(guest_read_panic_record(mem, GUEST_RAM, 0x200000, &out, &d));
  assert_string_equal(d.msg, "guest panic record at 0x200000 has a bad magic 0");
  free(mem);
}

static void statistics_are_read_at_the_contract_addresses(void **state) {
  (void)state;
  struct diag d = {{0}};
  uint8_t *mem = new_guest_ram(GUEST_RAM);
  memset(mem, 0, GUEST_RAM);
  assert_true(guest_image_load(img, mem, GUEST_RAM, &d));
  struct apfsim_proc_stats ps = {.state = APFSIM_PROC_EXITED, .pid = 4, .ops_done = 12345};
  memcpy(mem + img->contract.proc_stats_gpa + 3 * sizeof ps, &ps, sizeof ps);
  struct apfsim_proc_stats out;
  assert_true(guest_read_proc_stats(img, mem, GUEST_RAM, 3, &out, &d));
  assert_int_equal(out.pid, 4);
  assert_int_equal(out.ops_done, 12345);
  assert_false(guest_read_proc_stats(img, mem, GUEST_RAM, APFSIM_MAX_PROCESSES, &out, &d));
  assert_string_equal(d.msg, "process index 256 beyond the guest's 256");

  struct apfsim_vcpu_stats vs = {.online = 1, .apic_id = 1, .ticks = 99};
  memcpy(mem + img->contract.vcpu_stats_gpa + sizeof vs, &vs, sizeof vs);
  struct apfsim_vcpu_stats vout;
  assert_true(guest_read_vcpu_stats(img, mem, GUEST_RAM, 1, &vout, &d));
  assert_int_equal(vout.ticks, 99);
  assert_false(guest_read_vcpu_stats(img, mem, GUEST_RAM, 64, &vout, &d));
  free(mem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_field_comes_from_the_config),
      cmocka_unit_test(defaults_give_a_bootable_info),
      cmocka_unit_test(race_and_truncation_variants_map_to_the_boot_info),
      cmocka_unit_test(unsupported_settings_name_their_field),
      cmocka_unit_test(write_places_the_page_and_reports_the_layout),
      cmocka_unit_test(write_refuses_a_workload_larger_than_ram),
      cmocka_unit_test(panic_record_is_read_with_checks),
      cmocka_unit_test(statistics_are_read_at_the_contract_addresses),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
