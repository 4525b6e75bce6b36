/* test_load.c — loading valid configs, defaults, --set overrides and the
 * canonical round trip. Run with one argument: load, overrides or roundtrip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "config/config.h"

#define SMOKE APFSIM_SOURCE_DIR "/configs/smoke.xml"
#define FULL APFSIM_SOURCE_DIR "/configs/full-example.xml"
#define DATA APFSIM_SOURCE_DIR "/tests/config/data/"

static struct sim_config *load_ok(const char *path, const char *const *ov, size_t n) {
  struct sim_config *cfg = config_new();
  struct diag err = {{0}};
  assert_non_null(cfg);
  if (!config_load(path, ov, n, NULL, cfg, &err)) fail_msg("%s", err.msg);
  return cfg;
}

static struct sim_config *buffer_ok(const char *xml, const char *const *ov, size_t n) {
  struct sim_config *cfg = config_new();
  struct diag err = {{0}};
  assert_non_null(cfg);
  if (!config_load_buffer("buffer.xml", xml, strlen(xml), ov, n, NULL, cfg, &err))
    fail_msg("%s", err.msg);
  return cfg;
}

/* The message a failing load gives (static buffer, one at a time). */
static const char *load_error(const char *path, const char *const *ov, size_t n) {
  static struct diag err;
  struct sim_config *cfg = config_new();
  assert_non_null(cfg);
  bool ok = config_load(path, ov, n, NULL, cfg, &err);
  free(cfg);
  assert_false(ok);
  return err.msg;
}

static const char *buffer_error(const char *xml, const char *const *ov, size_t n) {
  static struct diag err;
  struct sim_config *cfg = config_new();
  assert_non_null(cfg);
  bool ok = config_load_buffer("buffer.xml", xml, strlen(xml), ov, n, NULL, cfg, &err);
  free(cfg);
  assert_false(ok);
  return err.msg;
}

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull
#define MiB (1ull << 20)

/* ------------------------------------------------------------ load */

static void smoke_scenario_values(void **state) {
  (void)state;
  struct sim_config *cfg = load_ok(SMOKE, NULL, 0);
  assert_string_equal(cfg->source_path, SMOKE);
  assert_int_equal(cfg->seed, 42);
  assert_int_equal(cfg->limits.max_sim_time_ns, 5 * MS);
  assert_int_equal(cfg->machine.vcpus, 2);
  assert_int_equal(cfg->swap.preset, DEVICE_PRESET_NVME_SSD);
  assert_int_equal(cfg->swap.latency.dist, LATENCY_LOGNORMAL);
  assert_int_equal(cfg->swap.latency.median_ns, 51 * US);
  assert_true(cfg->smoke.enabled);
  assert_int_equal(cfg->smoke.timer_period_ns, 100 * US);
  assert_int_equal(cfg->smoke.device_requests, 20);
  assert_int_equal(cfg->smoke.request_interval_ns, 37 * US);
  assert_false(cfg->dax.enabled);
  assert_int_equal(cfg->workload.n_processes, 0);
  free(cfg);
}

static void full_example_values(void **state) {
  (void)state;
  struct sim_config *cfg = load_ok(FULL, NULL, 0);
  assert_int_equal(cfg->seed, 0x5eed);
  assert_int_equal(cfg->limits.max_sim_time_ns, 250 * MS);
  assert_int_equal(cfg->limits.max_guest_instructions, 500000000);
  assert_int_equal(cfg->limits.max_host_seconds, 600);
  assert_int_equal(cfg->machine.vcpus, 4);
  assert_int_equal(cfg->machine.guest_memory_bytes, 256 * MiB);
  assert_int_equal(cfg->machine.quantum_instructions, 20000);
  assert_int_equal(cfg->costs.cpu_mhz, 2600);
  assert_int_equal(cfg->costs.cpi_milli, 1250);
  assert_int_equal(cfg->costs.vm_exit_cycles, 800);
  assert_int_equal(cfg->costs.cpuid_cycles, 90);
  assert_string_equal(cfg->guest.kernel_path, "guest/apfsim-guest.elf");
  assert_int_equal(cfg->guest.pf_entry_order, PF_ENTRY_REASON_FIRST);
  assert_int_equal(cfg->guest.nmi_cr2, NMI_CR2_NONE);
  assert_int_equal(cfg->guest.not_present_delivery, NOT_PRESENT_VE);
  assert_true(cfg->guest.nmi_reads_user_stack);
  assert_int_equal(cfg->guest.timer_period_ns, 1 * MS);
  assert_int_equal(cfg->guest.hung_task_timeout_ns, 50 * MS);
  assert_int_equal(cfg->host.memory_limit_bytes, 192 * MiB);
  assert_int_equal(cfg->host.reclaim, RECLAIM_FIFO);
  assert_false(cfg->host.writeback_dirty);
  assert_true(cfg->host.enforce_pv_cpuid);
  assert_true(cfg->host.host_pre_5_8);
  assert_int_equal(cfg->host.n_evictions, 2);
  assert_int_equal(cfg->host.evictions[1].at_ns, 7500 * US);
  assert_int_equal(cfg->host.evictions[1].gpa, 0x2000000);
  assert_int_equal(cfg->host.evictions[1].bytes, 64 * 1024);
  assert_int_equal(cfg->swap.preset, DEVICE_PRESET_SATA_SSD);
  assert_int_equal(cfg->swap.latency.dist, LATENCY_EMPIRICAL);
  assert_int_equal(cfg->swap.latency.n_bins, 4);
  assert_int_equal(cfg->swap.latency.bins[3].upper_ns, 2 * MS);
  assert_int_equal(cfg->swap.latency.bins[1].count, 2100);
  assert_string_equal(cfg->swap.latency.histogram_path, "sata-ssd-qd1.hist");
  assert_int_equal(cfg->swap.latency.sigma_milli, 100); /* from the preset */
  assert_int_equal(cfg->swap.channels, 8);
  assert_int_equal(cfg->swap.bandwidth_bytes_per_s, 400000000);
  assert_true(cfg->dax.enabled);
  assert_int_equal(cfg->dax.window_gpa, 0x40000000);
  assert_true(cfg->dax.truncate);
  assert_int_equal(cfg->dax.truncate_to_bytes, 16 * 1024);
  assert_int_equal(cfg->dax.page_cache_latency.dist, LATENCY_UNIFORM);
  assert_int_equal(cfg->dax.page_cache_latency.max_ns, 3 * US);
  assert_int_equal(cfg->apf.protocol, APF_2010);
  assert_true(cfg->apf.send_always);
  assert_int_equal(cfg->apf.page_ready_vector, 0xec);
  assert_int_equal(cfg->apf.max_outstanding, 32);
  assert_int_equal(cfg->apf.error_reporting, APF_ERR_FORCE_SYNC);
  assert_false(cfg->apf.cpuid_async_pf_int);
  assert_int_equal(cfg->race.n_nmi_plans, 4);
  assert_int_equal(cfg->race.nmi[0].trigger, NMI_AT_INSTRUCTION);
  assert_int_equal(cfg->race.nmi[0].at_instruction, 184467);
  assert_string_equal(cfg->race.nmi[1].event, "kvm_async_pf_not_present");
  assert_int_equal(cfg->race.nmi[1].nth, 3);
  assert_int_equal(cfg->race.nmi[1].vcpu, 0);
  assert_string_equal(cfg->race.nmi[2].symbol, "asm_exc_page_fault");
  assert_int_equal(cfg->race.nmi[2].offset, 4);
  assert_int_equal(cfg->race.nmi[3].period_ns, 250 * US);
  assert_int_equal(cfg->workload.n_processes, 3);
  assert_int_equal(cfg->workload.processes[0].pattern, ACCESS_ZIPF);
  assert_int_equal(cfg->workload.processes[0].zipf_s_milli, 1100);
  assert_int_equal(cfg->workload.processes[0].ops, 100000);
  assert_int_equal(cfg->workload.processes[1].kind, WORKLOAD_COMPUTE);
  assert_int_equal(cfg->workload.processes[1].count, 1); /* entry default */
  assert_int_equal(cfg->workload.processes[1].compute_per_op, 5000);
  assert_int_equal(cfg->workload.processes[2].kind, WORKLOAD_DAX_COPY);
  assert_false(cfg->smoke.enabled);
  assert_int_equal(cfg->smoke.timer_period_ns, 50 * US);
  free(cfg);
}

/* An empty <apfsim/> is the defaults, exactly; and a few of them by value
 * (docs/config.md is checked against all of them by config_docs). */
static void empty_document_is_defaults(void **state) {
  (void)state;
  struct sim_config *loaded = buffer_ok("<apfsim/>", NULL, 0);
  struct sim_config *defaults = config_new();
  memset(loaded->source_path, 0, sizeof loaded->source_path);
  assert_memory_equal(loaded, defaults, sizeof *loaded);
  assert_int_equal(defaults->seed, 1);
  assert_int_equal(defaults->machine.vcpus, 1);
  assert_int_equal(defaults->machine.guest_memory_bytes, 64 * MiB);
  assert_int_equal(defaults->apf.protocol, APF_2020);
  assert_int_equal(defaults->apf.page_ready_vector, 0xf3);
  assert_int_equal(defaults->apf.max_outstanding, 64);
  assert_int_equal(defaults->guest.nmi_cr2, NMI_CR2_SAVE_RESTORE);
  assert_int_equal(defaults->guest.timer_period_ns, 4 * MS);
  assert_int_equal(defaults->swap.channels, 32);
  assert_false(defaults->smoke.enabled);
  assert_int_equal(defaults->smoke.device_requests, 20);
  free(loaded);
  free(defaults);
}

static void value_syntax(void **state) {
  (void)state;
  struct sim_config *cfg = buffer_ok(
      "<apfsim>\n"
      "  <seed> 0x7FFFFFFFFFFFFFFF </seed>\n"
      "  <limits><max-sim-time>1.5ms</max-sim-time></limits>\n"
      "  <machine><guest-memory>1048576</guest-memory></machine>\n"
      "  <costs><cpu-frequency>2.5GHz</cpu-frequency>"
      "<cycles-per-instruction>0.001</cycles-per-instruction></costs>\n"
      "  <host><memory-limit>1TiB</memory-limit></host>\n"
      "  <swap-device><bandwidth>2GiB/s</bandwidth></swap-device>\n"
      "  <guest><kernel><![CDATA[a&b <c>.elf]]></kernel>"
      "<nmi-reads-user-stack>1</nmi-reads-user-stack></guest>\n"
      "  <!-- a comment --><workload><process "
      "kind='mixed'><ops>unlimited</ops><working-set>64KiB</working-set></process></workload>\n"
      "</apfsim>\n",
      NULL, 0);
  assert_true(cfg->seed == INT64_MAX);
  assert_int_equal(cfg->limits.max_sim_time_ns, 1500 * US);
  assert_int_equal(cfg->machine.guest_memory_bytes, 1 * MiB);
  assert_int_equal(cfg->costs.cpu_mhz, 2500);
  assert_int_equal(cfg->costs.cpi_milli, 1);
  assert_int_equal(cfg->host.memory_limit_bytes, 1ull << 40);
  assert_int_equal(cfg->swap.bandwidth_bytes_per_s, 2ull << 30);
  assert_string_equal(cfg->guest.kernel_path, "a&b <c>.elf");
  assert_true(cfg->guest.nmi_reads_user_stack);
  assert_int_equal(cfg->workload.processes[0].ops, 0);
  free(cfg);
}

static void histogram_file_is_read_relative_to_the_config(void **state) {
  (void)state;
  struct sim_config *cfg = load_ok(DATA "histogram.xml", NULL, 0);
  assert_int_equal(cfg->swap.latency.dist, LATENCY_EMPIRICAL);
  assert_string_equal(cfg->swap.latency.histogram_path, "nvme-qd1.hist");
  assert_int_equal(cfg->swap.latency.n_bins, 4);
  assert_int_equal(cfg->swap.latency.bins[0].upper_ns, 50 * US);
  assert_int_equal(cfg->swap.latency.bins[0].count, 120);
  assert_int_equal(cfg->swap.latency.bins[3].upper_ns, 1 * MS);
  assert_int_equal(cfg->swap.latency.bins[3].count, 4);
  free(cfg);
}

/* A failed load leaves the caller's struct exactly as it was. */
static void failure_leaves_struct_untouched(void **state) {
  (void)state;
  struct sim_config *cfg = load_ok(SMOKE, NULL, 0);
  struct sim_config *copy = malloc(sizeof *copy);
  memcpy(copy, cfg, sizeof *cfg);
  struct diag err;
  const char *xml = "<apfsim><seed>7</seed><machine><vcpus>0</vcpus></machine></apfsim>";
  assert_false(config_load_buffer("x.xml", xml, strlen(xml), NULL, 0, NULL, cfg, &err));
  assert_memory_equal(cfg, copy, sizeof *cfg);
  assert_false(config_load_buffer("x.xml", xml, strlen(xml), NULL, 0, NULL, cfg, NULL));
  free(copy);
  free(cfg);
}

static void file_level_errors(void **state) {
  (void)state;
  assert_string_equal(load_error(DATA "does-not-exist.xml", NULL, 0),
                      DATA "does-not-exist.xml: cannot open: No such file or directory");
  assert_string_equal(load_error(DATA, NULL, 0), DATA ": is a directory, not a config file");
}

/* A buffer's messages use the name it was given; its relative paths start
 * at that name's directory. */
static void buffer_errors_use_the_name(void **state) {
  (void)state;
  assert_string_equal(
      buffer_error("<apfsim>\n<machine><vcpus>65</vcpus></machine></apfsim>", NULL, 0),
      "buffer.xml:2: machine/vcpus: '65' is out of range (1..64)");
  assert_string_equal(
      buffer_error("<apfsim><swap-device><latency dist='empirical'><histogram file='x.hist'/>"
                   "</latency></swap-device></apfsim>",
                   NULL, 0),
      "buffer.xml:1: swap-device/latency/histogram/@file: cannot read 'x.hist': No such file or "
      "directory");
}

/* Loading routes libxml2's per-thread error handlers to itself only while it
 * runs. */
static void libxml2_handlers_restored(void **state) {
  (void)state;
  xmlStructuredErrorFunc structured = xmlStructuredError;
  void *structured_ctx = xmlStructuredErrorContext;
  xmlGenericErrorFunc generic = xmlGenericError;
  void *generic_ctx = xmlGenericErrorContext;
  buffer_error("<apfsim><machine></machin></apfsim>", NULL, 0);
  buffer_error("<apfsim><machine><vcpus>x</vcpus></machine></apfsim>", NULL, 0);
  assert_true(structured == xmlStructuredError);
  assert_ptr_equal(structured_ctx, xmlStructuredErrorContext);
  assert_true(generic == xmlGenericError);
  assert_ptr_equal(generic_ctx, xmlGenericErrorContext);
}

static void explicit_schema_path(void **state) {
  (void)state;
  struct sim_config *cfg = config_new();
  struct diag err;
  assert_true(config_load(SMOKE, NULL, 0, APFSIM_SOURCE_DIR "/configs/apfsim.xsd", cfg, &err));
  assert_false(config_load(SMOKE, NULL, 0, DATA "nvme-qd1.hist", cfg, &err));
  assert_non_null(strstr(err.msg, "schema"));
  free(cfg);
}

/* ------------------------------------------------------------ overrides */

static void override_value(void **state) {
  (void)state;
  const char *ov[] = {"machine/vcpus=4", "swap-device/latency/mean=20us", "apf/protocol=2010"};
  struct sim_config *cfg = load_ok(SMOKE, ov, 3);
  assert_int_equal(cfg->machine.vcpus, 4);
  assert_int_equal(cfg->swap.latency.mean_ns, 20 * US);
  assert_int_equal(cfg->apf.protocol, APF_2010);
  free(cfg);
}

static void override_attribute(void **state) {
  (void)state;
  const char *ov[] = {"swap-device/latency/@dist=fixed", "swap-device/latency/value=5us"};
  struct sim_config *cfg = load_ok(SMOKE, ov, 2);
  assert_int_equal(cfg->swap.latency.dist, LATENCY_FIXED);
  assert_int_equal(cfg->swap.latency.fixed_ns, 5 * US);
  free(cfg);
}

static void override_preset_sets_its_defaults(void **state) {
  (void)state;
  const char *ov[] = {"swap-device/@preset=hdd"};
  struct sim_config *cfg = load_ok(SMOKE, ov, 1);
  assert_int_equal(cfg->swap.preset, DEVICE_PRESET_HDD);
  assert_int_equal(cfg->swap.latency.median_ns, 11800 * US);
  assert_int_equal(cfg->swap.channels, 1);
  free(cfg);
}

static void override_creates_elements(void **state) {
  (void)state;
  const char *ov[] = {"dax/truncate=true", "workload/process[1]/@kind=compute",
                      "workload/process[1]/count=3", "race/nmi[1]/@trigger=at-symbol",
                      "race/nmi[1]/symbol=asm_exc_nmi"};
  struct sim_config *cfg = load_ok(SMOKE, ov, 5);
  assert_true(cfg->dax.enabled); /* created <dax> is present, hence on */
  assert_true(cfg->dax.truncate);
  assert_int_equal(cfg->workload.n_processes, 1);
  assert_int_equal(cfg->workload.processes[0].kind, WORKLOAD_COMPUTE);
  assert_int_equal(cfg->workload.processes[0].count, 3);
  assert_int_equal(cfg->race.n_nmi_plans, 1);
  assert_string_equal(cfg->race.nmi[0].symbol, "asm_exc_nmi");
  free(cfg);
}

static void override_indexes_and_appends(void **state) {
  (void)state;
  const char *ov[] = {"workload/process[2]/count=7", "workload/process[4]/@kind=mixed",
                      "race/nmi[4]/period=1ms"};
  struct sim_config *cfg = load_ok(FULL, ov, 3);
  assert_int_equal(cfg->workload.n_processes, 4);
  assert_int_equal(cfg->workload.processes[1].count, 7);
  assert_int_equal(cfg->workload.processes[3].kind, WORKLOAD_MIXED);
  assert_int_equal(cfg->race.nmi[3].period_ns, 1 * MS);
  free(cfg);
}

static void override_last_wins_and_literal_values(void **state) {
  (void)state;
  const char *ov[] = {"machine/vcpus=2", "machine/vcpus=3", "guest/kernel=a=b&c<d>.elf",
                      "dax/@enabled=false"};
  struct sim_config *cfg = load_ok(SMOKE, ov, 4);
  assert_int_equal(cfg->machine.vcpus, 3);
  assert_string_equal(cfg->guest.kernel_path, "a=b&c<d>.elf");
  assert_false(cfg->dax.enabled);
  free(cfg);
}

static void override_on_buffer(void **state) {
  (void)state;
  const char *ov[] = {"seed=0x10"};
  struct sim_config *cfg = buffer_ok("<apfsim><seed>1</seed></apfsim>", ov, 1);
  assert_int_equal(cfg->seed, 16);
  free(cfg);
}

#define S APFSIM_SOURCE_DIR "/configs/smoke.xml: "

static void override_errors(void **state) {
  (void)state;
  static const struct {
    const char *override, *message;
  } cases[] = {
      {"machine/vcpux=3", S "--set machine/vcpux: unknown element 'vcpux' in <machine> "
                            "(expected vcpus, guest-memory or quantum-instructions)"},
      {"network/speed=1",
       S "--set network/speed: unknown element 'network' in <apfsim> (expected "
         "seed, limits, machine, costs, guest, host, swap-device, dax, apf, race, "
         "workload or smoke)"},
      {"machine/@speed=1", S "--set machine/@speed: unknown attribute 'speed' on <machine> "
                             "(expected no attributes)"},
      {"machine/vcpus=abc", S "--set machine/vcpus: 'abc' is not a whole number"},
      {"machine/vcpus=1000", S "--set machine/vcpus: '1000' is out of range (1..64)"},
      {"swap-device/latency/mean=20", S "--set swap-device/latency/mean: '20' has no unit "
                                        "(expected ns, us, ms or s)"},
      {"swap-device/latency/@dist=normal",
       S "--set swap-device/latency/@dist: 'normal' is not a valid value (expected fixed, uniform, "
         "exponential, lognormal or empirical)"},
      {"machine/vcpus=", S "--set machine/vcpus: missing value"},
      {"machine=4", S "--set machine: <machine> is a section; set one of its values (e.g. "
                      "machine/vcpus)"},
      {"machine/vcpus/x=4", S "--set machine/vcpus/x: <vcpus> holds a value and has no children"},
      {"machine/vcpus", S "--set machine/vcpus: expected PATH=VALUE (e.g. machine/vcpus=4)"},
      {"=4", S "--set =4: empty path before '='"},
      {"/machine/vcpus=4", S "--set /machine/vcpus: paths start below <apfsim>, without a "
                             "leading '/' (e.g. machine/vcpus)"},
      {"machine/=4", S "--set machine/: path ends with '/'"},
      {"machine//vcpus=4", S "--set machine//vcpus: empty step in path"},
      {"machine/@x/vcpus=4", S "--set machine/@x/vcpus: an attribute (@x) must be the last step"},
      {"workload/process[0]/count=1", S "--set workload/process[0]/count: bad index in "
                                        "'process[0]' (expected name[1], name[2], ...)"},
      {"workload/process[x]/count=1", S "--set workload/process[x]/count: bad index in "
                                        "'process[x]' (expected name[1], name[2], ...)"},
      {"workload/process[2]/count=1", S "--set workload/process[2]/count: there is no <process> "
                                        "element yet; use process[1] to add one"},
      {"machine[2]/vcpus=1", S "--set machine[2]/vcpus: <machine> occurs at most once; there is "
                               "no machine[2]"},
      {"workload/process[1]/count=3", S "--set workload/process[1]/count: "
                                        "workload/process[1]/@kind: required attribute is missing"},
      {"race/nmi[1]/@trigger=periodic", S "--set race/nmi[1]/@trigger: race/nmi[1]/period: "
                                          "trigger 'periodic' needs a period above 0ns"},
      {"dax/window-gpa=0x1000", S "--set dax/window-gpa: window at 0x1000 overlaps guest memory "
                                  "(0x0..64MiB)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *ov[] = {cases[i].override};
    const char *got = load_error(SMOKE, ov, 1);
    if (strcmp(got, cases[i].message) != 0)
      fail_msg("--set %s\n  expected: %s\n  got:      %s", cases[i].override, cases[i].message,
               got);
  }
}

static void override_ambiguous_list(void **state) {
  (void)state;
  const char *ov[] = {"workload/process/count=2"};
  assert_string_equal(load_error(FULL, ov, 1), APFSIM_SOURCE_DIR
                      "/configs/full-example.xml: --set workload/process/count: "
                      "there are 3 <process> elements; say which, e.g. process[1]");
  const char *ov2[] = {"workload/process[5]/count=2"};
  assert_string_equal(load_error(FULL, ov2, 1), APFSIM_SOURCE_DIR
                      "/configs/full-example.xml: --set workload/process[5]/count: "
                      "there are only 3 <process> elements; use process[4] to add one");
}

/* A value in the file that an override makes inconsistent is reported at
 * its own line. */
static void override_cross_field_points_at_file_line(void **state) {
  (void)state;
  const char *ov[] = {"machine/vcpus=2"};
  assert_string_equal(load_error(FULL, ov, 1),
                      APFSIM_SOURCE_DIR "/configs/full-example.xml:107: race/nmi[3]/vcpu: vCPU 2 "
                                        "does not exist (machine/vcpus is 2)");
}

/* ------------------------------------------------------------ round trip */

static void round_trip(const struct sim_config *cfg) {
  char *xml = config_to_xml(cfg);
  assert_non_null(xml);
  struct sim_config *again = config_new();
  struct diag err;
  if (!config_load_buffer("canonical.xml", xml, strlen(xml), NULL, 0, NULL, again, &err))
    fail_msg("canonical form does not load: %s\n%s", err.msg, xml);
  struct sim_config *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  memcpy(a, cfg, sizeof *a);
  memcpy(b, again, sizeof *b);
  memset(a->source_path, 0, sizeof a->source_path);
  memset(b->source_path, 0, sizeof b->source_path);
  assert_memory_equal(a, b, sizeof *a);
  /* Fixed point and deterministic. */
  char *xml2 = config_to_xml(again);
  assert_string_equal(xml, xml2);
  free(xml2);
  free(a);
  free(b);
  free(again);
  free(xml);
}

static void round_trip_smoke(void **state) {
  (void)state;
  struct sim_config *cfg = load_ok(SMOKE, NULL, 0);
  round_trip(cfg);
  free(cfg);
}

static void round_trip_full_example(void **state) {
  (void)state;
  struct sim_config *cfg = load_ok(FULL, NULL, 0);
  round_trip(cfg);
  free(cfg);
}

static void round_trip_defaults(void **state) {
  (void)state;
  struct sim_config *cfg = config_new();
  round_trip(cfg);
  free(cfg);
}

static void round_trip_inlines_histogram_file(void **state) {
  (void)state;
  struct sim_config *cfg = load_ok(DATA "histogram.xml", NULL, 0);
  char *xml = config_to_xml(cfg);
  assert_non_null(strstr(xml, "<histogram inlined-from=\"nvme-qd1.hist\">\n"
                              "        <bin upper=\"50us\" count=\"120\"/>\n"));
  assert_null(strstr(xml, "file="));
  free(xml);
  round_trip(cfg);
  free(cfg);
}

static void round_trip_awkward_values(void **state) {
  (void)state;
  const char *ov[] = {"guest/kernel=dir with space/&<>\"'.elf",
                      "swap-device/latency/histogram/bin[1]/@upper=1ns",
                      "swap-device/latency/histogram/bin[1]/@count=18446744073709551615",
                      "swap-device/latency/histogram/@inlined-from=a\"b&c",
                      "swap-device/latency/@dist=empirical",
                      "limits/max-sim-time=1000000s",
                      "host/memory-limit=4100KiB",
                      "seed=9223372036854775807"};
  struct sim_config *cfg = load_ok(SMOKE, ov, sizeof ov / sizeof ov[0]);
  assert_string_equal(cfg->guest.kernel_path, "dir with space/&<>\"'.elf");
  assert_string_equal(cfg->swap.latency.histogram_path, "a\"b&c");
  round_trip(cfg);
  free(cfg);
}

/* Canonical text of some values, as documented in docs/config.md. */
static void canonical_text(void **state) {
  (void)state;
  const char *ov[] = {"limits/max-sim-time=1500us", "costs/cpu-frequency=2.6GHz",
                      "host/memory-limit=1048576", "swap-device/bandwidth=2GB/s"};
  struct sim_config *cfg = load_ok(SMOKE, ov, 4);
  char *xml = config_to_xml(cfg);
  assert_non_null(strstr(xml, "<max-sim-time>1500us</max-sim-time>"));
  assert_non_null(strstr(xml, "<cpu-frequency>2600MHz</cpu-frequency>"));
  assert_non_null(strstr(xml, "<memory-limit>1MiB</memory-limit>"));
  assert_non_null(strstr(xml, "<bandwidth>2GB/s</bandwidth>"));
  assert_non_null(strstr(xml, "<page-ready-vector>0xf3</page-ready-vector>"));
  assert_non_null(strstr(xml, "<smoke enabled=\"true\">"));
  assert_non_null(strstr(xml, "<dax enabled=\"false\">"));
  free(xml);
  free(cfg);
}

int main(int argc, char **argv) {
  const struct CMUnitTest load[] = {
      cmocka_unit_test(smoke_scenario_values),
      cmocka_unit_test(full_example_values),
      cmocka_unit_test(empty_document_is_defaults),
      cmocka_unit_test(value_syntax),
      cmocka_unit_test(histogram_file_is_read_relative_to_the_config),
      cmocka_unit_test(failure_leaves_struct_untouched),
      cmocka_unit_test(file_level_errors),
      cmocka_unit_test(buffer_errors_use_the_name),
      cmocka_unit_test(libxml2_handlers_restored),
      cmocka_unit_test(explicit_schema_path),
  };
  const struct CMUnitTest overrides[] = {
      cmocka_unit_test(override_value),
      cmocka_unit_test(override_attribute),
      cmocka_unit_test(override_preset_sets_its_defaults),
      cmocka_unit_test(override_creates_elements),
      cmocka_unit_test(override_indexes_and_appends),
      cmocka_unit_test(override_last_wins_and_literal_values),
      cmocka_unit_test(override_on_buffer),
      cmocka_unit_test(override_errors),
      cmocka_unit_test(override_ambiguous_list),
      cmocka_unit_test(override_cross_field_points_at_file_line),
  };
  const struct CMUnitTest roundtrip[] = {
      cmocka_unit_test(round_trip_smoke),
      cmocka_unit_test(round_trip_full_example),
      cmocka_unit_test(round_trip_defaults),
      cmocka_unit_test(round_trip_inlines_histogram_file),
      cmocka_unit_test(round_trip_awkward_values),
      cmocka_unit_test(canonical_text),
  };
  const char *which = argc > 1 ? argv[1] : "";
  int rc;
  if (!strcmp(which, "load"))
    rc = cmocka_run_group_tests_name("config_load", load, NULL, NULL);
  else if (!strcmp(which, "overrides"))
    rc = cmocka_run_group_tests_name("config_overrides", overrides, NULL, NULL);
  else if (!strcmp(which, "roundtrip"))
    rc = cmocka_run_group_tests_name("config_roundtrip", roundtrip, NULL, NULL);
  else {
    fprintf(stderr, "usage: %s load|overrides|roundtrip\n", argv[0]);
    return 2;
  }
  /* The process ends here; release libxml2's global state so leak checkers
   * see only real leaks. */
  xmlCleanupParser();
  return rc;
}
