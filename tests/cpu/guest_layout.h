/* guest_layout.h — the test machine's memory map and the entry points of
 * guest.S, shared by the assembler (through cpp) and the C tests. */
#ifndef APFSIM_TESTS_CPU_GUEST_LAYOUT_H
#define APFSIM_TESTS_CPU_GUEST_LAYOUT_H

#define G_MEM_BYTES 0x800000 /* 8 MiB, identity-mapped with 4 KiB pages */
#define G_POOL_BYTES 0x400000 /* the shadow MMU's table pool, right above guest RAM */
#define G_GDT 0x1000
#define G_TSS 0x2000
#define G_IDT 0x3000
#define G_PML4 0x10000
#define G_PDPT 0x11000
#define G_PD 0x12000
#define G_PT 0x13000 /* four page tables, 0x13000..0x16fff */
#define G_USTACK_TOP 0x70000
#define G_KSTACK_TOP 0x80000
#define G_RSP0_TOP 0x88000
#define G_IST1_TOP 0x90000
#define G_IST2_TOP 0x98000
#define G_DATA 0x200000
#define G_NP 0x300000  /* left not present by the tests that need it */
#define G_NP2 0x301000
#define G_CODE 0x100000

/* Entry points (offsets from G_CODE). */
#define T_HLT 0x0000        /* hlt */
#define T_PF_WRITE 0x0010   /* mov [G_NP], rax; hlt */
#define T_DIV0 0x0030       /* xor ecx,ecx; div ecx; hlt */
#define T_UD 0x0050         /* ud2 */
#define T_TO_USER 0x0060    /* iretq to rdi at CPL3 with rsp = rsi, rflags = rdx */
#define T_INT82 0x0080      /* int 0x82; hlt */
#define T_NOPS 0x00a0       /* 64 nops; hlt */
#define T_STI 0x0100        /* cli; nop; sti; nop; nop; nop; hlt */
#define T_MOVSS 0x0120      /* mov ax, 0x18; mov ss, ax; nop; nop; hlt */
#define T_CR2 0x0140        /* mov cr2, rax; jmp 1f; 1: mov rbx, cr2; cpuid; mov rcx, cr2; hlt */
#define T_RDTSC 0x0180      /* rdtsc; hlt */
#define T_RDTSCP 0x0190     /* rdtscp; hlt */
#define T_RDRAND 0x01a0     /* rdrand rax; setc bl; rdseed ecx; setc dl; hlt */
#define T_IO 0x01c0         /* out 0xe9, al; in al, 0x60; mov dx,0x3f8; out dx, al; hlt */
#define T_CPUID 0x01e0      /* cpuid; hlt */
#define T_RDMSR 0x01f0      /* rdmsr; hlt */
#define T_WRMSR 0x0200      /* wrmsr; hlt */
#define T_COUNT 0x0400      /* exception-free varied code; hlt */
#define T_COUNT_FAULTS 0x0800 /* the same with #DE, int 0x80, #PF, cpuid, rdtsc; hlt */
#define T_DIV0_CPL3 0x0c00  /* (CPL3) xor ecx,ecx; div ecx */
#define T_PF_ALIGN 0x0c20   /* mov rsp, 0x7fff8; mov [G_NP], rax; hlt */
#define T_OUT_HLT 0x0c40    /* out 0xf4, al; hlt */
#define T_CR3 0x0c60        /* mov rax, cr3; mov cr3, rax; mov rbx, cr3; invlpg [G_DATA]; mov rcx, cr0; hlt */
#define T_USER_WRITE 0x0c80 /* (CPL3) mov [rbx], rax; jmp . */
#define T_SMC 0x0ca0        /* call X; rewrite X (5 nops; ret -> mov eax, 1; ret); call X; hlt */
#define T_SMC_X 0x0cc0
#define G_XCODE (G_DATA + 0x2000) /* code one vCPU runs and another rewrites */
#define T_WRITE_X 0x0d00    /* mov byte [G_XCODE + 9], 2; hlt */
#define T_STI_HLT 0x0d20    /* cli; sti; hlt; nop; hlt (the idle loop's sti; hlt) */

/* Handlers (offsets from G_CODE). */
#define H_HLT 0x1000        /* hlt: the test reads the frame at RSP */
#define H_IRET 0x1010       /* iretq */
#define H_INT80 0x1020      /* inc r15; iretq */
#define H_DE_SKIP 0x1030    /* add qword [rsp], 2; iretq */
#define H_PF_SKIP8 0x1040   /* add qword [rsp+8], 8; add rsp, 8; iretq */
#define H_NMI 0x1060        /* inc r14; mov rax, [G_NP]; inc r14; iretq */
#define H_IRQ 0x1080        /* inc r13; iretq */
#define H_GP_SKIP2 0x1090   /* add qword [rsp+8], 2; add rsp, 8; iretq */

/* User code (offsets from G_CODE), on user pages. */
#define U_INT80 0x2000      /* int 0x80; int 0x80; nop...; jmp . */
#define U_INT81 0x2020      /* int 0x81 */
#define U_INT3 0x2040       /* int3 */
#define U_LOOP 0x2060       /* inc rax; jmp U_LOOP */

/* Code outside the scanned text (discovered when it runs). */
#define L_START 0x3000
#define L_WRMSR 0x3000      /* mov ecx, 0x4b564d02; wrmsr; hlt */
#define L_SYSCALL 0x3020    /* syscall */
#define L_END 0x3100

#define G_BLOB_BYTES 0x3100

#endif
