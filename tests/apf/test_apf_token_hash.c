/* test_apf_token_hash.c — tokens (id++ << 12) | vcpu, never 0 even when id wraps; Linux's
 * hash_32 pinned by reference values; the 64-entry gfn hash with linear probing,
 * collisions, wrap-around at the end of the table and backward-shift deletion; the
 * error-gfn cache of the 2020 error series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

static void tokens_carry_the_vcpu_id_in_bits_11_0_and_count_up_in_bits_31_12(void **state) {
  (void)state;
  uint32_t id = 0;
  assert_int_equal(apf_token_next(&id, 3), 0x1003);
  assert_int_equal(apf_token_next(&id, 3), 0x2003);
  assert_int_equal(apf_token_next(&id, 3), 0x3003);
  assert_int_equal(id, 4);
}

static void the_first_token_of_vcpu_0_is_not_0(void **state) {
  (void)state;
  /* Before Linux 5.17 it was: (0 << 12) | 0. */
  uint32_t id = 0;
  assert_int_equal(apf_token_next(&id, 0), 0x1000);
}

static void tokens_skip_0_when_the_id_wraps(void **state) {
  (void)state;
  uint32_t id = 0xfffff;
  assert_int_equal(apf_token_next(&id, 0), 0xfffff000u);
  /* id = 0x100000: id << 12 is 0 in 32 bits; the id restarts at 1. */
  assert_int_equal(apf_token_next(&id, 0), 0x1000);
  /* Exhaustively over a full wrap for vCPU 0 (the only one that could get 0). */
  id = 0;
  for (uint32_t n = 0; n < (UINT32_C(1) << 20) + 16; n++) assert_int_not_equal(apf_token_next(&id, 0), 0);
}

static void engine_tokens_are_per_vcpu_and_a_queue_full_sync_still_consumes_one(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(2);
  c.max_outstanding = 1;
  struct fx *f = fx_new(&c);
  fx_enable(f, 0, 0);
  fx_enable(f, 1, 0);
  struct apf_decision d = fx_fault(f, 0, 0x10);
  assert_int_equal(d.token, 0x1000);
  fx_take_pf(f, 0);
  d = fx_fault(f, 1, 0x10);
  assert_int_equal(d.token, 0x1001);
  fx_take_pf(f, 1);
  /* Queue full on vCPU 0: synchronous, but kvm_arch_setup_async_pf took token 0x2000. */
  d = fx_fault(f, 0, 0x11);
  assert_int_equal(d.outcome, APF_OUTCOME_SYNC);
  assert_int_equal(d.why, APF_WHY_QUEUE_FULL);
  assert_int_equal(d.token, 0);
  apf_fetch_done(f->e, 0x10, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(fx_guest_page_ready(f, 0), 0x1000);
  d = fx_fault(f, 0, 0x12);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  assert_int_equal(d.token, 0x3000);
  fx_free(f);
}

static void hash_32_matches_linux_reference_values(void **state) {
  (void)state;
  /* include/linux/hash.h: (val * 0x61C88647) >> (32 - bits). */
  assert_int_equal(apf_hash_32(0, 6), 0x0);
  assert_int_equal(apf_hash_32(1, 6), 0x18);
  assert_int_equal(apf_hash_32(2, 6), 0x30);
  assert_int_equal(apf_hash_32(3, 6), 0x9);
  assert_int_equal(apf_hash_32(0x42, 6), 0xd);
  assert_int_equal(apf_hash_32(0xdeadbeef, 6), 0x1b);
  assert_int_equal(apf_hash_32(0xffffffff, 6), 0x27);
}

static struct fx *hash_fx(void) {
  struct apf_engine_config c = fx_cfg_2020(1);
  return fx_new(&c);
}

static void gfn_hash_probes_linearly_past_collisions_and_wraps_at_the_end(void **state) {
  (void)state;
  struct fx *f = hash_fx();
  struct apf_engine *e = f->e;
  struct apf_vcpu *v = &e->vcpus[0];
  assert_int_equal(e->hash_bits, 6);
  /* 34, 89, 178 all hash to slot 63; 55 hashes to 0. */
  apf_gfn_hash_add(e, v, 34);
  apf_gfn_hash_add(e, v, 89);
  apf_gfn_hash_add(e, v, 178);
  apf_gfn_hash_add(e, v, 55);
  assert_int_equal(apf_gfn_hash_slot(e, v, 34), 63);
  assert_int_equal(apf_gfn_hash_slot(e, v, 89), 0);
  assert_int_equal(apf_gfn_hash_slot(e, v, 178), 1);
  assert_int_equal(apf_gfn_hash_slot(e, v, 55), 2);
  assert_true(apf_gfn_hash_find(e, v, 178));
  assert_false(apf_gfn_hash_find(e, v, 233)); /* also slot 63: probes to the first empty slot */
  assert_int_equal(apf_gfn_hash_slot(e, v, 233), 3);
  fx_free(f);
}

static void gfn_hash_deletion_shifts_back_entries_still_reachable(void **state) {
  (void)state;
  struct fx *f = hash_fx();
  struct apf_engine *e = f->e;
  struct apf_vcpu *v = &e->vcpus[0];
  apf_gfn_hash_add(e, v, 34);
  apf_gfn_hash_add(e, v, 89);
  apf_gfn_hash_add(e, v, 178);
  apf_gfn_hash_add(e, v, 55);
  apf_gfn_hash_add(e, v, 84); /* home 5, unrelated run */
  apf_gfn_hash_del(e, v, 34);
  assert_false(apf_gfn_hash_find(e, v, 34));
  /* Everything after the hole moves back one slot, across the wrap. */
  assert_int_equal(apf_gfn_hash_slot(e, v, 89), 63);
  assert_int_equal(apf_gfn_hash_slot(e, v, 178), 0);
  assert_int_equal(apf_gfn_hash_slot(e, v, 55), 1);
  assert_int_equal(v->gfns[2], APF_GFN_EMPTY);
  assert_int_equal(apf_gfn_hash_slot(e, v, 84), 5);
  /* Delete 178 (slot 0): 55's home is 0, so it moves into 0. */
  apf_gfn_hash_del(e, v, 178);
  assert_int_equal(apf_gfn_hash_slot(e, v, 55), 0);
  assert_true(apf_gfn_hash_find(e, v, 89));
  /* Deleting a gfn that is not there changes nothing. */
  apf_gfn_hash_del(e, v, 999);
  assert_true(apf_gfn_hash_find(e, v, 89) && apf_gfn_hash_find(e, v, 55) && apf_gfn_hash_find(e, v, 84));
  fx_free(f);
}

static void gfn_hash_holds_64_entries_and_empties_again(void **state) {
  (void)state;
  struct fx *f = hash_fx();
  struct apf_engine *e = f->e;
  struct apf_vcpu *v = &e->vcpus[0];
  for (uint64_t g = 0; g < 64; g++) apf_gfn_hash_add(e, v, 0x1000 + g * 7);
  for (uint64_t g = 0; g < 64; g++) assert_true(apf_gfn_hash_find(e, v, 0x1000 + g * 7));
  assert_false(apf_gfn_hash_find(e, v, 0x1001)); /* a full table: the probe stops after 64 */
  /* Delete in a scrambled order; every remaining entry stays reachable. */
  for (uint64_t n = 0; n < 64; n++) {
    uint64_t g = (n * 37) % 64;
    apf_gfn_hash_del(e, v, 0x1000 + g * 7);
    for (uint64_t m = n + 1; m < 64; m++) assert_true(apf_gfn_hash_find(e, v, 0x1000 + ((m * 37) % 64) * 7));
  }
  for (int i = 0; i < 64; i++) assert_int_equal(v->gfns[i], APF_GFN_EMPTY);
  fx_free(f);
}

static void gfn_hash_uses_the_low_32_bits_of_the_gfn(void **state) {
  (void)state;
  struct fx *f = hash_fx();
  struct apf_engine *e = f->e;
  struct apf_vcpu *v = &e->vcpus[0];
  uint64_t hi = (UINT64_C(1) << 32) | 34;
  apf_gfn_hash_add(e, v, 34);
  apf_gfn_hash_add(e, v, hi);
  assert_int_equal(apf_gfn_hash_slot(e, v, hi), 0); /* same home (63), next slot */
  assert_true(apf_gfn_hash_find(e, v, hi));
  fx_free(f);
}

static void a_larger_queue_gets_a_larger_table(void **state) {
  (void)state;
  struct apf_engine_config c = fx_cfg_2020(1);
  c.max_outstanding = 100;
  struct fx *f = fx_new(&c);
  assert_int_equal(f->e->hash_bits, 7);
  fx_free(f);
}

static void error_gfn_cache_is_direct_mapped_overwritten_and_taken_once(void **state) {
  (void)state;
  struct fx *f = hash_fx();
  struct apf_vcpu *v = &f->e->vcpus[0];
  apf_error_gfn_add(v, 34);
  assert_true(apf_error_gfn_take(v, 34));
  assert_false(apf_error_gfn_take(v, 34));
  apf_error_gfn_add(v, 34);
  apf_error_gfn_add(v, 89); /* same slot: overwrites, it is only a hint */
  assert_false(apf_error_gfn_take(v, 34));
  assert_true(apf_error_gfn_take(v, 89));
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tokens_carry_the_vcpu_id_in_bits_11_0_and_count_up_in_bits_31_12),
      cmocka_unit_test(the_first_token_of_vcpu_0_is_not_0),
      cmocka_unit_test(tokens_skip_0_when_the_id_wraps),
      cmocka_unit_test(engine_tokens_are_per_vcpu_and_a_queue_full_sync_still_consumes_one),
      cmocka_unit_test(hash_32_matches_linux_reference_values),
      cmocka_unit_test(gfn_hash_probes_linearly_past_collisions_and_wraps_at_the_end),
      cmocka_unit_test(gfn_hash_deletion_shifts_back_entries_still_reachable),
      cmocka_unit_test(gfn_hash_holds_64_entries_and_empties_again),
      cmocka_unit_test(gfn_hash_uses_the_low_32_bits_of_the_gfn),
      cmocka_unit_test(a_larger_queue_gets_a_larger_table),
      cmocka_unit_test(error_gfn_cache_is_direct_mapped_overwritten_and_taken_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
