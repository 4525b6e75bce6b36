/* head.S — the ELF entry point and the boot-time tables the simulator points the vCPUs at.
 *
 * Boot contract (docs/guest.md): every vCPU enters kernel_entry in 64-bit mode at CPL0
 * with interrupts off, CR3 = boot_pml4, GDTR = boot_gdt, RSP = its boot stack top,
 * RDI = vCPU index, RSI = boot info address. The tables live in the image (not built by
 * the simulator) so that the simulator only loads registers: the image describes itself
 * through its .apfsim_contract section.
 */
#include "asm_offsets.h"

	.section .text.entry, "ax"
	.globl kernel_entry
	.type kernel_entry, @function
kernel_entry:
	cld
	xorl %ebp, %ebp			/* the frame-pointer chain ends here */
	testq %rdi, %rdi
	jnz 1f
	call start_kernel		/* BSP (vCPU 0) */
	jmp halt_forever
1:	call start_secondary		/* APs wait inside for the BSP's go */
	.globl halt_forever
halt_forever:
	cli
	hlt
	jmp halt_forever
	.size kernel_entry, . - kernel_entry

	.section .data.boot, "aw"
	.p2align 12
	/* Identity map of [0, BOOT_MAP_LARGE_PAGES * 2 MiB), supervisor read-write, 2 MiB
	 * pages. Used only until mm_init() loads the kernel's own tables. */
	.globl boot_pml4
boot_pml4:
	.quad boot_pdpt + 0x3		/* P | RW */
	.fill 511, 8, 0
boot_pdpt:
	.quad boot_pd + 0x3
	.fill 511, 8, 0
boot_pd:
	.set i, 0
	.rept BOOT_MAP_LARGE_PAGES
	.quad (i << 21) + 0x83		/* P | RW | PS */
	.set i, i + 1
	.endr
	.fill 512 - BOOT_MAP_LARGE_PAGES, 8, 0

	/* Boot GDT: null, 64-bit kernel code (0x08), kernel data (0x10). Writable: the
	 * CPU sets accessed bits in descriptors it loads. */
	.p2align 3
	.globl boot_gdt, boot_gdt_end
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
boot_gdt_end:
