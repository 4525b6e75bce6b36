/* test_apf_abi_2020.c — the 2020 ABI of a 5.8+ host (Linux 5.10): page-ready as an
 * interrupt on the MSR_KVM_ASYNC_PF_INT vector with the token in the shared slot, only
 * while the slot reads 0; the guest clears the slot and writes ACK, which rescans the
 * queue; no page-ready for a not-present that was never delivered; prefault when
 * presented; and, over a long pseudo-random run on two vCPUs, every page-ready matches an
 * earlier not-present token exactly once and nothing is left outstanding at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

static struct fx *enabled2020(unsigned n) {
  struct apf_engine_config c = fx_cfg_2020(n);
  struct fx *f = fx_new(&c);
  for (unsigned v = 0; v < n; v++) fx_enable(f, v, 0);
  return f;
}

static uint32_t apf(struct fx *f, unsigned v, uint64_t gfn) {
  struct apf_decision d = fx_fault(f, v, gfn);
  assert_int_equal(d.outcome, APF_OUTCOME_ASYNC);
  fx_take_pf(f, v);
  return d.token;
}

static void page_ready_writes_the_token_slot_and_raises_the_vector(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  uint32_t t = apf(f, 0, 0x10);
  fx_clear_records(f);
  f->now = 7000;
  apf_fetch_done(f->e, 0x10, false);
  /* Completion: queued, the vCPU kicked out of guest mode to present it. */
  assert_int_equal(f->kicks_running[0], 1);
  assert_int_equal(f->n_irq, 0);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), 0);
  assert_int_equal(f->n_prefault, 0);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 1);
  assert_int_equal(f->irq[0].vector, FX_VEC);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), t);
  assert_int_equal(f->n_inj, 0);
  /* Prefault when presented, not when the read finished. */
  assert_int_equal(f->n_prefault, 1);
  assert_int_equal(f->prefault[0], 0x10);
  assert_string_equal(f->trace[0], "7000 cpu0 kvm_async_pf_completed: gva 0x10000 address 0x10000");
  assert_string_equal(f->trace[1], "7000 cpu0 apf_prefault: gfn 0x10");
  assert_string_equal(f->trace[2], "7000 cpu0 kvm_async_pf_ready: token 0x1000 gva 0x10000");
  assert_string_equal(f->trace[3], "7000 cpu0 apf_page_ready_irq: token 0x1000 vector 0xf3");
  assert_int_equal(fx_guest_page_ready(f, 0), t);
  assert_int_equal(apf_vcpu_stats(f->e, 0)->outstanding, 0);
  fx_free(f);
}

static void a_busy_slot_delays_the_next_page_ready_until_ack(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  uint32_t a = apf(f, 0, 0x20), b = apf(f, 0, 0x21), c = apf(f, 0, 0x22);
  fx_clear_records(f);
  apf_fetch_done(f->e, 0x20, false);
  apf_fetch_done(f->e, 0x21, false);
  apf_fetch_done(f->e, 0x22, false);
  /* Only the first completion requests presentation (the others find a non-empty queue). */
  assert_int_equal(f->kicks_running[0], 1);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 1);
  assert_true(fx_has_trace(f, "apf_page_ready_deferred: token 0x2000 why slot_busy slot 0x1000"));
  /* More entries change nothing while the guest holds the slot. */
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 1);
  /* The guest clears the slot but has not written ACK yet: still nothing. */
  fx_wr32(f, FX_AREA(0) + APF_AREA_TOKEN, 0);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 1);
  /* ACK rescans: the next one goes out at once. */
  fx_wr32(f, FX_AREA(0) + APF_AREA_TOKEN, a);
  assert_int_equal(fx_guest_page_ready(f, 0), a);
  assert_int_equal(f->n_irq, 2);
  assert_int_equal(fx_guest_page_ready(f, 0), b);
  assert_int_equal(f->n_irq, 3);
  assert_int_equal(fx_guest_page_ready(f, 0), c);
  assert_int_equal(f->n_irq, 3);
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->page_ready, 3);
  assert_int_equal(s->page_ready_deferred, 2);
  assert_int_equal(s->acks, 4); /* and the wake-all's at enable */
  assert_int_equal(s->outstanding, 0);
  fx_free(f);
}

static void a_page_ready_in_the_guests_hands_stops_the_kick(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  apf(f, 0, 0x30);
  apf(f, 0, 0x31);
  apf_fetch_done(f->e, 0x30, false);
  apf_vcpu_service(f->e, 0);
  fx_clear_records(f);
  /* Queue empty again, page-ready pending: request, wake a blocked vCPU, no interrupt. */
  apf_fetch_done(f->e, 0x31, false);
  assert_int_equal(f->kicks[0], 1);
  assert_int_equal(f->kicks_running[0], 0);
  apf_vcpu_service(f->e, 0); /* slot busy */
  assert_int_equal(f->n_irq, 0);
  fx_guest_page_ready(f, 0);
  assert_int_equal(f->n_irq, 1);
  fx_free(f);
}

static void no_page_ready_for_a_not_present_never_delivered(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  f->st[0].cpl = 0;
  struct apf_decision d = fx_fault(f, 0, 0x40);
  assert_int_equal(d.outcome, APF_OUTCOME_HALT);
  apf_fetch_done(f->e, 0x40, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 0);
  assert_int_equal(fx_rd32(f, FX_AREA(0) + APF_AREA_TOKEN), 0);
  assert_true(fx_has_trace(f, "apf_page_ready_suppressed: token 0x1000 why not_present_undelivered"));
  const struct apf_stats *s = apf_vcpu_stats(f->e, 0);
  assert_int_equal(s->page_ready_suppressed, 1);
  assert_int_equal(s->orphan_page_ready, 0);
  assert_int_equal(s->prefaults, 1); /* still mapped for the retry */
  /* The gfn left the hash: the retry is a fresh fault, not a repeated one. */
  f->st[0].cpl = 3;
  assert_int_equal(fx_fault(f, 0, 0x40).outcome, APF_OUTCOME_ASYNC);
  fx_free(f);
}

static void a_suppressed_page_ready_does_not_take_the_slot(void **state) {
  (void)state;
  /* A halted work waits for the slot like any other (KVM's can_dequeue looks at the slot
   * first), then is dropped without a page-ready. */
  struct fx *f = enabled2020(1);
  uint32_t a = apf(f, 0, 0x50);
  f->st[0].cpl = 0;
  assert_int_equal(fx_fault(f, 0, 0x51).outcome, APF_OUTCOME_HALT);
  f->st[0].cpl = 3;
  uint32_t c = apf(f, 0, 0x52);
  apf_fetch_done(f->e, 0x50, false);
  apf_fetch_done(f->e, 0x51, false);
  apf_fetch_done(f->e, 0x52, false);
  apf_vcpu_service(f->e, 0);
  assert_int_equal(f->n_irq, 1);
  assert_int_equal(fx_guest_page_ready(f, 0), a);
  /* The ACK dequeues 0x51 (suppressed) and then 0x52 (delivered). */
  assert_int_equal(f->n_irq, 2);
  assert_int_equal(fx_guest_page_ready(f, 0), c);
  fx_free(f);
}

static void ack_with_nothing_queued_is_harmless(void **state) {
  (void)state;
  struct fx *f = enabled2020(1);
  assert_int_equal(apf_msr_write(f->e, 0, APF_MSR_ACK, 1), APF_MSR_OK);
  assert_int_equal(f->n_irq, 0);
  fx_free(f);
}

/* ---- the long run ---- */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33) % n;
}

#define NV 2
#define NGFN 48

struct run {
  struct fx *f;
  bool reading[NGFN];
  uint32_t told[NV][256]; /* delivered not-present tokens awaiting their page-ready */
  size_t n_told[NV];
  size_t irq_seen;
  size_t fetch_seen;
  unsigned page_readies, wake_alls;
};

static void note_fetches(struct run *r) {
  struct fx *f = r->f;
  for (; r->fetch_seen < f->n_fetch; r->fetch_seen++) {
    struct fx_fetch *x = &f->fetch[r->fetch_seen];
    if (x->blocks) {
      /* A synchronous fault: the vCPU waits for this read — finish it now. */
      apf_fetch_done(f->e, x->gfn, false);
      r->reading[x->gfn] = false;
    } else {
      r->reading[x->gfn] = true;
    }
  }
}

static void guest_handles_irqs(struct run *r) {
  struct fx *f = r->f;
  for (; r->irq_seen < f->n_irq; r->irq_seen++) {
    unsigned v = f->irq[r->irq_seen].vcpu;
    assert_int_equal(f->irq[r->irq_seen].vector, FX_VEC);
    uint32_t token = fx_rd32(f, FX_AREA(v) + APF_AREA_TOKEN);
    assert_int_not_equal(token, 0);
    if (token == APF_TOKEN_WAKE_ALL) {
      r->wake_alls++;
    } else {
      /* It must match a not-present this vCPU was told of, exactly once. */
      size_t k;
      for (k = 0; k < r->n_told[v] && r->told[v][k] != token; k++) {}
      assert_true(k < r->n_told[v]);
      r->told[v][k] = r->told[v][--r->n_told[v]];
      r->page_readies++;
    }
    fx_guest_page_ready(f, v); /* may raise the next irq: the loop picks it up */
  }
}

static void every_page_ready_matches_a_not_present_and_none_is_left(void **state) {
  (void)state;
  struct run *r = calloc(1, sizeof(*r));
  assert_non_null(r);
  struct fx *f = r->f = enabled2020(NV);
  rng_state = 42;
  unsigned outcomes[APF_N_OUTCOMES] = {0};
  for (int step = 0; step < 20000; step++) {
    unsigned v = rnd(NV);
    switch (rnd(4)) {
    case 0: { /* the vCPU touches a page (unless halted) */
      if (f->halted[v]) break;
      fx_take_pf(f, v);
      f->st[v].cpl = rnd(8) == 0 ? 0 : 3;
      f->st[v].interrupts_allowed = rnd(10) != 0;
      uint64_t gfn = rnd(NGFN);
      if (!r->reading[gfn] && rnd(2)) break; /* resident: no fault */
      struct apf_decision d = fx_fault(f, v, gfn);
      outcomes[d.outcome]++;
      if (d.outcome == APF_OUTCOME_ASYNC) {
        assert_true(r->n_told[v] < 256);
        r->told[v][r->n_told[v]++] = d.token;
      }
      note_fetches(r);
      f->st[v].interrupts_allowed = true;
      break;
    }
    case 1: { /* a read finishes */
      uint64_t gfn = rnd(NGFN);
      if (r->reading[gfn]) {
        f->now += 1000;
        r->reading[gfn] = false;
        apf_fetch_done(f->e, gfn, false);
      }
      break;
    }
    case 2: /* the vCPU enters the guest */
      apf_vcpu_service(f->e, v);
      break;
    case 3: /* the guest takes pending page-ready interrupts */
      guest_handles_irqs(r);
      break;
    }
  }
  /* Drain: every read finishes, every vCPU enters, the guest handles everything. */
  for (uint64_t g = 0; g < NGFN; g++)
    if (r->reading[g]) apf_fetch_done(f->e, g, false), r->reading[g] = false;
  for (int round = 0; round < 200; round++) {
    for (unsigned v = 0; v < NV; v++) apf_vcpu_service(f->e, v);
    guest_handles_irqs(r);
  }
  struct apf_stats t;
  apf_total_stats(f->e, &t);
  for (unsigned v = 0; v < NV; v++) {
    assert_int_equal(r->n_told[v], 0);
    assert_int_equal(apf_vcpu_stats(f->e, v)->outstanding, 0);
    assert_false(apf_vcpu_has_events(f->e, v));
    for (int i = 0; i < 64; i++) assert_int_equal(f->e->vcpus[v].gfns[i], APF_GFN_EMPTY);
  }
  assert_int_equal(t.page_ready, r->page_readies);
  assert_int_equal(t.page_ready, t.not_present);
  assert_int_equal(t.completed, t.works);
  assert_int_equal(t.page_ready + t.page_ready_suppressed, t.works);
  assert_int_equal(t.orphan_page_ready, 0);
  /* The run exercised all three outcomes and repeated faults. */
  assert_true(outcomes[APF_OUTCOME_ASYNC] > 100);
  assert_true(outcomes[APF_OUTCOME_HALT] > 10);
  assert_true(outcomes[APF_OUTCOME_SYNC] > 10);
  assert_true(t.repeated_faults > 10);
  assert_true(t.page_ready_deferred > 10);
  fx_free(f);
  free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(page_ready_writes_the_token_slot_and_raises_the_vector),
      cmocka_unit_test(a_busy_slot_delays_the_next_page_ready_until_ack),
      cmocka_unit_test(a_page_ready_in_the_guests_hands_stops_the_kick),
      cmocka_unit_test(no_page_ready_for_a_not_present_never_delivered),
      cmocka_unit_test(a_suppressed_page_ready_does_not_take_the_slot),
      cmocka_unit_test(ack_with_nothing_queued_is_harmless),
      cmocka_unit_test(every_page_ready_matches_a_not_present_and_none_is_left),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
