/* panic.c — ending the run from inside the guest.
 *
 * Protocol (boot contract): fill this vCPU's struct apfsim_panic_record, print
 * "PANIC: <message>" on the console, `out` the record's address to APFSIM_PORT_PANIC, then
 * cli;hlt forever. The simulator ends the run at the port write with outcome guest_panic,
 * reading vector, RIP (symbolized from the ELF), error code, CR2 and pid from the record:
 * text is for people, the record is for the simulator.
 */
#include "kernel.h"
#include "percpu.h"
#include "sched.h"
#include "traps.h"
#include "x86.h"

void console_write_unlocked(const char *s, size_t n);

static __noreturn void panic_halt(struct apfsim_panic_record *r) {
  static const char prefix[] = "PANIC: ";
  console_write_unlocked(prefix, sizeof prefix - 1);
  console_write_unlocked(r->message, strlen(r->message));
  console_write_unlocked("\n", 1);
  /* The image lies below 4 GiB (kernel.ld), so the address fits the 32-bit port write. */
  outl(APFSIM_PORT_PANIC, (uint32_t)(uintptr_t)r);
  for (;;) __asm__ volatile("cli; hlt");
}

/* A record to fill, or NULL if this vCPU is already panicking (then just halt: the
 * first record is the one that matters). */
static struct apfsim_panic_record *panic_begin(struct percpu **pcp) {
  local_irq_disable();
  struct percpu *pc = this_cpu_checked();
  if (!pc) pc = &percpu_area[0]; /* before GS base was set up: report as vCPU 0 */
  *pcp = pc;
  struct apfsim_panic_record *r = &pc->panic_record;
  if (r->magic == APFSIM_PANIC_MAGIC) {
    outl(APFSIM_PORT_PANIC, (uint32_t)(uintptr_t)r);
    for (;;) __asm__ volatile("cli; hlt");
  }
  memset(r, 0, sizeof *r);
  r->magic = APFSIM_PANIC_MAGIC;
  r->vcpu = pc->cpu;
  r->pid = pc->current ? pc->current->pid : APFSIM_PANIC_NO_PID;
  r->cr2 = read_cr2();
  return r;
}

__noreturn void panic(const char *fmt, ...) {
  struct percpu *pc;
  struct apfsim_panic_record *r = panic_begin(&pc);
  r->vector = APFSIM_PANIC_NO_VECTOR;
  r->rip = (uint64_t)__builtin_return_address(0);
  r->rflags = read_rflags();
  r->rsp = (uint64_t)__builtin_frame_address(0);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof r->message, fmt, ap);
  va_end(ap);
  panic_halt(r);
}

__noreturn void die(const struct pt_regs *regs, uint64_t cr2, const char *what) {
  struct percpu *pc;
  struct apfsim_panic_record *r = panic_begin(&pc);
  r->vector = (uint32_t)regs->vector;
  r->rip = regs->rip;
  r->cs = regs->cs;
  r->rflags = regs->rflags;
  r->rsp = regs->rsp;
  r->error_code = regs->error_code;
  r->cr2 = cr2;
  const char *comm = pc->current ? pc->current->comm : "boot";
  snprintf(r->message, sizeof r->message,
           "%s: %s (vector %llu) in %s mode at rip %#llx, error code %#llx, cr2 %#llx, task %s pid %u, vCPU %u",
           what, trap_name(regs->vector), (unsigned long long)regs->vector, user_mode(regs) ? "user" : "kernel",
           (unsigned long long)regs->rip, (unsigned long long)regs->error_code, (unsigned long long)cr2, comm,
           r->pid, r->vcpu);
  panic_halt(r);
}
