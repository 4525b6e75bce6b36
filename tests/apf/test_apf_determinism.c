/* test_apf_determinism.c — the same call sequence gives the same trace, byte for byte,
 * whatever the heap looks like (nothing is keyed by an address, no clock is read but
 * now_ns); trace events are valid for the trace writer (names [a-z0-9_]+, no control
 * characters) and the KVM tracepoints print in KVM's field formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

static uint64_t lcg;
static uint32_t rnd(uint32_t n) {
  lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(lcg >> 33) % n;
}

/* A scripted mixed run; returns the fake (caller frees). */
static struct fx *script(bool pre_5_8, uint64_t seed) {
  struct apf_engine_config c = pre_5_8 ? fx_cfg_2010(3) : fx_cfg_2020(3);
  c.max_outstanding = 8;
  struct fx *f = fx_new(&c);
  for (unsigned v = 0; v < 3; v++) fx_enable(f, v, v == 2 ? APF_EN_SEND_ALWAYS : 0);
  lcg = seed;
  bool reading[32] = {0};
  for (int step = 0; step < 3000; step++) {
    unsigned v = rnd(3);
    f->now += rnd(500);
    switch (rnd(5)) {
    case 0:
    case 1: {
      fx_take_pf(f, v);
      f->st[v].cpl = rnd(4) ? 3 : 0;
      f->st[v].interrupts_allowed = rnd(8) != 0;
      uint64_t gfn = rnd(32);
      size_t nf = f->n_fetch;
      fx_fault_x(f, v, gfn, rnd(50) == 0, rnd(40) == 0);
      for (size_t i = nf; i < f->n_fetch; i++) reading[f->fetch[i].gfn] = true;
      break;
    }
    case 2: {
      uint64_t gfn = rnd(32);
      if (reading[gfn]) apf_fetch_done(f->e, gfn, rnd(20) == 0), reading[gfn] = false;
      break;
    }
    case 3: apf_vcpu_service(f->e, v); break;
    case 4:
      if (pre_5_8) {
        fx_take_pf(f, v);
        fx_wr32(f, FX_AREA(v), 0);
      } else if (fx_rd32(f, FX_AREA(v) + APF_AREA_TOKEN)) {
        fx_guest_page_ready(f, v);
      }
      break;
    }
  }
  return f;
}

static void assert_same_trace(const struct fx *a, const struct fx *b) {
  assert_int_equal(a->n_trace, b->n_trace);
  for (size_t i = 0; i < a->n_trace; i++) assert_string_equal(a->trace[i], b->trace[i]);
}

static void the_same_sequence_gives_the_same_trace(void **state) {
  (void)state;
  for (int abi = 0; abi < 2; abi++) {
    struct fx *a = script(abi, 7);
    /* Disturb the heap so the second engine lives elsewhere. */
    void *pad[64];
    for (int i = 0; i < 64; i++) pad[i] = malloc((size_t)(i * 97 + 13));
    struct fx *b = script(abi, 7);
    for (int i = 0; i < 64; i++) free(pad[i]);
    assert_true(a->n_trace > 1000);
    assert_same_trace(a, b);
    struct apf_stats sa, sb;
    apf_total_stats(a->e, &sa);
    apf_total_stats(b->e, &sb);
    assert_memory_equal(&sa, &sb, sizeof(sa));
    fx_free(a);
    fx_free(b);
  }
}

static void a_different_sequence_gives_a_different_trace(void **state) {
  (void)state;
  struct fx *a = script(false, 7), *b = script(false, 8);
  bool differ = a->n_trace != b->n_trace;
  for (size_t i = 0; !differ && i < a->n_trace; i++) differ = strcmp(a->trace[i], b->trace[i]) != 0;
  assert_true(differ);
  fx_free(a);
  fx_free(b);
}

static void trace_events_are_valid_for_the_trace_writer(void **state) {
  (void)state;
  for (int abi = 0; abi < 2; abi++) {
    struct fx *f = script(abi, 11);
    for (size_t i = 0; i < f->n_trace; i++) {
      const char *line = f->trace[i];
      const char *name = strchr(strchr(line, ' ') + 1, ' ') + 1;
      const char *colon = strchr(name, ':');
      assert_non_null(colon);
      for (const char *p = name; p < colon; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
      for (const char *p = line; *p; p++) assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    fx_free(f);
  }
}

static void kvm_tracepoints_print_in_kvms_formats(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, 0);
  f->now = 123456;
  fx_fault(f, 0, 0xabc);
  fx_take_pf(f, 0);
  fx_fault(f, 0, 0xabc);
  apf_fetch_done(f->e, 0xabc, false);
  apf_vcpu_service(f->e, 0);
  const char *want[] = {
      "123456 cpu0 kvm_try_async_get_page: gva = 0xabc000, gfn = 0xabc",
      "123456 cpu0 kvm_async_pf_not_present: token 0x1000 gva 0xabc000",
      "123456 cpu0 apf_inject_pf: kind not_present error_code 0 cr2 0x1000",
      "123456 cpu0 kvm_try_async_get_page: gva = 0xabc000, gfn = 0xabc",
      "123456 cpu0 kvm_async_pf_repeated_fault: gva = 0xabc000, gfn = 0xabc",
      "123456 cpu0 apf_synthetic_halt: gva 0xabc000 gfn 0xabc why repeated_fault",
      "123456 cpu0 kvm_async_pf_completed: gva 0xabc000 address 0xabc000",
      "123456 cpu0 apf_prefault: gfn 0xabc",
      "123456 cpu0 kvm_async_pf_ready: token 0x1000 gva 0xabc000",
      "123456 cpu0 apf_page_ready_irq: token 0x1000 vector 0xf3",
  };
  if (f->n_trace != sizeof(want) / sizeof(want[0])) fx_dump_trace(f);
  assert_int_equal(f->n_trace, sizeof(want) / sizeof(want[0]));
  for (size_t i = 0; i < f->n_trace; i++) assert_string_equal(f->trace[i], want[i]);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_same_sequence_gives_the_same_trace),
      cmocka_unit_test(a_different_sequence_gives_a_different_trace),
      cmocka_unit_test(trace_events_are_valid_for_the_trace_writer),
      cmocka_unit_test(kvm_tracepoints_print_in_kvms_formats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
