/* uaccess.S — the one routine that touches user memory from the kernel.
 *
 * copy_user_generic(to, from, n) copies with `rep movsb` and returns the number of bytes
 * NOT copied. A #PF on either side that the fault handler does not resolve (bad address,
 * or page faults disabled as in NMI context) resumes at the fixup through the exception
 * table, with RCX = bytes left: the string instruction faults precisely, having retired
 * the bytes before the faulting one (SDM vol. 1 §7.3.9.4). Linux's copy_user_generic
 * works the same way.
 */
	.text
	.globl copy_user_generic
	.type copy_user_generic, @function
copy_user_generic:
	movq %rdx, %rcx
.Lcopy:
	rep movsb
	xorl %eax, %eax
	ret
.Lcopy_fault:
	movq %rcx, %rax
	ret
	.size copy_user_generic, . - copy_user_generic

	.pushsection __ex_table, "a"
	.p2align 3
	.quad .Lcopy, .Lcopy_fault
	.popsection
