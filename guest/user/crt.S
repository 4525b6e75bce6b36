/* crt.S — where every user process starts (RDI = its parameter page, RSP = its stack top,
 * 16-byte aligned). The frame-pointer chain ends at RBP = 0 here, so the NMI's perf-like
 * call-chain walk stops. user_main's return value is the exit code. */
#define SYS_exit 60

	.text
	.globl _user_start
	.type _user_start, @function
_user_start:
	xorl %ebp, %ebp
	call user_main
	movq %rax, %rdi
	movl $SYS_exit, %eax
	int $0x80
	ud2
	.size _user_start, . - _user_start
