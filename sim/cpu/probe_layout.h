/* probe_layout.h — fixed layout of the start-up probe machine (unicorn_backend.c).
 *
 * Shared by probes.S (assembled with the C preprocessor) and the C code that
 * loads and drives the probes, so every address is written once. Only the
 * self-check uses this; guest images never see it. */
#ifndef APFSIM_CPU_PROBE_LAYOUT_H
#define APFSIM_CPU_PROBE_LAYOUT_H

#define PROBE_MEM_BYTES 0x400000 /* 4 MiB identity-mapped probe RAM */

#define PROBE_GDT 0x1000
#define PROBE_TSS 0x3000
#define PROBE_PML4 0x10000
#define PROBE_PDPT 0x11000
#define PROBE_PD 0x12000
#define PROBE_PT0 0x13000 /* 0 .. 2 MiB */
#define PROBE_PT1 0x14000 /* 2 .. 4 MiB */
#define PROBE_CODE 0x20000
#define PROBE_KSTACK_TOP 0x38000
#define PROBE_USTACK_TOP 0x3c000
#define PROBE_COPY_SRC 0x40000
#define PROBE_COPY_DST 0x41000

/* Pages with special mappings in PT1. */
#define PROBE_PAGE_NP 0x200000  /* not present */
#define PROBE_PAGE_RO 0x201000  /* present, read-only */
#define PROBE_PAGE_SUP 0x202000 /* present, supervisor-only */
#define PROBE_PAGE_NX 0x203000  /* present, XD set (holds a HLT) */

/* Selectors of the probe GDT (Linux-like layout). */
#define PROBE_SEL_KCODE 0x10
#define PROBE_SEL_KDATA 0x18
#define PROBE_SEL_UDATA 0x2b
#define PROBE_SEL_UCODE 0x33
#define PROBE_SEL_TSS 0x40

/* Entry points: offsets into the probe code blob (probes.S). */
#define P_PF_WRITE 0x000   /* write a not-present page: #PF, error code 2 */
#define P_PF_READ 0x040    /* read a not-present page: #PF, error code 0 */
#define P_PF_RO 0x080      /* write a read-only page: #PF, error code 3 */
#define P_TO_USER 0x0c0    /* iretq to P_USER at CPL3 */
#define P_USER 0x100       /* CPL3: nop; read the supervisor page: #PF, error code 5 */
#define P_PRIV 0x140       /* mov rax, cr0; hlt — #GP(0) unless CPL0 */
#define P_INT81 0x180      /* int 0x81; hlt */
#define P_UD 0x1c0         /* ud2 */
#define P_STI 0x200        /* cli; sti; nop; hlt */
#define P_MOVSS 0x240      /* mov ss, ax; nop; hlt */
#define P_WRMSR 0x280      /* wrmsr/rdmsr of an unknown MSR; hlt */
#define P_EFER 0x2c0       /* set EFER.SCE|NXE with wrmsr, read it back; hlt */
#define P_NX_JMP 0x300     /* jump to the NX page */
#define P_IRET_SAME 0x340  /* iretq to CPL0 (same privilege); hlt */
#define P_COUNT 0x380      /* varied straight-line code, loop, call, rep movsb; hlt */
#define P_CPUID_ALL 0x500  /* cpuid for leaf eax / subleaf ecx; hlt */

#endif
