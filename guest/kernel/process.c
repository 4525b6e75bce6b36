/* process.c — user processes.
 *
 * Placement (guest VA == PA): process i owns [range_base, range_base + range_bytes), laid out
 * by apfsim_guest_layout()/apfsim_proc_layout() in apfsim_boot.h, which the simulator can
 * evaluate too. Within its range: a read-only parameter page, then (with unmapped guard
 * pages between) the working set, the zipf table and the stack, all demand-zero.
 * User code is NOT copied: the workload code is linked once into the image's user text
 * region (2 MiB aligned, user read-only in every page table), and every process runs it
 * there, as processes running one executable share its text pages. Only data is
 * per-process, so "each process its own disjoint range" holds for everything writable.
 */
#include "process.h"

#include "apfsim_uapi.h"
#include "mm.h"
#include "percpu.h"
#include "traps.h"
#include "x86.h"

extern char _user_start[]; /* guest/user/crt.S, in the user text region */

#define USER_SPACE_END (1ull << 47)

static const char *const kind_names[] = {"compute", "memory", "mixed", "dax-read", "dax-copy"};

bool access_ok(uint64_t addr, uint64_t len) {
  uint64_t end = addr + len;
  if (end < addr) return false;
  if (addr >= (uint64_t)__user_text_start && end <= (uint64_t)__user_text_end) return true;
  return addr >= guest_layout.user_start && end <= USER_SPACE_END;
}

static bool in_area(uint64_t addr, uint64_t base, uint64_t off, uint64_t bytes) {
  return addr >= base + off && addr - (base + off) < bytes;
}

bool in_demand_area(const struct task *t, uint64_t addr) {
  const struct apfsim_proc_layout *l = &t->layout;
  if (!t->stats) return false;
  return in_area(addr, t->range_base, l->ws_off, l->ws_bytes) ||
         in_area(addr, t->range_base, l->zipf_off, l->zipf_bytes) ||
         in_area(addr, t->range_base, l->stack_off, l->stack_bytes);
}

void handle_demand_fault(struct task *t, uint64_t addr) {
  uint64_t page = addr & ~(PAGE_SIZE - 1);
  map_user_page(t->cr3, page, PTE_RW | PTE_US);
  /* The page is this process's own physical page (identity): it was never used by
   * anyone else, but a demand-zero page is zero by contract, as in Linux. */
  clear_page((void *)(uintptr_t)page);
  t->stats->demand_faults++;
  this_cpu()->stats->demand_faults++;
}

bool in_dax_area(const struct task *t, uint64_t addr, uint32_t kind) {
  return t->stats && t->stats->kind == kind && boot_info.dax_bytes && addr >= boot_info.dax_gpa &&
         addr - boot_info.dax_gpa < boot_info.dax_bytes;
}

void handle_dax_fault(struct task *t, uint64_t addr, bool user) {
  map_user_page(t->cr3, addr & ~(PAGE_SIZE - 1), user ? PTE_US : 0);
  t->stats->demand_faults++;
  this_cpu()->stats->demand_faults++;
}

/* ops between SYS_report_ops calls: about 50k instructions of work per report keeps the
 * system-call overhead near 1% and the count reported at the end of a timed run fresh. */
static uint32_t report_interval(const struct apfsim_workload_class *c) {
  uint64_t per_op = 2ull * c->compute_per_op + (apfsim_kind_uses_ws(c->kind) ? 30 : 5);
  if (c->kind == APFSIM_WORK_DAX_COPY) per_op += 150; /* a system call per op */
  uint64_t n = 50000 / per_op;
  return n < 1 ? 1 : n > 4096 ? 4096 : (uint32_t)n;
}

static void create_process(uint32_t index, uint32_t class_index, uint64_t base) {
  const struct apfsim_workload_class *c = &boot_info.classes[class_index];
  struct task *t = alloc_pages(1);
  uint8_t *kstack = alloc_pages(APFSIM_KSTACK_BYTES / PAGE_SIZE);
  struct apfsim_proc_stats *st = &apfsim_proc_stats[index];

  t->pid = index + 1;
  t->kstack_top = (uint64_t)kstack + APFSIM_KSTACK_BYTES;
  t->range_base = base;
  apfsim_proc_layout(c, &t->layout);
  t->range_bytes = t->layout.range_bytes;
  t->cr3 = pgd_alloc();
  t->stats = st;
  snprintf(t->comm, sizeof t->comm, "%s", c->kind < ARRAY_SIZE(kind_names) ? kind_names[c->kind] : "?");

  st->pid = t->pid;
  st->class_index = class_index;
  st->kind = c->kind;
  st->pattern = c->pattern;
  st->range_base = base;
  st->range_bytes = t->range_bytes;
  st->ops_target = c->ops;

  /* Parameter page: written through the kernel's own table (which maps all of user RAM),
   * then mapped user read-only in the process's table. */
  struct apfsim_user_params *p = (struct apfsim_user_params *)(uintptr_t)(base + t->layout.params_off);
  *p = (struct apfsim_user_params){
      .magic = APFSIM_USER_PARAMS_MAGIC,
      .pid = t->pid,
      .kind = c->kind,
      .pattern = c->pattern,
      .compute_per_op = c->compute_per_op,
      .zipf_s_milli = c->zipf_s_milli,
      .report_every = report_interval(c),
      .ops = c->ops,
      .seed = apfsim_process_seed(boot_info.seed, index),
      .ws_base = base + t->layout.ws_off,
      .ws_bytes = t->layout.ws_bytes,
      .zipf_base = base + t->layout.zipf_off,
      .dax_base = apfsim_kind_uses_dax(c->kind) ? boot_info.dax_gpa : 0,
      .dax_bytes = apfsim_kind_uses_dax(c->kind) ? boot_info.dax_bytes : 0,
      .flags = (apfsim_kind_uses_ws(c->kind) && (boot_info.flags & APFSIM_BOOT_F_NMI_READS_USER_STACK))
                   ? APFSIM_USER_F_FRESH_STACK_ACCESS : 0,
  };
  map_user_page(t->cr3, (uint64_t)p, PTE_US);

  /* The first switch to t "returns" from __switch_to_asm into ret_from_fork, which
   * iretq's to _user_start through this frame. */
  struct pt_regs *regs = task_pt_regs(t);
  *regs = (struct pt_regs){
      .rdi = (uint64_t)p,
      .rip = (uint64_t)_user_start,
      .cs = USER_CS,
      .rflags = X86_RFLAGS_IF | 0x2, /* bit 1 is always set */
      .rsp = base + t->layout.stack_off + t->layout.stack_bytes,
      .ss = USER_DS,
  };
  uint64_t *sp = (uint64_t *)regs;
  *--sp = (uint64_t)ret_from_fork;
  for (int i = 0; i < 6; i++) *--sp = 0; /* rbp, rbx, r12-r15 */
  t->thread_sp = (uint64_t)sp;

  all_tasks[nr_tasks++] = t;
  enqueue_new_task(t);
}

void processes_create(void) {
  uint64_t base = guest_layout.user_start;
  uint32_t index = 0;
  for (uint32_t ci = 0; ci < boot_info.n_classes; ci++) {
    const struct apfsim_workload_class *c = &boot_info.classes[ci];
    for (uint32_t k = 0; k < c->count; k++) {
      create_process(index++, ci, base);
      base += all_tasks[nr_tasks - 1]->range_bytes;
    }
  }
  printk("%u processes in [%#llx, %#llx)\n", index, (unsigned long long)guest_layout.user_start,
         (unsigned long long)base);
}
