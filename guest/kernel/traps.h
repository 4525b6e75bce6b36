/* traps.h — the IDT, per-vCPU descriptor tables, and the C ends of the entry code.
 * Not for: what a handler does about a fault (fault.c, nmi.c, syscall.c).
 */
#ifndef GUEST_TRAPS_H
#define GUEST_TRAPS_H

#include "kernel.h"

/* Exception vectors (SDM vol. 3A table 6-1) */
enum {
  X86_TRAP_DE = 0, X86_TRAP_DB = 1, X86_TRAP_NMI = 2, X86_TRAP_BP = 3, X86_TRAP_OF = 4,
  X86_TRAP_BR = 5, X86_TRAP_UD = 6, X86_TRAP_NM = 7, X86_TRAP_DF = 8, X86_TRAP_OLD_MF = 9,
  X86_TRAP_TS = 10, X86_TRAP_NP = 11, X86_TRAP_SS = 12, X86_TRAP_GP = 13, X86_TRAP_PF = 14,
  X86_TRAP_SPURIOUS = 15, X86_TRAP_MF = 16, X86_TRAP_AC = 17, X86_TRAP_MC = 18,
  X86_TRAP_XF = 19, X86_TRAP_VE = 20, X86_TRAP_CP = 21,
};

const char *trap_name(uint64_t vector);

/* cpu.c */
void cpu_early_init(unsigned cpu);  /* GDT, TSS, GS base: before anything may panic usefully */
void cpu_init_ist(unsigned cpu);    /* IST stacks from the pool (after mm_init) */
void trap_init(void);               /* builds the shared IDT (BSP, once) */
void load_idt(void);

/* entry.S */
extern char idt_stubs[];
extern char asm_exc_page_fault[], asm_exc_page_fault_reason_first[], asm_exc_nmi[];
extern char ret_from_fork[];
struct task;
struct task *__switch_to_asm(struct task *prev, struct task *next);

/* C handlers called from entry.S */
void do_idt_entry(struct pt_regs *regs);
void exc_page_fault(struct pt_regs *regs, uint64_t error_code, uint64_t address);
void exc_page_fault_reason_first(struct pt_regs *regs, uint64_t error_code);
void exc_nmi(struct pt_regs *regs);

/* Exception table: a faulting kernel instruction at `insn` resumes at `fixup`. */
struct exception_table_entry {
  uint64_t insn, fixup;
};
bool fixup_exception(struct pt_regs *regs);

/* traps.c: the work before any return to user mode (fatal signal, reschedule). */
void exit_to_user_mode(void);

/* uaccess.S: copies n bytes, returns the number NOT copied (a fault stops it). */
uint64_t copy_user_generic(void *to, const void *from, uint64_t n);

#endif
