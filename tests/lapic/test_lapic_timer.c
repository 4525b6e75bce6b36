/* test_lapic_timer.c — the APIC timer in simulated time (SDM vol. 3A 11.5.4):
 * exact one-shot and periodic expiry times at every divide value, current
 * count mid-period, masking, stop, reprogramming, divide and mode changes.
 *
 * Expected times follow the documented rule (docs/lapic.md): counting from
 * t0 with count N, divisor D and input clock H Hz, expiry k is at
 * t0 + ceil((N + (k-1)*initial) * D * 1e9 / H) ns — rounded up, never early. */
#include "lapic_test.h"

#define VEC 0x40u
#define GHZ UINT64_C(1000000000)

/* Start a timer on a fresh APIC: divide, LVT (vector VEC | lvt_extra), then
 * the initial count at `start` ns. */
static void start_timer(struct lapic *a, uint64_t hz, uint32_t divide, uint32_t lvt_extra,
                        uint32_t initial, uint64_t start) {
  lapic_ready(a, 0, hz);
  wr(a, LAPIC_MSR_TIMER_DIVIDE, divide, start);
  wr(a, LAPIC_MSR_LVT_TIMER, VEC | lvt_extra, start);
  wr(a, LAPIC_MSR_TIMER_INITIAL, initial, start);
}

static uint32_t current(struct lapic *a, uint64_t t) {
  return (uint32_t)rd(a, LAPIC_MSR_TIMER_CURRENT, t);
}

static void oneshot_fires_at_the_exact_ns_for_every_divide(void **state) {
  (void)state;
  static const struct {
    uint64_t hz;
    uint32_t divide;
    uint32_t initial;
    uint64_t start, expiry;
  } cases[] = {
      {GHZ, DIV_1, 1000, 500, 1500},
      {GHZ, DIV_2, 1000, 0, 2000},
      {GHZ, DIV_4, 250, 7, 1007},
      {GHZ, DIV_8, 0xFFFFFFFFu, 0, UINT64_C(34359738360)},
      {GHZ, DIV_32, 5, 100, 260},
      {GHZ, DIV_64, 10, 3, 643},
      {GHZ, DIV_128, 0xFFFFFFFFu, 10, UINT64_C(549755813770)},
      {100000000, DIV_16, 7, 0, 1120},             /* 10 ns per input cycle */
      {25000000, DIV_1, 3, 0, 120},                /* 25 MHz crystal */
      {24000000, DIV_1, 1, 0, 42},                 /* 41.67 ns -> 42 */
      {133333333, DIV_128, 3, 0, 2881},            /* 2880.0000072 ns -> 2881 */
      {3, DIV_1, 1, 0, 333333334},                 /* 333333333.3 ns -> ...334 */
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    struct lapic a;
    start_timer(&a, cases[i].hz, cases[i].divide, 0, cases[i].initial, cases[i].start);
    uint64_t t = cases[i].expiry;
    assert_int_equal(lapic_next_timer_ns(&a), t);
    lapic_advance(&a, t - 1);
    assert_int_equal(lapic_pending_vector(&a), -1);
    assert_int_equal(current(&a, t - 1), 1); /* one step left, 1 ns before */
    lapic_advance(&a, t);
    assert_int_equal(lapic_pending_vector(&a), VEC);
    assert_int_equal(current(&a, t), 0);
    assert_int_equal(lapic_next_timer_ns(&a), LAPIC_NO_TIMER);
    assert_int_equal(rd(&a, LAPIC_MSR_TIMER_INITIAL, t), cases[i].initial);
  }
}

/* Periodic expiries come from the fixed start, so per-period rounding never
 * accumulates: a 3.33 ns period fires at 4, 7, 10, 14 ... not 4, 8, 12. */
static void periodic_expiries_are_exact_and_do_not_drift(void **state) {
  (void)state;
  static const struct {
    uint32_t divide, initial;
    uint64_t expiry[6];
  } cases[] = {
      {DIV_1, 1, {4, 7, 10, 14, 17, 20}},
      {DIV_2, 10, {67, 134, 200, 267, 334, 400}},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    struct lapic a;
    start_timer(&a, 300000000, cases[i].divide, LAPIC_LVT_TIMER_PERIODIC, cases[i].initial, 0);
    for (size_t k = 0; k < 6; k++) {
      uint64_t t = lapic_next_timer_ns(&a);
      assert_int_equal(t, cases[i].expiry[k]);
      lapic_advance(&a, t - 1);
      assert_int_equal(lapic_pending_vector(&a), -1);
      lapic_advance(&a, t);
      assert_int_equal(lapic_acknowledge(&a), VEC);
      wr(&a, LAPIC_MSR_EOI, 0, t);
    }
    assert_int_equal(a.stat_timer_expiries, 6);
  }
}

static void periodic_timer_at_one_ghz_has_a_period_of_count_times_divide(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_16, LAPIC_LVT_TIMER_PERIODIC, 625, 1000); /* 10 us */
  for (uint64_t k = 1; k <= 100; k++) {
    uint64_t t = lapic_next_timer_ns(&a);
    assert_int_equal(t, 1000 + k * 10000);
    lapic_advance(&a, t);
    assert_int_equal(lapic_acknowledge(&a), VEC);
    wr(&a, LAPIC_MSR_EOI, 0, t);
  }
}

static void current_count_reads_follow_simulated_time(void **state) {
  (void)state;
  struct lapic a;
  /* 1 GHz / 2: one step every 2 ns. */
  start_timer(&a, GHZ, DIV_2, LAPIC_LVT_TIMER_PERIODIC, 1000, 0);
  assert_int_equal(current(&a, 0), 1000);
  assert_int_equal(current(&a, 1), 1000);
  assert_int_equal(current(&a, 2), 999);
  assert_int_equal(current(&a, 1001), 500);
  assert_int_equal(current(&a, 1999), 1);
  assert_int_equal(current(&a, 2000), 1000); /* reloaded at the expiry */
  assert_int_equal(current(&a, 2002), 999);
  assert_int_equal(current(&a, 3996), 2);
  assert_int_equal(current(&a, 3999), 1);
  /* The read at 2000 caught the timer up: the expiry set IRR. */
  assert_int_equal(lapic_pending_vector(&a), VEC);

  struct lapic b;
  start_timer(&b, GHZ, DIV_1, 0, 10, 100);
  assert_int_equal(current(&b, 105), 5);
  assert_int_equal(current(&b, 110), 0);
  assert_int_equal(current(&b, 5000), 0); /* one-shot stays at 0 */
}

static void masked_timer_counts_but_never_sets_irr(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, LAPIC_LVT_TIMER_PERIODIC | LAPIC_LVT_MASKED, 100, 0);
  assert_int_equal(lapic_next_timer_ns(&a), LAPIC_NO_TIMER); /* no stop needed */
  lapic_advance(&a, 1050);
  assert_true(irr_empty(&a));
  assert_int_equal(a.stat_timer_expiries, 10);
  assert_int_equal(current(&a, 1050), 50);
  /* Unmasked mid-period: the next expiry keeps the original phase. */
  wr(&a, LAPIC_MSR_LVT_TIMER, VEC | LAPIC_LVT_TIMER_PERIODIC, 1050);
  assert_int_equal(lapic_next_timer_ns(&a), 1100);
  lapic_advance(&a, 1100);
  assert_int_equal(lapic_pending_vector(&a), VEC);

  /* A masked one-shot that expires is spent: unmasking later raises nothing. */
  struct lapic b;
  start_timer(&b, GHZ, DIV_1, LAPIC_LVT_MASKED, 100, 0);
  lapic_advance(&b, 150);
  assert_int_equal(current(&b, 150), 0);
  wr(&b, LAPIC_MSR_LVT_TIMER, VEC, 150);
  assert_int_equal(lapic_next_timer_ns(&b), LAPIC_NO_TIMER);
  lapic_advance(&b, 1000);
  assert_true(irr_empty(&b));
}

static void writing_initial_count_zero_stops_the_timer(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, LAPIC_LVT_TIMER_PERIODIC, 100, 0);
  lapic_advance(&a, 100);
  assert_int_equal(lapic_acknowledge(&a), VEC);
  wr(&a, LAPIC_MSR_EOI, 0, 100);
  wr(&a, LAPIC_MSR_TIMER_INITIAL, 0, 150); /* mid-period */
  assert_int_equal(lapic_next_timer_ns(&a), LAPIC_NO_TIMER);
  assert_int_equal(current(&a, 150), 0);
  assert_int_equal(rd(&a, LAPIC_MSR_TIMER_INITIAL, 150), 0);
  lapic_advance(&a, 100000);
  assert_true(irr_empty(&a));
  /* One-shot too. */
  struct lapic b;
  start_timer(&b, GHZ, DIV_1, 0, 100, 0);
  wr(&b, LAPIC_MSR_TIMER_INITIAL, 0, 99);
  lapic_advance(&b, 100);
  assert_true(irr_empty(&b));
}

static void rewriting_initial_count_mid_count_restarts_from_it(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, 0, 1000, 0);
  assert_int_equal(current(&a, 400), 600);
  wr(&a, LAPIC_MSR_TIMER_INITIAL, 50, 400);
  assert_int_equal(current(&a, 400), 50);
  assert_int_equal(lapic_next_timer_ns(&a), 450);
  lapic_advance(&a, 450);
  assert_int_equal(lapic_pending_vector(&a), VEC);
  lapic_advance(&a, 1000); /* the old expiry time brings nothing */
  assert_int_equal(a.stat_timer_expiries, 1);

  /* Periodic: the new count also resets the phase. */
  struct lapic b;
  start_timer(&b, GHZ, DIV_1, LAPIC_LVT_TIMER_PERIODIC, 100, 0);
  wr(&b, LAPIC_MSR_TIMER_INITIAL, 30, 170);
  assert_int_equal(lapic_next_timer_ns(&b), 200);
  lapic_advance(&b, 200);
  assert_int_equal(lapic_next_timer_ns(&b), 230);
  assert_int_equal(b.stat_timer_expiries, 2); /* at 100, then at 200 */
}

static void divide_change_mid_count_continues_from_the_current_count(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, LAPIC_LVT_TIMER_PERIODIC, 1000, 0);
  assert_int_equal(current(&a, 300), 700);
  wr(&a, LAPIC_MSR_TIMER_DIVIDE, DIV_2, 300);
  assert_int_equal(current(&a, 301), 700);
  assert_int_equal(current(&a, 302), 699);
  assert_int_equal(lapic_next_timer_ns(&a), 300 + 700 * 2);
  lapic_advance(&a, 1700);
  assert_int_equal(lapic_pending_vector(&a), VEC);
  /* The reload uses the initial count at the new rate. */
  assert_int_equal(lapic_next_timer_ns(&a), 1700 + 1000 * 2);
}

static void changing_the_timer_mode_does_not_restart_the_count(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, 0, 100, 0);
  wr(&a, LAPIC_MSR_LVT_TIMER, VEC | LAPIC_LVT_TIMER_PERIODIC, 50); /* one-shot -> periodic */
  assert_int_equal(current(&a, 50), 50);
  assert_int_equal(lapic_next_timer_ns(&a), 100);
  lapic_advance(&a, 100);
  assert_int_equal(lapic_next_timer_ns(&a), 200); /* reloaded: periodic now */
  wr(&a, LAPIC_MSR_LVT_TIMER, VEC, 150); /* periodic -> one-shot */
  assert_int_equal(lapic_next_timer_ns(&a), 200);
  lapic_advance(&a, 200);
  assert_int_equal(lapic_next_timer_ns(&a), LAPIC_NO_TIMER);
  assert_int_equal(current(&a, 200), 0);
  /* An expired one-shot is not restarted by switching to periodic. */
  wr(&a, LAPIC_MSR_LVT_TIMER, VEC | LAPIC_LVT_TIMER_PERIODIC, 300);
  assert_int_equal(lapic_next_timer_ns(&a), LAPIC_NO_TIMER);
  assert_int_equal(a.stat_timer_expiries, 2);
}

static void missed_periods_coalesce_into_one_pending_interrupt(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, LAPIC_LVT_TIMER_PERIODIC, 100, 0);
  lapic_advance(&a, 1050);
  assert_int_equal(lapic_acknowledge(&a), VEC);
  assert_int_equal(lapic_pending_vector(&a), -1);
  assert_int_equal(a.stat_timer_expiries, 10);
  assert_int_equal(a.stat_timer_irqs, 1);
  assert_int_equal(lapic_next_timer_ns(&a), 1100);
}

static void any_later_call_catches_up_a_missed_expiry(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, 0, 100, 0);
  wr(&a, LAPIC_MSR_TPR, 0, 150); /* the platform never called lapic_advance(100) */
  assert_int_equal(lapic_pending_vector(&a), VEC);
}

static void timer_with_an_illegal_vector_sets_esr_instead_of_irr(void **state) {
  (void)state;
  struct lapic a;
  lapic_ready(&a, 0, GHZ);
  wr(&a, LAPIC_MSR_TIMER_DIVIDE, DIV_1, 0);
  wr(&a, LAPIC_MSR_LVT_TIMER, 0x05, 0);
  wr(&a, LAPIC_MSR_TIMER_INITIAL, 10, 0);
  assert_int_equal(lapic_next_timer_ns(&a), 10);
  lapic_advance(&a, 10);
  assert_true(irr_empty(&a));
  assert_int_equal(esr_latch(&a), LAPIC_ESR_RECV_ILLEGAL_VECTOR);
}

static void earlier_times_are_treated_as_the_latest_time_seen(void **state) {
  (void)state;
  struct lapic a;
  start_timer(&a, GHZ, DIV_1, 0, 1000, 0);
  lapic_advance(&a, 600);
  assert_int_equal(current(&a, 100), 400);
  wr(&a, LAPIC_MSR_TIMER_INITIAL, 10, 50); /* starts at 600, not 50 */
  assert_int_equal(lapic_next_timer_ns(&a), 610);
}

/* An independent, ns-by-ns reference: the input clock has made
 * floor(t * hz / 1e9) edges by t ns after the start, the counter steps every
 * `divisor` edges, and an expiry happens at the first ns where the step count
 * reaches the next multiple of the initial count. The model's closed-form
 * expiry times (lapic_next_timer_ns) and current counts must agree with it at
 * every ns, for odd clock rates, every divide value and both modes. */
static void timer_matches_a_ns_by_ns_reference(void **state) {
  (void)state;
  static const uint32_t divides[] = {DIV_1, DIV_2, DIV_4, DIV_8, DIV_16, DIV_32, DIV_64, DIV_128};
  static const uint64_t divisor[] = {1, 2, 4, 8, 16, 32, 64, 128};
  uint64_t rng = 12345, total_ns = 0, total_fires = 0;
  for (int trial = 0; trial < 400; trial++) {
    rng = rng * UINT64_C(6364136223846793005) + 1442695040888963407u;
    uint32_t r = (uint32_t)(rng >> 33);
    uint64_t hz = trial < 8 ? (uint64_t[]){GHZ, 999999999, 133333333, 100000000, 66666667,
                                           300000000, 400000001, 50000000}[trial]
            : (trial & 1) ? 1000000 + r % 999000001u /* up to 1 GHz */
                          : 1000000 + r % 20000000u;  /* slow clocks: long steps */
    unsigned d = (r >> 3) % 8;
    uint32_t initial = 1 + (r >> 7) % 12;
    bool periodic = (r >> 13) & 1;
    uint64_t start = (r >> 14) % 1000;
    struct lapic a;
    start_timer(&a, hz, divides[d], periodic ? LAPIC_LVT_TIMER_PERIODIC : 0, initial, start);
    uint64_t predicted = lapic_next_timer_ns(&a);
    uint64_t fires = 0;
    uint64_t horizon = start + 3 * initial * divisor[d] * GHZ / hz + 50;
    for (uint64_t t = start + 1; t <= horizon; t++) {
      uint64_t steps = (t - start) * hz / GHZ / divisor[d];
      uint64_t steps_before = (t - 1 - start) * hz / GHZ / divisor[d];
      bool ref_fires = steps / initial > steps_before / initial && (periodic || fires == 0);
      lapic_advance(&a, t);
      bool fired = lapic_pending_vector(&a) == (int)VEC;
      assert_int_equal(fired, ref_fires);
      if (fired) {
        assert_int_equal(predicted, t);
        fires++;
        assert_int_equal(lapic_acknowledge(&a), VEC);
        wr(&a, LAPIC_MSR_EOI, 0, t);
        predicted = lapic_next_timer_ns(&a);
      }
      uint32_t expect = periodic ? (uint32_t)(initial - steps % initial)
                                 : (steps >= initial ? 0 : (uint32_t)(initial - steps));
      assert_int_equal(current(&a, t), expect);
    }
    assert_true(fires >= 1);
    total_ns += horizon - start; total_fires += fires;
    assert_int_equal(fires, a.stat_timer_expiries);
    if (!periodic) assert_int_equal(predicted, LAPIC_NO_TIMER);
  }
  print_message("checked %llu ns, %llu expiries\n", (unsigned long long)total_ns,
                (unsigned long long)total_fires);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(oneshot_fires_at_the_exact_ns_for_every_divide),
      cmocka_unit_test(periodic_expiries_are_exact_and_do_not_drift),
      cmocka_unit_test(periodic_timer_at_one_ghz_has_a_period_of_count_times_divide),
      cmocka_unit_test(current_count_reads_follow_simulated_time),
      cmocka_unit_test(masked_timer_counts_but_never_sets_irr),
      cmocka_unit_test(writing_initial_count_zero_stops_the_timer),
      cmocka_unit_test(rewriting_initial_count_mid_count_restarts_from_it),
      cmocka_unit_test(divide_change_mid_count_continues_from_the_current_count),
      cmocka_unit_test(changing_the_timer_mode_does_not_restart_the_count),
      cmocka_unit_test(missed_periods_coalesce_into_one_pending_interrupt),
      cmocka_unit_test(any_later_call_catches_up_a_missed_expiry),
      cmocka_unit_test(timer_with_an_illegal_vector_sets_esr_instead_of_irr),
      cmocka_unit_test(earlier_times_are_treated_as_the_latest_time_seen),
      cmocka_unit_test(timer_matches_a_ns_by_ns_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
