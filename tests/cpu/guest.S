/* guest.S — the x86-64 snippets the vCPU tests run, at the fixed offsets of
 * guest_layout.h. Assembled into the test programs as data and copied to
 * G_CODE; only relative jumps and absolute addresses from the layout are
 * used, so the copy runs where it lands. */
#include "guest_layout.h"

        .section .rodata
        .globl guest_blob
        .globl guest_blob_end
        .intel_syntax noprefix
        .code64
        .balign 4096
guest_blob:
        .org guest_blob + T_HLT
        hlt
        .org guest_blob + T_PF_WRITE
        mov qword ptr [G_NP], rax
        hlt
        .org guest_blob + T_DIV0
        xor ecx, ecx
        div ecx
        hlt
        .org guest_blob + T_UD
        ud2
        .org guest_blob + T_TO_USER
        push 0x2b
        push rsi
        push rdx
        push 0x33
        push rdi
        iretq
        .org guest_blob + T_INT82
        int 0x82
        hlt
        .org guest_blob + T_NOPS
        .rept 64
        nop
        .endr
        hlt
        .org guest_blob + T_STI
        cli
        nop
        sti
        nop
        nop
        nop
        hlt
        .org guest_blob + T_MOVSS
        mov ax, 0x18
        mov ss, ax
        nop
        nop
        hlt
        .org guest_blob + T_CR2
        mov cr2, rax
        jmp 1f
1:      mov r9, cr2
        xor eax, eax
        cpuid
        mov r8, cr2
        hlt
        .org guest_blob + T_RDTSC
        rdtsc
        hlt
        .org guest_blob + T_RDTSCP
        rdtscp
        hlt
        .org guest_blob + T_RDRAND
        rdrand rax
        setc bl
        rdseed ecx
        setc dl
        hlt
        .org guest_blob + T_IO
        out 0xe9, al
        in al, 0x60
        mov dx, 0x3f8
        out dx, al
        hlt
        .org guest_blob + T_CPUID
        cpuid
        hlt
        .org guest_blob + T_RDMSR
        rdmsr
        hlt
        .org guest_blob + T_WRMSR
        wrmsr
        hlt

        .org guest_blob + T_COUNT
        mov ecx, 10
        xor eax, eax
        xor ebx, ebx
1:      add rax, rcx
        imul rbx, rax, 3
        test cl, 1
        jz 2f
        inc rbx
2:      dec ecx
        jnz 1b
        call 9f
        call 9f
        mov esi, G_DATA
        mov edi, G_DATA + 0x100
        mov ecx, 13
        cld
        rep movsb
        mov ecx, 0
        rep movsb
        mov edi, G_DATA + 0x200
        mov ecx, 5
        movabs rax, 0x1122334455667788
        rep stosq
        mov esi, G_DATA
        mov edi, G_DATA + 0x100
        mov ecx, 20
        repe cmpsb
        push rax
        push rbx
        pop rcx
        pop rdx
        cmovz rax, rbx
        xchg rax, rbx
        mov r8, 7
3:      shl r9, 1
        or r9, r8
        dec r8
        jnz 3b
        mov ecx, 3
        mov esi, G_DATA
        mov edi, G_DATA + 0x300
        rep movsb byte ptr [edi], byte ptr [esi]
        lea r11, [rip + 4f]
        jmp r11
        nop
4:      mov r12, rsp
        sub rsp, 64
        mov qword ptr [rsp + 8], r12
        add rsp, 64
        hlt
9:      add r10, 1
        ret

        .org guest_blob + T_COUNT_FAULTS
        mov ecx, 5
1:      xor edx, edx
        mov eax, 100
        div ecx
        dec ecx
        jnz 1b
        xor edx, edx
        div ecx
        int 0x80
        mov eax, 1
        cpuid
        rdtsc
        mov ecx, 5
2:      mov byte ptr [G_DATA + 0x400 + rcx], cl
        dec ecx
        jnz 2b
        mov rax, qword ptr [G_NP]
        inc rax
        mov esi, G_DATA
        mov edi, G_DATA + 0x500
        mov ecx, 9
        rep movsb
        int 0x80
        hlt

        .org guest_blob + T_DIV0_CPL3
        xor ecx, ecx
        div ecx
        .org guest_blob + T_PF_ALIGN
        mov rsp, 0x7fff8
        mov qword ptr [G_NP], rax
        hlt
        .org guest_blob + T_OUT_HLT
        out 0xf4, al
        hlt

        .org guest_blob + T_CR3
        mov rax, cr3
        mov cr3, rax
        mov rbx, cr3
        invlpg [G_DATA]
        mov rcx, cr0
        hlt
        .org guest_blob + T_USER_WRITE
        mov qword ptr [rbx], rax
        jmp .

        .org guest_blob + T_SMC
        call 1f
        mov dword ptr [G_CODE + T_SMC_X], 0x000001b8
        mov byte ptr [G_CODE + T_SMC_X + 4], 0
        call 1f
        hlt
        .org guest_blob + T_SMC_X
1:      nop
        nop
        nop
        nop
        nop
        ret

        .org guest_blob + T_WRITE_X
        mov byte ptr [G_XCODE + 9], 2
        hlt

        .org guest_blob + T_STI_HLT
        cli
        sti
        hlt
        nop
        hlt

        .org guest_blob + H_HLT
        hlt
        .org guest_blob + H_IRET
        iretq
        .org guest_blob + H_INT80
        inc r15
        iretq
        .org guest_blob + H_DE_SKIP
        add qword ptr [rsp], 2
        iretq
        .org guest_blob + H_PF_SKIP8
        add qword ptr [rsp + 8], 8
        add rsp, 8
        iretq
        .org guest_blob + H_NMI
        inc r14
        mov rax, qword ptr [G_NP]
        inc r14
        iretq
        .org guest_blob + H_IRQ
        inc r13
        iretq
        .org guest_blob + H_GP_SKIP2
        add qword ptr [rsp + 8], 2
        add rsp, 8
        iretq

        .org guest_blob + U_INT80
        int 0x80
        int 0x80
        mov ebx, 7
        jmp .
        .org guest_blob + U_INT81
        int 0x81
        .org guest_blob + U_INT3
        int3
        .org guest_blob + U_LOOP
        inc rax
        jmp guest_blob + U_LOOP

        .org guest_blob + L_WRMSR
        mov ecx, 0x4b564d02
        wrmsr
        hlt
        .org guest_blob + L_SYSCALL
        syscall
        .org guest_blob + L_END
guest_blob_end:
        .section .note.GNU-stack,"",@progbits
