/* vcpu_bench.c — guest MIPS of the vCPU (sim/cpu) beside plain Unicorn 2.0.1
 * with no hooks, on the same guest code in the same run:
 *   compute  a 4-instruction ALU loop (one translation block);
 *   memory_read   a 5-instruction load loop striding 64 bytes over a 1 MiB
 *                 working set (256 pages);
 *   memory_rw     a 6-instruction load/add/store loop over the same set.
 *   Both warm: translation, shadows and TLB filled by a first pass before
 *   timing. Unicorn 2.0.1 sends every guest store down its slow path
 *   (docs/unicorn-notes.md), which bounds memory_rw for every path alike.
 * Paths: raw (Unicorn, no hooks), vcpu (block counting, guest page tables),
 * vcpu+shadow (the shadow MMU), and vcpu+shadow in quanta of 10k and 100k
 * instructions (the run calls a SystemC vCPU thread makes).
 * MIPS is guest instructions (the vCPU's exact count) per second of host time.
 * Run: cmake --build build --target vcpu_bench && build/bench/vcpu_bench
 *      (or --benchmark_filter=compute). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "bench.h"
#include "cpu/vcpu.h"
#include "mmu/shadow.h"

#define MEM_BYTES (32u << 20) /* identity-mapped with 4 KiB pages */
#define POOL_BYTES (4u << 20)
#define GDT 0x1000
#define TSS 0x2000
#define IDT 0x3000
#define PML4 0x10000
#define PDPT 0x11000
#define PD 0x12000
#define PT 0x13000 /* 16 page tables */
#define STACK_TOP 0x80000
#define CODE 0x100000
#define WORKSET 0x1000000
#define WORKSET_BYTES (1u << 20)

#define COMPUTE_ITERS 5000000u
#define READ_PASSES 1500u
#define MEMORY_PASSES 300u
#define MEMORY_STEPS (WORKSET_BYTES / 64)

/* mov ecx, N; 1: add rax, rcx; xor rax, 0x55; dec rcx; jnz 1b; hlt */
static const uint8_t compute_code[] = {
    0xb9, COMPUTE_ITERS & 0xff, (COMPUTE_ITERS >> 8) & 0xff, (COMPUTE_ITERS >> 16) & 0xff, COMPUTE_ITERS >> 24,
    0x48, 0x01, 0xc8, 0x48, 0x83, 0xf0, 0x55, 0x48, 0xff, 0xc9, 0x75, 0xf4, 0xf4};
static const uint64_t compute_insns = 1 + 4ull * COMPUTE_ITERS + 1;

/* mov ecx, PASSES
 * 2: mov rsi, WORKSET; mov edx, STEPS
 * 3: mov rax, [rsi]; add rax, rdx; mov [rsi+8], rax; add rsi, 64; dec edx; jnz 3b
 *    dec ecx; jnz 2b; hlt */
static const uint8_t memory_code[] = {
    0xb9, MEMORY_PASSES & 0xff, (MEMORY_PASSES >> 8) & 0xff, 0, 0,
    0x48, 0xc7, 0xc6, WORKSET & 0xff, (WORKSET >> 8) & 0xff, (WORKSET >> 16) & 0xff, WORKSET >> 24,
    0xba, MEMORY_STEPS & 0xff, (MEMORY_STEPS >> 8) & 0xff, 0, 0,
    0x48, 0x8b, 0x06, 0x48, 0x01, 0xd0, 0x48, 0x89, 0x46, 0x08, 0x48, 0x83, 0xc6, 0x40, 0xff, 0xca, 0x75, 0xee,
    0xff, 0xc9, 0x75, 0xde, 0xf4};
static const uint64_t memory_insns = 1 + (uint64_t)MEMORY_PASSES * (2 + 6ull * MEMORY_STEPS + 2) + 1;

/* mov ecx, PASSES
 * 2: mov rsi, WORKSET; mov edx, STEPS
 * 3: mov rax, [rsi]; add rbx, rax; add rsi, 64; dec edx; jnz 3b
 *    dec ecx; jnz 2b; hlt */
static const uint8_t read_code[] = {
    0xb9, READ_PASSES & 0xff, (READ_PASSES >> 8) & 0xff, 0, 0,
    0x48, 0xc7, 0xc6, WORKSET & 0xff, (WORKSET >> 8) & 0xff, (WORKSET >> 16) & 0xff, WORKSET >> 24,
    0xba, MEMORY_STEPS & 0xff, (MEMORY_STEPS >> 8) & 0xff, 0, 0,
    0x48, 0x8b, 0x06, 0x48, 0x01, 0xc3, 0x48, 0x83, 0xc6, 0x40, 0xff, 0xca, 0x75, 0xf2,
    0xff, 0xc9, 0x75, 0xe2, 0xf4};
static const uint64_t read_insns = 1 + (uint64_t)READ_PASSES * (2 + 5ull * MEMORY_STEPS + 2) + 1;

struct workload {
  const char *name;
  const uint8_t *code;
  size_t bytes;
};

static const struct workload workloads[] = {
    {"compute", compute_code, sizeof compute_code},
    {"memory_read", read_code, sizeof read_code},
    {"memory_rw", memory_code, sizeof memory_code},
};
#define N_WORKLOADS 3

enum path { RAW, VCPU, VCPU_SHADOW, VCPU_SHADOW_Q10K, VCPU_SHADOW_Q100K };
static const char *const path_names[] = {"raw_unicorn", "vcpu", "vcpu_shadow", "vcpu_shadow_q10k", "vcpu_shadow_q100k"};

struct bench_case {
  const struct workload *w;
  enum path path;
  uint64_t insns;
};

static void w64(uint8_t *mem, uint64_t a, uint64_t v) { memcpy(mem + a, &v, 8); }

static uint8_t *machine_memory(const struct workload *w) {
  uint8_t *mem = aligned_alloc(4096, MEM_BYTES + POOL_BYTES);
  if (!mem) abort();
  memset(mem, 0, MEM_BYTES + POOL_BYTES);
  vcpu_write_flat_gdt(mem, GDT, TSS);
  w64(mem, PML4, PDPT | 7);
  w64(mem, PDPT, PD | 7);
  for (uint64_t i = 0; i < MEM_BYTES >> 21; i++) w64(mem, PD + 8 * i, (PT + 0x1000 * i) | 7);
  for (uint64_t va = 0x1000; va < MEM_BYTES; va += 4096) w64(mem, PT + (va >> 12) * 8, va | 7);
  memcpy(mem + CODE, w->code, w->bytes);
  return mem;
}

static void report(struct bench_state *st, uint64_t insns, uint64_t iterations) {
  bench_set_counter(st, "MIPS", (double)(insns * iterations) / 1e6, true);
  bench_set_items_processed(st, (int64_t)(insns * iterations));
}

static void bm_raw(struct bench_state *st, const struct workload *w, uint64_t insns) {
  uint8_t *mem = machine_memory(w);
  uc_engine *uc;
  if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK) abort();
  uc_mem_map_ptr(uc, 0, MEM_BYTES, UC_PROT_ALL, mem);
  uint64_t cr0 = 0x80010033, cr3 = PML4, cr4 = 0x6a0, rsp = STACK_TOP;
  uc_reg_write(uc, UC_X86_REG_CR3, &cr3);
  uc_reg_write(uc, UC_X86_REG_CR4, &cr4);
  uc_reg_write(uc, UC_X86_REG_CR0, &cr0);
  uc_reg_write(uc, UC_X86_REG_RSP, &rsp);
  uc_ctl_exits_enable(uc);
  uc_emu_start(uc, CODE, 0, 0, 0); /* warm: translate, fill the TLB */
  uint64_t iterations = 0;
  while (bench_keep_running(st)) {
    uc_emu_start(uc, CODE, 0, 0, 0);
    iterations++;
  }
  report(st, insns, iterations);
  uc_close(uc);
  free(mem);
}

static void bm_vcpu(struct bench_state *st, const struct workload *w, enum path path, uint64_t insns) {
  uint8_t *mem = machine_memory(w);
  struct diag err = {{0}};
  struct shadow_mmu *m = NULL;
  struct vcpu *peers[1] = {NULL};
  const struct vcpu_text_range text = {CODE, CODE + w->bytes};
  struct vcpu_config cfg = {.id = 0, .mem = mem, .mem_bytes = MEM_BYTES, .text = &text, .n_text = 1,
                            .costs = {.cpi_milli = 1000}};
  if (path != VCPU) {
    struct shadow_config sc = {mem, MEM_BYTES, 46, MEM_BYTES, POOL_BYTES, 1};
    if (!(m = shadow_create(&sc, &err)) || !vcpu_shadow_setup(m, &err)) {
      fprintf(stderr, "vcpu_bench: %s\n", err.msg);
      abort();
    }
    cfg.shadow = m;
    cfg.shadow_base = MEM_BYTES;
    cfg.shadow_bytes = POOL_BYTES;
    cfg.peers = peers;
    cfg.n_peers = 1;
  }
  struct vcpu *v = vcpu_create(&cfg, &err);
  struct vcpu_boot b = {.rip = CODE, .rsp = STACK_TOP, .rflags = 0x2, .cr0 = 0x80010033, .cr3 = PML4, .cr4 = 0x6a0,
                        .efer = 0x500, .gdt_base = GDT, .gdt_limit = VCPU_SEL_TSS + 15, .idt_base = IDT,
                        .idt_limit = 0xfff, .cs = VCPU_SEL_KERNEL_CS, .ss = VCPU_SEL_KERNEL_DS,
                        .ds = VCPU_SEL_KERNEL_DS, .tr = VCPU_SEL_TSS};
  if (!v || !vcpu_boot(v, &b, &err)) {
    fprintf(stderr, "vcpu_bench: %s\n", err.msg);
    abort();
  }
  const uint64_t quantum = path == VCPU_SHADOW_Q10K ? 10000 : path == VCPU_SHADOW_Q100K ? 100000 : UINT64_MAX / 2;
  struct vcpu_regs start;
  vcpu_get_regs(v, &start);
  uint64_t iterations = 0;
  for (int warm = 1;; warm = 0) {
    if (!warm && !bench_keep_running(st)) break;
    vcpu_set_regs(v, &start);
    const uint64_t before = vcpu_retired(v);
    struct vcpu_exit e;
    do {
      vcpu_run(v, quantum, &e);
    } while (e.reason == VCPU_EXIT_QUANTUM);
    if (e.reason != VCPU_EXIT_HLT) {
      fprintf(stderr, "vcpu_bench: exit %s: %s\n", vcpu_exit_reason_name(e.reason), e.message);
      abort();
    }
    if (vcpu_retired(v) - before != insns) {
      fprintf(stderr, "vcpu_bench: %s retired %llu instructions, expected %llu\n", w->name,
              (unsigned long long)(vcpu_retired(v) - before), (unsigned long long)insns);
      abort();
    }
    if (!warm) iterations++;
  }
  report(st, insns, iterations);
  vcpu_destroy(v);
  if (m) shadow_destroy(m);
  free(mem);
}

static void bm_case(struct bench_state *st, void *arg) {
  const struct bench_case *c = arg;
  if (c->path == RAW)
    bm_raw(st, c->w, c->insns);
  else
    bm_vcpu(st, c->w, c->path, c->insns);
}

int main(int argc, char **argv) {
  struct diag err = {{0}};
  if (!vcpu_backend_selfcheck(&err)) {
    fprintf(stderr, "vcpu_bench: %s\n", err.msg);
    return 1;
  }
  static struct bench_case cases[N_WORKLOADS][5];
  static char names[N_WORKLOADS][5][64];
  const uint64_t insns[N_WORKLOADS] = {compute_insns, read_insns, memory_insns};
  for (unsigned w = 0; w < N_WORKLOADS; w++)
    for (unsigned p = 0; p < 5; p++) {
      cases[w][p] = (struct bench_case){&workloads[w], (enum path)p, insns[w]};
      snprintf(names[w][p], sizeof names[w][p], "%s/%s", workloads[w].name, path_names[p]);
      bench_register(names[w][p], bm_case, &cases[w][p]);
    }
  return bench_main(argc, argv);
}
