/* host_bench.c — the host (KVM) side of memory seen through a real vCPU (issue 5 item 8):
 *
 *  ept_round_trip/pages:N — the host evicts N guest pages (to swap), then the guest loads
 *    one word from each: per page, Unicorn #PF -> shadow verdict HOST_FAULT -> vcpu_run
 *    exits VCPU_EXIT_EPT_VIOLATION with RIP on the load -> ept_classify (SWAP_IN) ->
 *    ept_start_fetch + ept_complete_fetch (the device is not modelled: the read is done at
 *    once) -> vcpu_run again: the load retries, the shadow refills the leaf, the loop goes
 *    on. Each iteration then runs the same pass again with every page resident, so the
 *    difference of the two passes is what the round trip adds to an access:
 *      round_trip_ns   (faulting pass - warm pass) / N;
 *      evict_ns        ept_evict (shadow zap) plus carrying out its TLB flush on the vCPU,
 *                      per page. Up to 16 queued pages are flushed one INVLPG each, more
 *                      make the vCPU reload CR3 (sim/cpu/vcpu.c), so N = 256 flushes the
 *                      whole Unicorn TLB once: its faulting pass also refills the code
 *                      page's translation, which the warm pass does not;
 *      fault_pass_ns, warm_pass_ns  per page.
 *    All four are CPU time of the bench thread. The time Google Benchmark reports covers
 *    everything, evictions included.
 *
 *  warm_mips/<loop>/ws:P/<host> — guest MIPS over a warm working set of P pages (a loop
 *    touching one quadword every 64 bytes, read-only or read-modify-write), with
 *      shadow_only   the shadow MMU and no EPT (every page resident: vcpu_bench's path);
 *      no_limit      shadow + EPT, no reclaim (a machine without host/memory-limit);
 *      limit         shadow + EPT + CLOCK reclaim with a budget 64 pages above everything
 *                    the run ever makes resident, so the warm-up pass zero-fills the working
 *                    set and nothing is evicted or faults afterwards.
 *    ept_exits counts EPT violations in the timed passes (0 when the set is warm).
 *
 * Guest RAM is 32 MiB, identity-mapped with 4 KiB pages; guest code is machine code written
 * into guest memory (the assembly is beside each byte string).
 * Run: cmake --build build --target host_bench &&
 *      build/bench/host_bench --benchmark_counters_tabular=true */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cpu/vcpu.h"
#include "mmu/ept.h"
#include "mmu/reclaim.h"
#include "mmu/shadow.h"

#define PAGE UINT64_C(4096)
#define MEM_BYTES (UINT64_C(32) << 20)
#define POOL_BYTES (UINT64_C(4) << 20)
#define GDT 0x1000
#define TSS 0x2000
#define IDT 0x3000
#define PML4 0x10000
#define PDPT 0x11000
#define PD 0x12000
#define PT 0x13000 /* 16 page tables map the 32 MiB */
#define STACK_TOP 0x80000
#define CODE 0x100000
#define LOADED_BYTES (CODE + PAGE) /* what the "simulator" wrote: tables, GDT, code */
#define WORKSET 0x1000000          /* 16 MiB: the working set / evicted pages start here */
#define STEPS_PER_ITERATION (UINT64_C(1) << 22) /* warm_mips: loads or stores per timed pass */

static void die(const char *what, const char *msg) {
  fprintf(stderr, "host_bench: %s: %s\n", what, msg);
  exit(1);
}

/* This thread's CPU time, not wall time: the bench host is shared, and the passes are
 * pure computation (Unicorn never sleeps), so CPU time is what they cost. Google
 * Benchmark's rates (MIPS, items_per_second) are per CPU second as well. */
static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void put(uint8_t *p, uint64_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- guest code ---- */

/* The round-trip pass over n pages (2 + 4n + 1 instructions):
 *      mov rsi, WORKSET        48 c7 c6 imm32
 *      mov ecx, n              b9 imm32
 *   1: mov rax, [rsi]          48 8b 06
 *      add rsi, 4096           48 81 c6 00 10 00 00
 *      dec ecx                 ff c9
 *      jnz 1b                  75 f2      (-14: back over the 14-byte body)
 *      hlt                     f4 */
static size_t write_touch_pages(uint8_t *p, uint32_t n) {
  static const uint8_t tmpl[] = {0x48, 0xc7, 0xc6, 0, 0, 0, 0, 0xb9, 0, 0, 0, 0, 0x48, 0x8b, 0x06,
                                 0x48, 0x81, 0xc6, 0x00, 0x10, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xf2, 0xf4};
  memcpy(p, tmpl, sizeof tmpl);
  put(p + 3, WORKSET, 4);
  put(p + 8, n, 4);
  return sizeof tmpl;
}

/* The warm working-set loop: `passes` passes over `steps` quadwords 64 bytes apart
 * (2 + passes * (2 + 4 * steps + 2) instructions):
 *      mov r8d, passes         41 b8 imm32
 *   2: mov rsi, WORKSET        48 c7 c6 imm32
 *      mov ecx, steps          b9 imm32
 *   3: OP                      read: add rax, [rsi] (48 03 06); rw: add [rsi], rcx (48 01 0e)
 *      add rsi, 64             48 83 c6 40
 *      dec ecx                 ff c9
 *      jnz 3b                  75 f5      (-11)
 *      dec r8d                 41 ff c8
 *      jnz 2b                  75 e4      (-28: back to the mov rsi)
 *      hlt                     f4 */
static size_t write_workset_loop(uint8_t *p, bool rw, uint32_t passes, uint32_t steps) {
  static const uint8_t tmpl[] = {0x41, 0xb8, 0, 0, 0, 0, 0x48, 0xc7, 0xc6, 0, 0, 0, 0, 0xb9, 0, 0, 0, 0,
                                 0x48, 0x03, 0x06, 0x48, 0x83, 0xc6, 0x40, 0xff, 0xc9, 0x75, 0xf5,
                                 0x41, 0xff, 0xc8, 0x75, 0xe4, 0xf4};
  memcpy(p, tmpl, sizeof tmpl);
  put(p + 2, passes, 4);
  put(p + 9, WORKSET, 4);
  put(p + 14, steps, 4);
  if (rw) {
    p[19] = 0x01; /* add r/m64, r64 */
    p[20] = 0x0e; /* [rsi], rcx */
  }
  return sizeof tmpl;
}

/* ---- one vCPU machine ---- */

struct rig {
  uint8_t *mem;
  struct shadow_mmu *m;
  struct ept *e; /* NULL: no EPT (every page resident) */
  struct reclaim *r;
  struct vcpu *v;
  struct vcpu *peers[1];
  struct vcpu_regs start;
  uint64_t evictions; /* by reclaim */
};

static void on_reclaim(void *ctx, const struct reclaim_eviction *ev) {
  struct rig *x = ctx;
  /* Reclaim only zaps the shadow; the vCPU must still drop the page from its TLB. */
  vcpu_apply_shadow_flush(x->peers, 1, &ev->change.flush);
  const struct shadow_flush aged = {.full_tlb_vcpus = ev->aged_vcpus};
  vcpu_apply_shadow_flush(x->peers, 1, &aged);
  x->evictions++;
}

/* A booted vCPU at CODE over fresh memory; write_code(mem + CODE, code_arg) puts the guest
 * code there before the vCPU scans it. budget_pages: 0 = no reclaim. */
static void rig_init(struct rig *x, bool with_ept, uint64_t budget_pages, size_t (*write_code)(uint8_t *, const void *),
                     const void *code_arg) {
  memset(x, 0, sizeof *x);
  if (!(x->mem = aligned_alloc(PAGE, MEM_BYTES + POOL_BYTES))) die("memory", "out of memory");
  memset(x->mem, 0, MEM_BYTES + POOL_BYTES);
  vcpu_write_flat_gdt(x->mem, GDT, TSS);
  uint64_t e;
  e = PDPT | 7, memcpy(x->mem + PML4, &e, 8);
  e = PD | 7, memcpy(x->mem + PDPT, &e, 8);
  for (uint64_t i = 0; i < MEM_BYTES >> 21; i++) e = (PT + PAGE * i) | 7, memcpy(x->mem + PD + 8 * i, &e, 8);
  for (uint64_t va = PAGE; va < MEM_BYTES; va += PAGE) e = va | 7, memcpy(x->mem + PT + (va >> 12) * 8, &e, 8);
  const size_t code_bytes = write_code(x->mem + CODE, code_arg);

  struct diag d = {{0}};
  struct shadow_config sc = {x->mem, MEM_BYTES, 46, MEM_BYTES, POOL_BYTES, 1};
  if (!(x->m = shadow_create(&sc, &d))) die("shadow", d.msg);
  if (with_ept) {
    /* RAM starts ABSENT as in the machine: what the simulator wrote is host-loaded, the
     * rest is zero-filled on first touch. */
    struct ept_config ec = {x->m, MEM_BYTES, EPT_INITIAL_ABSENT};
    if (!(x->e = ept_create(&ec, &d))) die("ept", d.msg);
    if (!ept_host_loaded(x->e, 0, LOADED_BYTES, &d)) die("ept load", d.msg);
    if (budget_pages) {
      struct reclaim_params rp = {budget_pages * PAGE, RECLAIM_CLOCK, 1, 0};
      if (!(x->r = reclaim_create(x->e, &rp, &d))) die("reclaim", d.msg);
      reclaim_balance(x->r, EPT_NO_GFN, on_reclaim, x);
    }
  }
  if (!vcpu_shadow_setup(x->m, &d)) die("shadow setup", d.msg);

  const struct vcpu_text_range text = {CODE, CODE + code_bytes};
  struct vcpu_config cfg = {.id = 0, .mem = x->mem, .mem_bytes = MEM_BYTES, .text = &text, .n_text = 1,
                            .shadow = x->m, .shadow_base = MEM_BYTES, .shadow_bytes = POOL_BYTES,
                            .peers = x->peers, .n_peers = 1, .costs = {.cpi_milli = 1000}};
  struct vcpu_boot b = {.rip = CODE, .rsp = STACK_TOP, .rflags = 0x2, .cr0 = 0x80010033, .cr3 = PML4, .cr4 = 0x6a0,
                        .efer = 0x500, .gdt_base = GDT, .gdt_limit = VCPU_SEL_TSS + 15, .idt_base = IDT,
                        .idt_limit = 0xfff, .cs = VCPU_SEL_KERNEL_CS, .ss = VCPU_SEL_KERNEL_DS,
                        .ds = VCPU_SEL_KERNEL_DS, .tr = VCPU_SEL_TSS};
  if (!(x->v = vcpu_create(&cfg, &d)) || !vcpu_boot(x->v, &b, &d)) die("vcpu", d.msg);
  vcpu_get_regs(x->v, &x->start);
}

static void rig_free(struct rig *x) {
  vcpu_destroy(x->v);
  reclaim_destroy(x->r);
  ept_destroy(x->e);
  shadow_destroy(x->m);
  free(x->mem);
}

/* What the host layer does on an EPT violation, minus timing and I/O (sim/machine/host.c
 * does it with the storage model): bring the page in, then keep within the budget. */
static void serve_ept_violation(struct rig *x, const struct vcpu_exit *ex) {
  struct diag d = {{0}};
  struct ept_fault f;
  const uint64_t gfn = ex->ept.gpa >> 12;
  ept_classify(x->e, gfn, &f);
  struct ept_change ch = {0};
  switch (f.kind) {
    case EPT_FAULT_RETRY:
      return;
    case EPT_FAULT_ZERO_FILL:
      if (!ept_zero_fill(x->e, gfn, &d)) die("zero fill", d.msg);
      break;
    case EPT_FAULT_SWAP_IN:
      if (!ept_start_fetch(x->e, gfn, 0, 0, &d) || !ept_complete_fetch(x->e, gfn, &ch, &d)) die("swap-in", d.msg);
      if (shadow_flush_needed(&ch.flush)) vcpu_apply_shadow_flush(x->peers, 1, &ch.flush);
      break;
    default: {
      char msg[256];
      ept_describe_fault(&f, msg, sizeof msg);
      die("unexpected EPT violation", msg);
    }
  }
  if (x->r) reclaim_balance(x->r, gfn, on_reclaim, x);
}

/* One pass from CODE to the HLT; returns the EPT violations served on the way. */
static uint64_t run_pass(struct rig *x, uint64_t expect_insns) {
  vcpu_set_regs(x->v, &x->start);
  const uint64_t before = vcpu_retired(x->v);
  uint64_t faults = 0;
  struct vcpu_exit ex;
  for (;;) {
    vcpu_run(x->v, UINT64_MAX / 2, &ex);
    if (ex.reason == VCPU_EXIT_HLT) break;
    if (ex.reason != VCPU_EXIT_EPT_VIOLATION || !x->e) die(vcpu_exit_reason_name(ex.reason), ex.message);
    serve_ept_violation(x, &ex);
    faults++;
  }
  /* An instruction that took an EPT violation must not count twice. */
  if (vcpu_retired(x->v) - before != expect_insns) die("pass", "retired instruction count is off");
  return faults;
}

/* ---- ept_round_trip ---- */

static size_t touch_writer(uint8_t *p, const void *arg) { return write_touch_pages(p, *(const uint32_t *)arg); }

static void bm_round_trip(struct bench_state *st, void *arg) {
  const uint32_t n = *(const uint32_t *)arg;
  const uint64_t insns = 2 + 4ull * n + 1;
  struct rig x;
  rig_init(&x, true, 0, touch_writer, &n);
  /* Warm-up: the first pass zero-fills the pages and fills the shadow and TLBs. */
  run_pass(&x, insns);
  run_pass(&x, insns);
  uint64_t evict_ns = 0, fault_ns = 0, warm_ns = 0, faults = 0;
  struct diag d = {{0}};
  struct vcpu_exit ex;
  while (bench_keep_running(st)) {
    const uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < n; i++) {
      struct ept_change ch;
      if (!ept_evict(x.e, WORKSET / PAGE + i, EPT_EVICT_TO_SWAP, &ch, &d)) die("evict", d.msg);
      vcpu_apply_shadow_flush(x.peers, 1, &ch.flush);
    }
    /* A zero-instruction run carries out the queued TLB flushes now, so that they are
     * charged to eviction rather than to the faulting pass. */
    vcpu_run(x.v, 0, &ex);
    const uint64_t t1 = now_ns();
    const uint64_t got = run_pass(&x, insns);
    const uint64_t t2 = now_ns();
    const uint64_t none = run_pass(&x, insns);
    const uint64_t t3 = now_ns();
    if (got != n || none != 0) die("round trip", "EPT violations per pass are off");
    evict_ns += t1 - t0;
    fault_ns += t2 - t1;
    warm_ns += t3 - t2;
    faults += got;
  }
  const double pages = (double)faults;
  if (faults) {
    bench_set_counter(st, "round_trip_ns", ((double)fault_ns - (double)warm_ns) / pages, false);
    bench_set_counter(st, "evict_ns", (double)evict_ns / pages, false);
    bench_set_counter(st, "fault_pass_ns", (double)fault_ns / pages, false);
    bench_set_counter(st, "warm_pass_ns", (double)warm_ns / pages, false);
  }
  bench_set_items_processed(st, (int64_t)faults);
  rig_free(&x);
}

/* ---- warm_mips ---- */

enum host_mode { SHADOW_ONLY, NO_LIMIT, LIMIT };
static const char *const mode_names[] = {"shadow_only", "no_limit", "limit"};

struct mips_case {
  bool rw;
  uint32_t pages;
  enum host_mode mode;
};

struct loop_arg {
  bool rw;
  uint32_t passes, steps;
};

static size_t loop_writer(uint8_t *p, const void *arg) {
  const struct loop_arg *a = arg;
  return write_workset_loop(p, a->rw, a->passes, a->steps);
}

static void bm_warm_mips(struct bench_state *st, void *arg) {
  const struct mips_case *c = arg;
  const uint32_t steps = c->pages * (uint32_t)(PAGE / 64);
  const struct loop_arg la = {c->rw, (uint32_t)(STEPS_PER_ITERATION / steps), steps};
  const uint64_t insns = 2 + (uint64_t)la.passes * (2 + 4ull * steps + 2);
  /* Everything the run makes resident (what was loaded, and the working set) plus 64
   * pages of headroom: above the working set, far below guest RAM. */
  const uint64_t budget = c->mode == LIMIT ? LOADED_BYTES / PAGE + c->pages + 64 : 0;
  struct rig x;
  rig_init(&x, c->mode != SHADOW_ONLY, budget, loop_writer, &la);
  run_pass(&x, insns); /* warm-up: zero fills, shadow fills, translation */
  uint64_t faults = 0, iterations = 0;
  const uint64_t evictions_before = x.evictions;
  while (bench_keep_running(st)) {
    faults += run_pass(&x, insns);
    iterations++;
  }
  bench_set_counter(st, "MIPS", (double)(insns * iterations) / 1e6, true);
  bench_set_counter(st, "ept_exits", (double)faults, false);
  bench_set_counter(st, "evictions", (double)(x.evictions - evictions_before), false);
  /* Set for every mode so that all cases share one table. */
  bench_set_counter(st, "resident", x.e ? (double)ept_resident_pages(x.e) : 0, false);
  bench_set_counter(st, "budget", (double)budget, false);
  bench_set_items_processed(st, (int64_t)(insns * iterations));
  rig_free(&x);
}

int main(int argc, char **argv) {
  struct diag err = {{0}};
  if (!vcpu_backend_selfcheck(&err)) die("Unicorn self-check", err.msg);

  static uint32_t rt_pages[] = {1, 16, 256};
  static char rt_names[3][48];
  for (unsigned i = 0; i < 3; i++) {
    snprintf(rt_names[i], sizeof rt_names[i], "ept_round_trip/pages:%u", rt_pages[i]);
    bench_register(rt_names[i], bm_round_trip, &rt_pages[i]);
  }

  static const uint32_t ws_pages[] = {256, 2048};
  static struct mips_case cases[2][2][3];
  static char names[2][2][3][64];
  for (unsigned rw = 0; rw < 2; rw++)
    for (unsigned w = 0; w < 2; w++)
      for (unsigned m = 0; m < 3; m++) {
        cases[rw][w][m] = (struct mips_case){rw != 0, ws_pages[w], (enum host_mode)m};
        snprintf(names[rw][w][m], sizeof names[rw][w][m], "warm_mips/%s/ws:%u/%s", rw ? "rw" : "read", ws_pages[w],
                 mode_names[m]);
        bench_register(names[rw][w][m], bm_warm_mips, &cases[rw][w][m]);
      }
  return bench_main(argc, argv);
}
