/* entry.S — interrupt, exception and NMI entry code, return to the interrupted context,
 * and the context switch.
 *
 * Every entry builds a struct pt_regs (kernel.h) and calls one C function with it; every
 * return goes through `iretq` (the simulator watches iretq sites: any IRET unblocks NMIs).
 * GS base is always this vCPU's struct percpu (no swapgs; see percpu.h).
 *
 * Shapes follow Linux's arch/x86/entry/entry_64.S where the APF race depends on them:
 *  - asm_exc_page_fault (Linux 5.3+): CR2 is read right after the registers are saved,
 *    before any C code runs — the race window ends at that `mov %cr2`.
 *  - asm_exc_page_fault_reason_first (2.6.38-5.2): the C handler reads and clears the APF
 *    reason first and reads CR2 after it.
 *  - asm_exc_nmi: IST stack, with a nested-NMI protocol (below).
 */
#include "asm_offsets.h"

	.macro PUSH_REGS
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	pushq %rax
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	.endm

	.macro POP_REGS
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rax
	popq %rcx
	popq %rdx
	popq %rsi
	popq %rdi
	.endm

	.text

/* ---- generic stubs: one per vector, 16 bytes each (kernel.ld asserts the total) ----
 * Vectors whose exceptions push an error code (SDM vol. 3A table 6-1) push only the
 * vector; the others push a 0 error code first so that every frame has the same shape. */
	.p2align 4
	.globl idt_stubs
idt_stubs:
	.set vec, 0
	.rept 256
	.p2align 4
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp idt_common
	.set vec, vec + 1
	.endr
	.p2align 4
	.globl idt_stubs_end
idt_stubs_end:

	.p2align 4
	.type idt_common, @function
idt_common:
	PUSH_REGS
	cld
	movq %rsp, %rdi
	call do_idt_entry
	.globl idt_exit
idt_exit:
	POP_REGS
	addq $16, %rsp			/* vector, error code */
	iretq
	.size idt_common, . - idt_common

/* ---- #PF, Linux 5.3+ order: CR2 first ---- */
	.p2align 4
	.globl asm_exc_page_fault
	.type asm_exc_page_fault, @function
asm_exc_page_fault:
	pushq $14
	PUSH_REGS
	movq %cr2, %rdx			/* CR2 before anything else can overwrite it */
	cld
	movq %rsp, %rdi
	movq PTREGS_ERROR_CODE(%rsp), %rsi
	call exc_page_fault		/* (regs, error_code, address) */
	jmp idt_exit
	.size asm_exc_page_fault, . - asm_exc_page_fault

/* ---- #PF, 2.6.38-5.2 order: the C code reads the APF reason, then CR2 ---- */
	.p2align 4
	.globl asm_exc_page_fault_reason_first
	.type asm_exc_page_fault_reason_first, @function
asm_exc_page_fault_reason_first:
	pushq $14
	PUSH_REGS
	cld
	movq %rsp, %rdi
	movq PTREGS_ERROR_CODE(%rsp), %rsi
	call exc_page_fault_reason_first	/* (regs, error_code) */
	jmp idt_exit
	.size asm_exc_page_fault_reason_first, . - asm_exc_page_fault_reason_first

/* ---- NMI ----
 * The NMI runs on IST1: the CPU writes its 5-word frame at the top of that stack every
 * time, whatever it interrupted. NMIs stay blocked until the next IRET — but ANY IRET,
 * including the one ending a #PF taken inside the NMI handler, reopens them (SDM vol. 3A
 * §6.7.1), and a second NMI would then overwrite the first one's frame. Linux solves this
 * with its "nested NMI" dance; this is a simpler protocol with the same guarantees:
 *
 *  1. The outermost NMI copies its hardware frame to %gs:PCPU_NMI_FRAME and runs below
 *     the frame area (top - NMI_WORK_OFFSET), so a nested NMI's frame clobbers nothing.
 *  2. An NMI arriving while the handler runs (nmi_running) only sets nmi_latched and
 *     returns at once; the outer NMI runs its handler again before returning (Linux's
 *     repeat_nmi), so no NMI is lost and handlers never nest.
 *  3. The exit sequence [nmi_exit_window, nmi_exit_window_end) uses no general register
 *     and rebuilds the return frame from the saved copy. An NMI that interrupts it
 *     (RIP in the window) takes over the saved frame and runs the handler for itself:
 *     the interrupted exit had nothing left to do but return through that frame.
 */
	.p2align 4
	.globl asm_exc_nmi
	.type asm_exc_nmi, @function
asm_exc_nmi:
	cmpq $nmi_exit_window, (%rsp)		/* interrupted RIP */
	jb 1f
	cmpq $nmi_exit_window_end, (%rsp)
	jae 1f
	jmp nmi_restart				/* rule 3 */
1:	cmpq $0, %gs:PCPU_NMI_RUNNING
	je nmi_first
	movq $1, %gs:PCPU_NMI_LATCHED		/* rule 2 */
	incq %gs:PCPU_NMI_NESTED
	iretq
nmi_first:
	movq $1, %gs:PCPU_NMI_RUNNING
	pushq %rax
	movq 8(%rsp), %rax
	movq %rax, %gs:PCPU_NMI_FRAME		/* rip */
	movq 16(%rsp), %rax
	movq %rax, %gs:PCPU_NMI_FRAME+8		/* cs */
	movq 24(%rsp), %rax
	movq %rax, %gs:PCPU_NMI_FRAME+16	/* rflags */
	movq 32(%rsp), %rax
	movq %rax, %gs:PCPU_NMI_FRAME+24	/* rsp */
	movq 40(%rsp), %rax
	movq %rax, %gs:PCPU_NMI_FRAME+32	/* ss */
	popq %rax
nmi_restart:
	movq $1, %gs:PCPU_NMI_RUNNING
	movq %gs:PCPU_NMI_STACK_TOP, %rsp
	subq $NMI_WORK_OFFSET, %rsp
nmi_repeat:
	movq $0, %gs:PCPU_NMI_LATCHED
	pushq %gs:PCPU_NMI_FRAME+32
	pushq %gs:PCPU_NMI_FRAME+24
	pushq %gs:PCPU_NMI_FRAME+16
	pushq %gs:PCPU_NMI_FRAME+8
	pushq %gs:PCPU_NMI_FRAME
	pushq $0				/* error code */
	pushq $2				/* vector */
	PUSH_REGS
	cld
	movq %rsp, %rdi
	call exc_nmi
	POP_REGS
	addq $56, %rsp				/* vector, error code, frame copy */
	.globl nmi_exit_window
nmi_exit_window:
	cmpq $0, %gs:PCPU_NMI_LATCHED
	jne nmi_repeat
	pushq %gs:PCPU_NMI_FRAME+32
	pushq %gs:PCPU_NMI_FRAME+24
	pushq %gs:PCPU_NMI_FRAME+16
	pushq %gs:PCPU_NMI_FRAME+8
	pushq %gs:PCPU_NMI_FRAME
	movq $0, %gs:PCPU_NMI_RUNNING
	iretq
	.globl nmi_exit_window_end
nmi_exit_window_end:
	.size asm_exc_nmi, . - asm_exc_nmi

/* ---- context switch ----
 * __switch_to_asm(prev, next): saves the callee-saved registers on prev's kernel stack,
 * switches to next's, and returns — in next's context — the task it switched away from
 * (RDI survives the stack switch). A new task's stack is prepared (process.c) so that
 * this `ret` lands in ret_from_fork. */
	.p2align 4
	.globl __switch_to_asm
	.type __switch_to_asm, @function
__switch_to_asm:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, TASK_THREAD_SP(%rdi)
	movq TASK_THREAD_SP(%rsi), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	movq %rdi, %rax
	ret
	.size __switch_to_asm, . - __switch_to_asm

/* A new task's first kernel code: finish the switch (release the run-queue lock), then
 * return to user mode through the pt_regs at the top of its kernel stack. */
	.p2align 4
	.globl ret_from_fork
	.type ret_from_fork, @function
ret_from_fork:
	movq %rax, %rdi
	call schedule_tail
	jmp idt_exit
	.size ret_from_fork, . - ret_from_fork
