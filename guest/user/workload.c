/* workload.c — the user processes' program: the workload chosen by the boot info.
 *
 * Runs at CPL3 from the shared user text; all its state lives on its own stack and in its
 * own range (working set, zipf table). One "op" is:
 *   compute  compute_per_op counter increments;
 *   memory   one read-modify-write of a 64-bit word in a 64-byte line of the working set
 *            chosen by the pattern: sequential (next line, wrapping), random (uniform line),
 *            zipf (page of rank r with probability ~ r^-s, rank r = r-th page of the working
 *            set, then a uniform line in it);
 *   mixed    a memory op followed by compute_per_op increments;
 *   dax-read one 8-byte load from a 64-byte line of the DAX window (sequential or random);
 *   dax-copy one SYS_dax_read of a 64-byte line of the DAX window into a stack buffer: the
 *            kernel's copy_to_user, which returns -EFAULT when the host reports a page
 *            error (the op still counts; the kernel counts the failures).
 * With APFSIM_USER_F_FRESH_STACK_ACCESS the memory access runs with RSP on a never-touched
 * stack page (apfsim_uapi.h), so an NMI sampling the user stack there takes a guest #PF.
 * Completed ops are reported every report_every ops and at the end (SYS_report_ops), so
 * the kernel's count lags the truth by less than report_every.
 */
#include <stdint.h>

#include "apfsim_boot.h"
#include "apfsim_uapi.h"
#include "prng.h"
#include "usyscall.h"
#include "zipf.h"

#define LINE 64u

struct work {
  const struct apfsim_user_params *p;
  struct prng rng;
  uint64_t lines;      /* 64-byte lines in the working set (or the DAX window) */
  uint64_t next_line;  /* sequential cursor */
  uint64_t pages;
  uint64_t *zipf;      /* prefix sums, one per page */
  uint64_t zipf_total;
};

static uint64_t pick_line(struct work *w) {
  switch (w->p->pattern) {
  case APFSIM_ACCESS_SEQUENTIAL: {
    uint64_t l = w->next_line;
    w->next_line = l + 1 == w->lines ? 0 : l + 1;
    return l;
  }
  case APFSIM_ACCESS_RANDOM:
    return prng_below(&w->rng, w->lines);
  default: { /* zipf */
    uint64_t page = zipf_pick(w->zipf, w->pages, prng_below(&w->rng, w->zipf_total));
    return page * (4096 / LINE) + prng_below(&w->rng, 4096 / LINE);
  }
  }
}

static void memory_op(struct work *w) {
  volatile uint64_t *word = (volatile uint64_t *)(uintptr_t)(w->p->ws_base + pick_line(w) * LINE);
  if (w->p->flags & APFSIM_USER_F_FRESH_STACK_ACCESS) {
    /* The read-modify-write with RSP on an untouched stack page; nothing here writes to
     * the stack (interrupts from CPL3 switch to the kernel stack). */
    __asm__ volatile("movq %%rsp, %%rdx\n\t"
                     "subq %[drop], %%rsp\n\t"
                     "movq (%[word]), %%rax\n\t"
                     "incq %%rax\n\t"
                     "movq %%rax, (%[word])\n\t"
                     "movq %%rdx, %%rsp"
                     :
                     : [word] "r"(word), [drop] "i"(APFSIM_USER_FRESH_STACK_DROP)
                     : "rax", "rdx", "memory");
    return;
  }
  *word = *word + 1;
}

static uint64_t dax_read_op(struct work *w) {
  return *(volatile const uint64_t *)(uintptr_t)(w->p->dax_base + pick_line(w) * LINE);
}

static void dax_copy_op(struct work *w) {
  uint64_t buf[LINE / 8];
  usys3(SYS_dax_read, (long)(pick_line(w) * LINE), (long)buf, LINE);
  __asm__ volatile("" ::"r"(buf) : "memory");
}

static void compute_op(uint32_t n) {
  uint64_t counter = 0;
  for (uint32_t i = 0; i < n; i++) {
    counter++;
    __asm__ volatile("" : "+r"(counter)); /* keep every increment */
  }
}

static void say(const char *s) {
  uint64_t n = 0;
  while (s[n]) n++;
  usys3(SYS_write, 1, (long)s, (long)n);
}

long user_main(const struct apfsim_user_params *p) {
  struct work w = {.p = p};
  if (p->magic != APFSIM_USER_PARAMS_MAGIC) {
    say("workload: bad parameter page\n");
    return 1;
  }
  prng_seed(&w.rng, p->seed);
  int memory = p->kind == APFSIM_WORK_MEMORY || p->kind == APFSIM_WORK_MIXED;
  int compute = p->kind == APFSIM_WORK_COMPUTE || p->kind == APFSIM_WORK_MIXED;
  int dax = p->kind == APFSIM_WORK_DAX_READ || p->kind == APFSIM_WORK_DAX_COPY;
  if (dax) w.lines = p->dax_bytes / LINE;
  if (memory) {
    w.lines = p->ws_bytes / LINE;
    w.pages = p->ws_bytes / 4096;
    if (p->pattern == APFSIM_ACCESS_ZIPF) {
      /* one-time set-up, counted in the process's time like any benchmark's */
      w.zipf = (uint64_t *)(uintptr_t)p->zipf_base;
      zipf_build(w.zipf, w.pages, p->zipf_s_milli);
      w.zipf_total = w.zipf[w.pages - 1];
    }
  }

  uint64_t unreported = 0, sum = 0;
  for (uint64_t op = 0; p->ops == 0 || op < p->ops; op++) {
    if (p->kind == APFSIM_WORK_DAX_READ) sum += dax_read_op(&w);
    if (p->kind == APFSIM_WORK_DAX_COPY) dax_copy_op(&w);
    if (memory) memory_op(&w);
    if (compute) compute_op(p->compute_per_op);
    if (++unreported == p->report_every) {
      usys1(SYS_report_ops, (long)unreported);
      unreported = 0;
    }
  }
  if (unreported) usys1(SYS_report_ops, (long)unreported);
  __asm__ volatile("" ::"r"(sum));
  return 0;
}
