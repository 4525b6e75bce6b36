/* probes.S — tiny x86-64 snippets the start-up self-check runs to measure the
 * Unicorn 2.0.1 behaviours apfsim relies on (see unicorn_backend.c). Assembled
 * into the library as read-only data and copied to PROBE_CODE in a scratch
 * engine; entry points sit at the fixed offsets of probe_layout.h. */
#include "probe_layout.h"

        .section .rodata
        .globl ubk_probe_blob
        .globl ubk_probe_blob_end
        .intel_syntax noprefix
        .code64
        .balign 64
ubk_probe_blob:
        .org ubk_probe_blob + P_PF_WRITE
        mov qword ptr [PROBE_PAGE_NP], rax
        hlt
        .org ubk_probe_blob + P_PF_READ
        mov rax, qword ptr [PROBE_PAGE_NP]
        hlt
        .org ubk_probe_blob + P_PF_RO
        mov qword ptr [PROBE_PAGE_RO], rax
        hlt
        .org ubk_probe_blob + P_TO_USER
        push PROBE_SEL_UDATA
        push PROBE_USTACK_TOP
        push 0x202
        push PROBE_SEL_UCODE
        push PROBE_CODE + P_USER
        iretq
        .org ubk_probe_blob + P_USER
        nop
        mov rax, qword ptr [PROBE_PAGE_SUP]
        hlt
        .org ubk_probe_blob + P_PRIV
        mov rax, cr0
        hlt
        .org ubk_probe_blob + P_INT81
        int 0x81
        hlt
        .org ubk_probe_blob + P_UD
        ud2
        .org ubk_probe_blob + P_STI
        cli
        sti
        nop
        hlt
        .org ubk_probe_blob + P_MOVSS
        mov ax, PROBE_SEL_KDATA
        mov ss, ax
        nop
        hlt
        .org ubk_probe_blob + P_WRMSR
        mov ecx, 0x12345678
        mov eax, 0xdeadbeef
        mov edx, 0x1
        wrmsr
        mov eax, 0x55
        rdmsr
        hlt
        .org ubk_probe_blob + P_EFER
        mov ecx, 0xc0000080
        rdmsr
        or eax, 0x801
        wrmsr
        rdmsr
        hlt
        .org ubk_probe_blob + P_NX_JMP
        mov rax, PROBE_PAGE_NX
        jmp rax
        .org ubk_probe_blob + P_IRET_SAME
        mov rax, rsp
        push PROBE_SEL_KDATA
        push rax
        pushfq
        push PROBE_SEL_KCODE
        lea rax, [rip + 1f]
        push rax
        iretq
1:      hlt
        .org ubk_probe_blob + P_COUNT
        /* Straight-line, a loop, a call/ret and a rep movsb: block counting
         * must agree with single-stepping over all of them. */
        mov ecx, 5
        xor eax, eax
2:      add eax, ecx
        lea rbx, [rax + rcx * 2]
        dec ecx
        jnz 2b
        call 3f
        mov esi, PROBE_COPY_SRC
        mov edi, PROBE_COPY_DST
        mov ecx, 7
        cld
        rep movsb
        xor ecx, ecx
        rep movsb
        nop
        hlt
3:      inc eax
        ret
        .org ubk_probe_blob + P_CPUID_ALL
        cpuid
        hlt
        .balign 64
ubk_probe_blob_end:
        .section .note.GNU-stack,"",@progbits
