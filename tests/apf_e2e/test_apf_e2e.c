/* test_apf_e2e.c — the APF engine wired into the machine, end to end: the real guest
 * kernel on the machine (tests/machine/harness.c drives it without SystemC), the host's
 * engine deciding every host fault, and assertions on SEQUENCES of the run's trace —
 * the host's KVM-named events and the guest's (apf_wait / apf_wake / apf_resume, which
 * the machine derives from the guest's process statistics).
 *
 * One executable, one ctest per case: `test_apf_e2e CASE` (tests/apf_e2e/CMakeLists.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "loader/boot_info.h"

/* ---------- the trace as events ---------- */

struct ev {
  uint64_t t;
  int cpu; /* vCPU, -1 host, -2 dev */
  char name[48];
  char fields[208];
};

struct evs {
  struct ev *v;
  size_t n;
};

static void load_trace(const char *path, struct evs *out) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t cap = 4096;
  out->v = malloc(cap * sizeof *out->v);
  out->n = 0;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    struct ev e = {0};
    char cpu[16];
    int off = 0;
    if (sscanf(line, "%lu %15s %47s %n", &e.t, cpu, e.name, &off) < 3) continue;
    e.cpu = !strncmp(cpu, "cpu", 3) ? atoi(cpu + 3) : !strcmp(cpu, "host") ? -1 : -2;
    snprintf(e.fields, sizeof e.fields, "%s", line + off);
    e.fields[strcspn(e.fields, "\n")] = '\0';
    if (out->n == cap) out->v = realloc(out->v, (cap *= 2) * sizeof *out->v);
    out->v[out->n++] = e;
  }
  fclose(f);
}

/* The value after "key " in fields, as a number (hex with 0x), or fails. */
static uint64_t field(const struct ev *e, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "%s ", key);
  const char *p = strstr(e->fields, k);
  if (!p) fail_msg("event %s has no field %s: %s", e->name, key, e->fields);
  return strtoull(p + strlen(k), NULL, 0);
}

static bool is(const struct ev *e, const char *name) { return !strcmp(e->name, name); }
static bool has(const struct ev *e, const char *text) { return strstr(e->fields, text) != NULL; }

/* The first event at or after `from` named `name` (on `cpu` unless cpu == -9) with
 * `key` == value (unless key is NULL); SIZE_MAX if none. */
static size_t find(const struct evs *s, size_t from, const char *name, int cpu, const char *key, uint64_t value) {
  for (size_t k = from; k < s->n; k++) {
    const struct ev *e = &s->v[k];
    if (!is(e, name) || (cpu != -9 && e->cpu != cpu)) continue;
    if (key && field(e, key) != value) continue;
    return k;
  }
  return SIZE_MAX;
}

static size_t count(const struct evs *s, const char *name, const char *text) {
  size_t n = 0;
  for (size_t k = 0; k < s->n; k++)
    if (is(&s->v[k], name) && (!text || has(&s->v[k], text))) n++;
  return n;
}

/* ---------- running a configuration ---------- */

struct run {
  struct harness h;
  struct run_summary s;
  struct evs ev;
  char trace[256];
};

static struct sim_config *load(const char *path, const char *const *sets, size_t n) {
  struct sim_config *cfg = config_new();
  struct diag d = {{0}};
  if (!config_load(path, sets, n, NULL, cfg, &d)) fail_msg("%s", d.msg);
  return cfg;
}

static struct sim_config *scenario(const char *name, const char *const *sets, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/configs/%s", APFSIM_SOURCE_DIR, name);
  return load(path, sets, n);
}

static struct sim_config *queue_config(const char *const *sets, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/apf_e2e/queue.xml", APFSIM_SOURCE_DIR);
  return load(path, sets, n);
}

/* The host evicts every process's memory at at_ns (a scripted eviction of the user range
 * the guest lays out), once the processes run: their next touches, in user mode, are
 * reads — and, with APF on, not-present events. */
static void swap_out_user_memory(struct sim_config *cfg, uint64_t at_ns) {
  struct diag d = {{0}};
  struct guest_image *img = machine_open_kernel(cfg, &d);
  if (!img) fail_msg("%s", d.msg);
  struct apfsim_boot_info bi;
  if (!guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d)) fail_msg("%s", d.msg);
  struct apfsim_guest_layout l = {0};
  const char *why = apfsim_guest_layout(&bi, img->contract.image_end, &l);
  if (why) fail_msg("layout: %s", why);
  guest_image_free(img);
  cfg->host.n_evictions = 1;
  cfg->host.evictions[0] = (struct scripted_eviction){at_ns, l.user_start, l.user_end - l.user_start};
}

static void run(struct run *r, struct sim_config *cfg, const char *tag) {
  snprintf(r->trace, sizeof r->trace, "apf_e2e_%s.trace", tag);
  hx_start(&r->h, cfg, r->trace);
  hx_run(&r->h, cfg->limits.max_sim_time_ns * 1000, NULL, NULL);
  hx_finish(&r->h, &r->s);
  load_trace(r->trace, &r->ev);
}

static void done(struct run *r) {
  free(r->ev.v);
  hx_free(&r->h);
}

/* ---------- invariants shared by the cases ---------- */

/* 2020 ABI: every page-ready interrupt's token (wake-alls aside) was delivered as a
 * not-present earlier on the same vCPU, and is sent once. Returns how many. */
static size_t check_2020_tokens(const struct evs *s) {
  size_t n = 0;
  for (size_t k = 0; k < s->n; k++) {
    const struct ev *e = &s->v[k];
    if (!is(e, "apf_page_ready_irq") || field(e, "token") == 0xffffffffu) continue;
    const uint64_t t = field(e, "token");
    size_t np = SIZE_MAX;
    for (size_t j = 0; j < k; j++)
      if (is(&s->v[j], "apf_inject_pf") && s->v[j].cpu == e->cpu && has(&s->v[j], "kind not_present") &&
          field(&s->v[j], "cr2") == t)
        np = j;
    if (np == SIZE_MAX) fail_msg("page-ready %#lx at %lu has no earlier not-present", t, e->t);
    assert_int_equal(find(s, k + 1, "apf_page_ready_irq", e->cpu, "token", t), SIZE_MAX);
    n++;
  }
  return n;
}

/* ---------- cases ---------- */

/* Token T: not-present #PF → the task sleeps on T → page-ready T (interrupt) → the same
 * task is woken and runs again; under the 2020 rules throughout. */
static void sleep_wake_2020(void **state) {
  (void)state;
  struct run r;
  run(&r, scenario("apf-2020.xml", NULL, 0), "sleep_wake");
  const struct evs *s = &r.ev;
  size_t chains = 0;
  for (size_t k = 0; k < s->n; k++) {
    const struct ev *np = &s->v[k];
    if (!is(np, "apf_inject_pf") || !has(np, "kind not_present")) continue;
    const uint64_t t = field(np, "cr2");
    const int cpu = np->cpu;
    /* the host said not-present for T first, then injected it */
    const size_t kn = find(s, 0, "kvm_async_pf_not_present", cpu, "token", t);
    assert_true(kn < k);
    const size_t ks = find(s, k, "apf_wait", -9, "token", t);
    const size_t kr = find(s, k, "apf_page_ready_irq", cpu, "token", t);
    if (kr == SIZE_MAX) continue; /* still outstanding when the run ended */
    /* The guest's side is sampled at slice ends: a sleep that began and ended within one
     * slice (e.g. its #PF's delivery waited for the page itself, then the page-ready came
     * at once) is not seen. Every sleep that is seen must come before its page-ready. */
    if (ks == SIZE_MAX || ks > kr) {
      assert_int_equal(find(s, 0, "apf_wake", -9, "token", t), SIZE_MAX);
      continue;
    }
    const uint64_t pid = field(&s->v[ks], "pid");
    assert_true(find(s, kn, "kvm_async_pf_completed", cpu, NULL, 0) < kr);
    assert_true(find(s, kr, "interrupt", cpu, "vector", 0xf3) != SIZE_MAX);
    const size_t kw = find(s, kr, "apf_wake", -9, "token", t);
    assert_true(kw != SIZE_MAX);
    assert_int_equal(field(&s->v[kw], "pid"), pid); /* the sleeper is the one woken */
    const size_t ku = find(s, kw, "apf_resume", -9, "token", t);
    if (ku == SIZE_MAX) { /* only if the run ended first: nothing more of that task */
      assert_int_equal(find(s, kw + 1, "apf_wait", -9, "pid", pid), SIZE_MAX);
      continue;
    }
    assert_int_equal(field(&s->v[ku], "pid"), pid); /* and runs again */
    /* the guest cleared the slot and acknowledged */
    assert_true(find(s, kr, "apf_ack", cpu, NULL, 0) != SIZE_MAX);
    chains++;
  }
  print_message("%zu complete not-present -> sleep -> page-ready -> wake -> resume chains\n", chains);
  assert_true(chains >= 8);
  assert_true(check_2020_tokens(s) >= chains);
  assert_int_equal(r.s.outcome, OUTCOME_OK);
  done(&r);
}

/* A run that completes: every not-present got its page-ready, nothing is outstanding. */
static void completes_2020(void **state) {
  (void)state;
  const char *sets[] = {"workload/process[1]/ops=3000", "workload/process[2]/ops=2600", "limits/max-sim-time=3s"};
  struct run r;
  run(&r, scenario("apf-2020.xml", sets, 3), "completes");
  assert_int_equal(r.s.outcome, OUTCOME_OK);
  assert_true(strstr(r.s.verdict, "all 5 processes finished") != NULL);
  assert_int_equal(r.s.apf.outstanding, 0);
  assert_true(r.s.apf.not_present >= 10);
  assert_int_equal(check_2020_tokens(&r.ev), r.s.apf.page_ready);
  /* every delivered not-present came back as a page-ready (none suppressed at the end) */
  assert_int_equal(count(&r.ev, "apf_inject_pf", "kind not_present"), r.s.apf.page_ready);
  assert_int_equal(r.s.apf.dummy_nodes, 0);
  done(&r);
}

/* Pre-5.8 host: a not-present withheld (synthetic halt at CPL 0) still gets its
 * page-ready #PF — an orphan — and the guest, finding no sleeper, leaves a dummy node. */
static void orphans_2010(void **state) {
  (void)state;
  struct run r;
  run(&r, scenario("apf-2010.xml", NULL, 0), "orphans");
  const struct evs *s = &r.ev;
  size_t orphans = 0;
  for (size_t k = 0; k < s->n; k++) {
    if (!is(&s->v[k], "apf_orphan_page_ready")) continue;
    const uint64_t t = field(&s->v[k], "token");
    const int cpu = s->v[k].cpu;
    const size_t kn = find(s, 0, "kvm_async_pf_not_present", cpu, "token", t);
    assert_true(kn < k);
    /* withheld: a synthetic halt right after, never a not-present #PF with that token */
    assert_true(is(&s->v[kn + 1], "apf_synthetic_halt"));
    for (size_t j = 0; j < s->n; j++)
      assert_false(is(&s->v[j], "apf_inject_pf") && has(&s->v[j], "kind not_present") && field(&s->v[j], "cr2") == t);
    /* the page-ready #PF goes out anyway */
    const size_t kp = find(s, k, "apf_inject_pf", cpu, "cr2", t);
    assert_true(kp != SIZE_MAX && has(&s->v[kp], "kind page_ready"));
    orphans++;
  }
  assert_true(orphans >= 1);
  assert_int_equal(r.s.apf.dummy_nodes, orphans);
  /* the 2010 page-readies of delivered not-presents are ordinary wakes */
  assert_true(r.s.apf.page_ready > orphans);
  done(&r);
}

/* Outstanding works on a vCPU before the fault that finds the queue full. */
static void check_queue_full(const struct evs *s, uint64_t max) {
  size_t works = 0, presented = 0, full = 0;
  for (size_t k = 0; k < s->n; k++) {
    const struct ev *e = &s->v[k];
    if (e->cpu != 0) continue;
    if (is(e, "kvm_async_pf_not_present")) works++;
    if (is(e, "kvm_async_pf_ready") && field(e, "token") != 0xffffffffu) presented++;
    if (is(e, "apf_sync_fault") && has(e, "why queue_full")) {
      assert_int_equal(works - presented, max); /* exactly max outstanding: the next is synchronous */
      const size_t ks = find(s, k, "sync_fault_start", 0, NULL, 0);
      assert_true(ks == k + 1);
      full++;
    }
    if (is(e, "apf_synthetic_halt") || is(e, "apf_sync_fault")) continue;
    assert_true(works - presented <= max);
  }
  assert_true(full >= 1);
}

static void queue_full_4(void **state) {
  (void)state;
  struct sim_config *cfg = queue_config(NULL, 0);
  swap_out_user_memory(cfg, 10000000);
  struct run r;
  run(&r, cfg, "queue4");
  check_queue_full(&r.ev, 4);
  assert_int_equal(r.s.outcome, OUTCOME_OK);
  done(&r);
}

static void queue_full_64(void **state) {
  (void)state;
  /* 70 processes take ~75 ms to start on one vCPU: evict once they all run */
  const char *sets[] = {"apf/max-outstanding=64", "workload/process[1]/count=35", "workload/process[2]/count=35",
                        "limits/max-sim-time=140ms"};
  struct sim_config *cfg = queue_config(sets, 4);
  swap_out_user_memory(cfg, 90000000);
  struct run r;
  run(&r, cfg, "queue64");
  check_queue_full(&r.ev, 64);
  assert_int_equal(r.s.outcome, OUTCOME_OK);
  done(&r);
}

/* 2020: while the guest holds a page-ready (its token slot is not 0), the next waits;
 * the guest's ACK (after it zeroed the slot) lets it through. */
static void slot_busy(void **state) {
  (void)state;
  /* Reads of 2 ms plus up to 10 us: the faults come a few us apart, so jitter of that size
   * makes some completions land before the guest ACKed the previous page-ready, however
   * long its fault-to-switch path takes (a fixed latency keeps their spacing exactly). */
  const char *sets[] = {"apf/max-outstanding=64", "workload/process[1]/count=8", "workload/process[2]/count=8",
                        "swap-device/@preset=custom", "swap-device/latency/@dist=uniform",
                        "swap-device/latency/min=2ms", "swap-device/latency/max=2010us", "swap-device/channels=64"};
  struct sim_config *cfg = queue_config(sets, 8);
  swap_out_user_memory(cfg, 10000000);
  struct run r;
  run(&r, cfg, "slot_busy");
  const struct evs *s = &r.ev;
  size_t seen = 0, raised = 0;
  for (size_t k = 0; k < s->n; k++) {
    const struct ev *d = &s->v[k];
    if (!is(d, "apf_page_ready_deferred") || !has(d, "why slot_busy")) continue;
    const uint64_t t2 = field(d, "token"), slot = field(d, "slot");
    assert_true(slot != 0);
    /* the token in the slot was the last page-ready raised on that vCPU, not yet ACKed */
    size_t k1 = SIZE_MAX;
    for (size_t j = k; j-- > 0;)
      if (is(&s->v[j], "apf_page_ready_irq") && s->v[j].cpu == d->cpu) {
        k1 = j;
        break;
      }
    assert_true(k1 != SIZE_MAX);
    assert_int_equal(field(&s->v[k1], "token"), slot);
    assert_true(find(s, k1, "apf_ack", d->cpu, NULL, 0) > k);
    /* T2 leaves the queue only at the next ACK (then raised, or suppressed when its
     * not-present was never delivered), and nothing is raised in between */
    const size_t ka = find(s, k, "apf_ack", d->cpu, NULL, 0);
    const size_t kd = find(s, k, "kvm_async_pf_ready", d->cpu, "token", t2);
    assert_true(ka != SIZE_MAX && kd != SIZE_MAX && ka < kd && s->v[ka].t == s->v[kd].t);
    const size_t k2 = find(s, k, "apf_page_ready_irq", d->cpu, "token", t2);
    if (k2 == kd + 1) {
      assert_true(find(s, k1 + 1, "apf_page_ready_irq", d->cpu, NULL, 0) == k2);
      raised++;
    } else {
      assert_true(is(&s->v[kd + 1], "apf_page_ready_suppressed"));
    }
    seen++;
  }
  assert_true(seen >= 1 && raised >= 1);
  check_2020_tokens(s);
  assert_int_equal(r.s.outcome, OUTCOME_OK);
  done(&r);
}

/* Enabling APF queues a wake-all (token 0xffffffff), delivered as the ABI says. */
static void wake_all_on_enable(void **state) {
  (void)state;
  const char *protos[] = {"2020", "2010"};
  for (int p = 0; p < 2; p++) {
    char set[64];
    snprintf(set, sizeof set, "apf/protocol=%s", protos[p]);
    const char *sets[] = {set, "limits/max-sim-time=5ms"};
    struct run r;
    run(&r, scenario("apf-2020.xml", sets, 2), protos[p]);
    const struct evs *s = &r.ev;
    for (int cpu = 0; cpu < 2; cpu++) {
      const size_t ke = find(s, 0, "apf_msr_write", cpu, "msr", 0x4b564d02);
      assert_true(ke != SIZE_MAX && has(&s->v[ke], " ok"));
      /* queued by the EN write itself (traced inside it, so just before its line) */
      const size_t kq = find(s, 0, "apf_wake_all", cpu, NULL, 0);
      assert_true(kq == ke - 1 && s->v[kq].t == s->v[ke].t && has(&s->v[kq], "token 0xffffffff queued"));
      const size_t kr = find(s, kq, "kvm_async_pf_ready", cpu, "token", 0xffffffff);
      assert_true(kr != SIZE_MAX);
      if (p == 0) {
        const size_t ki = find(s, kr, "apf_page_ready_irq", cpu, "token", 0xffffffff);
        assert_true(ki == kr + 1);
        assert_true(find(s, ki, "interrupt", cpu, "vector", 0xf3) < find(s, ki, "apf_ack", cpu, NULL, 0));
      } else {
        const size_t ki = find(s, kr, "apf_inject_pf", cpu, "cr2", 0xffffffff);
        assert_true(ki == kr + 1 && has(&s->v[ki], "kind wake_all"));
      }
    }
    assert_int_equal(r.s.apf.wake_all, 2);
    done(&r);
  }
}

/* An APF at CPL 0 without send-always is not delivered: the vCPU halts (synthetic
 * halt) and, on a 5.8+ host, the guest never hears of that token. */
static void cpl0_halts(void **state) {
  (void)state;
  struct run r;
  run(&r, scenario("apf-2020.xml", NULL, 0), "cpl0");
  const struct evs *s = &r.ev;
  size_t n = 0;
  for (size_t k = 0; k < s->n; k++) {
    const struct ev *h = &s->v[k];
    if (!is(h, "apf_synthetic_halt") || !has(h, "why cpl0_without_send_always")) continue;
    const struct ev *np = &s->v[k - 1];
    assert_true(is(np, "kvm_async_pf_not_present") && np->cpu == h->cpu);
    const uint64_t t = field(np, "token");
    for (size_t j = 0; j < s->n; j++) {
      if (s->v[j].cpu != h->cpu) continue;
      assert_false(is(&s->v[j], "apf_inject_pf") && field(&s->v[j], "cr2") == t);
      assert_false(is(&s->v[j], "apf_page_ready_irq") && field(&s->v[j], "token") == t);
    }
    /* the vCPU halts, and its page-ready is suppressed when the read completes */
    const size_t kh = find(s, k, "vcpu_state", h->cpu, NULL, 0);
    assert_true(kh != SIZE_MAX && has(&s->v[kh], "state halted"));
    const size_t ksup = find(s, k, "apf_page_ready_suppressed", h->cpu, "token", t);
    if (ksup != SIZE_MAX) assert_true(has(&s->v[ksup], "why not_present_undelivered"));
    n++;
  }
  assert_true(n >= 1);
  done(&r);
}

/* The halt protocol: the guest never enables APF; faults become async reads with
 * synthetic halts that any interrupt or the page ends. */
static void halt_protocol(void **state) {
  (void)state;
  struct run r;
  run(&r, scenario("apf-halt.xml", NULL, 0), "halt");
  const struct evs *s = &r.ev;
  assert_int_equal(count(s, "apf_inject_pf", NULL), 0);
  assert_int_equal(count(s, "apf_page_ready_irq", NULL), 0);
  /* the first fault on a page: its read starts and the vCPU halts; the retries the
   * timer's interrupts cause while it is in flight are repeated faults, halting again */
  size_t halts = count(s, "apf_synthetic_halt", "why apf_not_enabled");
  assert_true(halts >= 2 && count(s, "apf_synthetic_halt", "why repeated_fault") >= 10);
  assert_int_equal(halts + count(s, "apf_synthetic_halt", "why repeated_fault") +
                       count(s, "apf_synthetic_halt", "why cpl0"),
                   r.s.apf.synthetic_halts);
  /* every halt ends: the vCPU is back in the guest (kernel or user) afterwards */
  for (size_t k = 0; k < s->n; k++) {
    if (!is(&s->v[k], "apf_synthetic_halt")) continue;
    const size_t kh = find(s, k, "vcpu_state", s->v[k].cpu, NULL, 0);
    if (kh == SIZE_MAX) continue;
    assert_true(has(&s->v[kh], "state halted"));
    const size_t kb = find(s, kh + 1, "vcpu_state", s->v[k].cpu, NULL, 0);
    if (kb != SIZE_MAX) assert_false(has(&s->v[kb], "state halted"));
  }
  done(&r);
}

/* Not-present by #VE (apfsim's ABI): the token travels in the #VE area, never in CR2
 * or the APF word; the task sleeps on it and the 2020 page-ready wakes it. */
static void ve_not_present(void **state) {
  (void)state;
  const char *sets[] = {"guest/not-present-delivery=ve"};
  struct run r;
  run(&r, scenario("apf-2020.xml", sets, 1), "ve");
  const struct evs *s = &r.ev;
  assert_int_equal(count(s, "apf_inject_pf", "kind not_present"), 0);
  const size_t n = count(s, "apf_inject_ve", "kind not_present");
  assert_true(n >= 10);
  assert_int_equal(n, r.s.apf.not_present);
  size_t woken = 0;
  for (size_t k = 0; k < s->n; k++) {
    if (!is(&s->v[k], "apf_inject_ve")) continue;
    const uint64_t t = field(&s->v[k], "token");
    const size_t kr = find(s, k, "apf_page_ready_irq", s->v[k].cpu, "token", t);
    if (kr == SIZE_MAX) continue;
    const size_t ks = find(s, k, "apf_wait", -9, "token", t);
    if (ks != SIZE_MAX && ks < kr && find(s, kr, "apf_wake", -9, "token", t) != SIZE_MAX) woken++;
  }
  assert_true(woken >= 8);
  assert_int_equal(r.s.outcome, OUTCOME_OK);
  done(&r);
}

int main(int argc, char **argv) {
  const struct CMUnitTest all[] = {
      cmocka_unit_test(sleep_wake_2020), cmocka_unit_test(completes_2020), cmocka_unit_test(orphans_2010),
      cmocka_unit_test(queue_full_4),    cmocka_unit_test(queue_full_64),  cmocka_unit_test(slot_busy),
      cmocka_unit_test(wake_all_on_enable), cmocka_unit_test(cpl0_halts), cmocka_unit_test(halt_protocol),
      cmocka_unit_test(ve_not_present),
  };
  if (argc > 1) cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(all, NULL, NULL);
}
