/* test_delivery.c — architectural event delivery (Intel SDM vol. 3A §6.14,
 * §6.15, x86-delivery.md): one test per case, each checking the pushed
 * frame (error code, RIP, CS, RFLAGS incl. RF, RSP, SS), the alignment, the
 * handler's RSP/RFLAGS/CS/CPL and CR2. Handlers are `hlt` (H_HLT) unless
 * said otherwise, so the frame is at RSP when the run stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define RF 0x10000u
#define IF 0x200u

struct frame {
  uint64_t err, rip, cs, rflags, rsp, ss;
};

/* Reads the frame at the handler's RSP (with or without an error code). */
static struct frame frame_at(struct harness *h, bool has_error) {
  uint64_t sp = h_reg(h, R_RSP);
  struct frame f = {0};
  if (has_error) {
    f.err = h_q(h, sp);
    sp += 8;
  }
  f.rip = h_q(h, sp);
  f.cs = h_q(h, sp + 8);
  f.rflags = h_q(h, sp + 16);
  f.rsp = h_q(h, sp + 24);
  f.ss = h_q(h, sp + 32);
  return f;
}

static void expect_in_handler(struct harness *h, struct vcpu_exit e, uint64_t handler) {
  if (e.reason != VCPU_EXIT_HLT) fail_msg("exit %s (%s) at rip %#llx", vcpu_exit_reason_name(e.reason), e.message,
                                          (unsigned long long)e.rip);
  assert_int_equal(e.rip, CODE(handler) + 1);
  struct vcpu_sregs s;
  vcpu_get_sregs(h->v, &s);
  assert_int_equal(s.cpl, 0);
  assert_int_equal(s.cs, VCPU_SEL_KERNEL_CS);
}

/* Boots at T_TO_USER, which IRETQs to user code at G_CODE+user with the
 * given RSP and RFLAGS. */
static void boot_user(struct harness *h, uint64_t user, uint64_t rsp, uint64_t rflags) {
  h_boot(h, T_TO_USER, false);
  h_set_reg(h, R_RDI, CODE(user));
  h_set_reg(h, R_RSI, rsp);
  h_set_reg(h, R_RDX, rflags);
}

/* ---------- exceptions ---------- */

static void pf_at_cpl0_pushes_error_code_and_cr2(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_PF_WRITE, true);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(e.instructions, 1); /* the faulting mov did not retire; the handler's hlt did */
  assert_int_equal(h_reg(&h, R_RSP), G_KSTACK_TOP - 48);
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.err, 0x2); /* not present, write, supervisor */
  assert_int_equal(f.rip, CODE(T_PF_WRITE));
  assert_int_equal(f.cs, VCPU_SEL_KERNEL_CS);
  assert_int_equal(f.rflags, 0x2 | IF | RF); /* RF = 1 for a fault */
  assert_int_equal(f.rsp, G_KSTACK_TOP);
  assert_int_equal(f.ss, VCPU_SEL_KERNEL_DS);
  assert_int_equal(vcpu_cr2(h.v), G_NP);
  assert_int_equal(h_reg(&h, R_RFLAGS) & (IF | RF | 0x100), 0); /* interrupt gate: IF, RF, TF clear */
  h_free(&h);
}

static void frame_is_16_byte_aligned(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_PF_ALIGN, false);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), 0x7fff0 - 48);
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.rsp, 0x7fff8);
  assert_int_equal(f.rip, CODE(T_PF_ALIGN) + 7);
  h_free(&h);
}

static void de_has_no_error_code(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_DIV0, false);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_KSTACK_TOP - 40);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(T_DIV0) + 2);
  assert_int_equal(f.rflags & RF, RF);
  assert_int_equal(e.instructions, 2); /* xor and the handler's hlt */
  h_free(&h);
}

static void ud_is_a_fault_on_the_instruction(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 6, H_HLT, 0, 0xe, 0);
  h_boot(&h, T_UD, false);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(T_UD));
  assert_int_equal(h_reg(&h, R_RSP), G_KSTACK_TOP - 40);
  h_free(&h);
}

static void gp_from_unknown_msr(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_WRMSR, false);
  h_set_reg(&h, R_RCX, 0x12345678);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.err, 0);
  assert_int_equal(f.rip, CODE(T_WRMSR));
  assert_int_equal(f.rflags & RF, RF);
  h_free(&h);
}

/* ---------- software interrupts and privilege changes ---------- */

static void int_n_from_cpl3_switches_to_rsp0(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 0x80, H_HLT, 0, 0xe, 3);
  boot_user(&h, U_INT80, G_USTACK_TOP - 8, 0x202);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_RSP0_TOP - 40);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(U_INT80) + 2); /* after the INT */
  assert_int_equal(f.cs, VCPU_SEL_USER_CS);
  assert_int_equal(f.rflags, 0x202); /* RF = 0 for INT n */
  assert_int_equal(f.rsp, G_USTACK_TOP - 8);
  assert_int_equal(f.ss, VCPU_SEL_USER_DS);
  struct vcpu_sregs s;
  vcpu_get_sregs(h.v, &s);
  assert_int_equal(s.ss, 0); /* NULL SS with RPL = new CPL */
  assert_int_equal(h_reg(&h, R_RFLAGS) & IF, 0);
  h_free(&h);
}

static void int_0x81_through_dpl0_gate_is_gp_0x40a(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  boot_user(&h, U_INT81, G_USTACK_TOP, 0x202);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_RSP0_TOP - 48);
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.err, 0x40a); /* 0x81 * 8 + 2: IDT, not EXT */
  assert_int_equal(f.rip, CODE(U_INT81)); /* the INT itself faults */
  assert_int_equal(f.cs, VCPU_SEL_USER_CS);
  assert_int_equal(f.rflags, 0x202 | RF);
  h_free(&h);
}

static void int3_from_cpl3(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 3, H_HLT, 0, 0xe, 3);
  boot_user(&h, U_INT3, G_USTACK_TOP, 0x202);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(U_INT3) + 1);
  assert_int_equal(f.cs, VCPU_SEL_USER_CS);
  h_free(&h);
}

static void trap_gate_keeps_if(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 0x82, H_HLT, 0, 0xf, 0);
  h_boot(&h, T_INT82, true);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rflags, 0x202);
  assert_int_equal(f.rip, CODE(T_INT82) + 2);
  assert_int_equal(h_reg(&h, R_RFLAGS) & IF, IF);
  h_free(&h);
}

static void iretq_returns_to_cpl3(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 0x80, H_INT80, 0, 0xe, 3);
  boot_user(&h, U_INT80, G_USTACK_TOP, 0x202);
  struct vcpu_exit e = h_run(&h, 40);
  assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
  assert_int_equal(h_reg(&h, R_R15), 2);
  assert_int_equal(h_reg(&h, R_RBX), 7);
  assert_int_equal(h_reg(&h, R_RSP), G_USTACK_TOP);
  struct vcpu_sregs s;
  vcpu_get_sregs(h.v, &s);
  assert_int_equal(s.cpl, 3);
  assert_int_equal(s.cs, VCPU_SEL_USER_CS);
  assert_int_equal(s.ss, VCPU_SEL_USER_DS);
  h_free(&h);
}

static void ist_is_used_and_aligned(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 2, H_HLT, 1, 0xe, 0);
  h_tss_ist(&h, 1, G_IST1_TOP + 8); /* misaligned on purpose */
  h_boot(&h, T_NOPS, true);
  struct vcpu_exit e = h_run(&h, 3);
  assert_int_equal(e.instructions, 3);
  vcpu_queue_nmi(h.v);
  e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_IST1_TOP - 40);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(T_NOPS) + 3);
  assert_int_equal(f.rflags, 0x202); /* between instructions: RF as it was (0) */
  assert_int_equal(f.rsp, G_KSTACK_TOP);
  assert_true(vcpu_nmi_blocked(h.v));
  h_free(&h);
}

static void ist_wins_over_rsp0_from_cpl3(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 0, H_HLT, 2, 0xe, 0);
  boot_user(&h, T_DIV0_CPL3, G_USTACK_TOP, 0x202);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_IST2_TOP - 40);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(T_DIV0_CPL3) + 2);
  assert_int_equal(f.cs, VCPU_SEL_USER_CS);
  assert_int_equal(f.ss, VCPU_SEL_USER_DS);
  h_free(&h);
}

/* ---------- double and triple faults ---------- */

static void contributory_then_contributory_is_df(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.mem[G_IDT + 16 * 0 + 5] &= 0x7f; /* #DE gate not present: #NP(3) while delivering #DE */
  h_boot(&h, T_DIV0, false);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_KSTACK_TOP - 48);
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.err, 0);
  assert_int_equal(f.rip, CODE(T_DIV0) + 2);
  h_free(&h);
}

static void pf_while_delivering_pf_is_df(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 14, H_HLT, 2, 0xe, 0);
  h_gate(&h, 8, H_HLT, 1, 0xe, 0);
  h_pte(&h, G_IST2_TOP - 0x1000, 0); /* #PF's IST stack is not present */
  h_boot(&h, T_PF_WRITE, false);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_IST1_TOP - 48); /* the #DF frame, with error code 0 */
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.err, 0);
  assert_int_equal(f.rip, CODE(T_PF_WRITE));
  /* CR2 holds the second #PF's address: the IST stack */
  assert_true(vcpu_cr2(h.v) >= G_IST2_TOP - 0x1000 && vcpu_cr2(h.v) < G_IST2_TOP);
  h_free(&h);
}

static void pf_while_delivering_nmi_stays_pf(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 2, H_HLT, 2, 0xe, 0);
  h_pte(&h, G_IST2_TOP - 0x1000, 0); /* the NMI's IST stack is not present */
  h_boot(&h, T_NOPS, false);
  h_run(&h, 4);
  vcpu_queue_nmi(h.v);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h_reg(&h, R_RSP), G_KSTACK_TOP - 48); /* vector 14's frame on the normal stack */
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.err, 0x2); /* write, not present, supervisor */
  assert_int_equal(f.rip, CODE(T_NOPS) + 4);
  assert_true(vcpu_cr2(h.v) >= G_IST2_TOP - 0x1000 && vcpu_cr2(h.v) < G_IST2_TOP);
  assert_false(vcpu_nmi_blocked(h.v));
  h_free(&h);
}

static void fault_during_df_is_triple_fault(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.mem[G_IDT + 16 * 0 + 5] &= 0x7f;
  h.mem[G_IDT + 16 * 8 + 5] &= 0x7f;
  h_boot(&h, T_DIV0, false);
  struct vcpu_exit e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_TRIPLE_FAULT);
  assert_non_null(strstr(e.message, "triple fault"));
  assert_non_null(strstr(e.message, "#DF"));
  e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_SHUTDOWN);
  assert_int_equal(e.instructions, 0);
  h_free(&h);
}

/* ---------- NMI ---------- */

/* NMIs are blocked from delivery to the next IRET — here the IRET of a #PF
 * taken inside the NMI handler — with one latched and the rest dropped. */
static void nmi_blocked_until_iret_of_nested_pf(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 2, H_NMI, 0, 0xe, 0);
  h_gate(&h, 14, H_PF_SKIP8, 0, 0xe, 0);
  h_boot(&h, T_NOPS, true);
  h_run(&h, 2);
  vcpu_queue_nmi(h.v);
  struct vcpu_exit e = h_run(&h, 0); /* delivered at the boundary */
  assert_int_equal(e.rip, CODE(H_NMI));
  assert_true(vcpu_nmi_blocked(h.v));
  vcpu_queue_nmi(h.v); /* latched */
  vcpu_queue_nmi(h.v); /* dropped: only one is latched */
  e = h_run(&h, 1);    /* inc r14 */
  assert_int_equal(h_reg(&h, R_R14), 1);
  assert_true(vcpu_nmi_pending(h.v));
  e = h_run(&h, 1); /* the mov faults: #PF handler entered, its first instruction runs */
  assert_int_equal(e.instructions, 1);
  assert_int_equal(vcpu_cr2(h.v), G_NP);
  assert_true(vcpu_nmi_blocked(h.v));
  e = h_run(&h, 2); /* add rsp, 8; and the #PF handler's iretq */
  assert_int_equal(e.instructions, 2);
  /* The IRET unblocked NMIs: the latched NMI was delivered right after it,
   * before the instruction the #PF returned to. */
  assert_int_equal(e.rip, CODE(H_NMI));
  assert_true(vcpu_nmi_blocked(h.v));
  assert_false(vcpu_nmi_pending(h.v));
  const uint64_t sp = h_reg(&h, R_RSP);
  assert_int_equal(h_q(&h, sp), CODE(H_NMI) + 3 + 8); /* return to the first handler's second inc */
  /* Run both handlers to the end: r14 counts 4 incs, no third NMI. */
  e = h_run(&h, 100);
  assert_int_equal(h_reg(&h, R_R14), 4);
  assert_false(vcpu_nmi_blocked(h.v));
  assert_false(vcpu_nmi_pending(h.v));
  h_free(&h);
}

/* ---------- external interrupts and shadows ---------- */

static void irq_delivered_when_if_set(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_NOPS, true);
  h_run(&h, 5);
  h.irq_vector = 0x30;
  vcpu_set_irq_line(h.v, true);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(h.n_ack, 1);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(T_NOPS) + 5);
  assert_int_equal(f.rflags, 0x202);
  assert_int_equal(h_reg(&h, R_RFLAGS) & IF, 0);
  assert_int_equal(e.instructions, 1);
  h_free(&h);
}

static void irq_waits_for_sti_and_its_shadow(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_STI, false);
  h.irq_vector = 0x30;
  vcpu_set_irq_line(h.v, true);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  struct frame f = frame_at(&h, false);
  /* cli, nop, sti, then the instruction in the STI shadow; taken before the next */
  assert_int_equal(f.rip, CODE(T_STI) + 4);
  assert_int_equal(e.instructions, 5);
  h_free(&h);
}

static void irq_waits_out_mov_ss_shadow(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_MOVSS, true);
  struct vcpu_exit e = h_run(&h, 2); /* stop right after mov ss */
  assert_int_equal(e.rip, CODE(T_MOVSS) + 6);
  h.irq_vector = 0x30;
  vcpu_set_irq_line(h.v, true);
  e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  struct frame f = frame_at(&h, false);
  assert_int_equal(f.rip, CODE(T_MOVSS) + 7);
  h_free(&h);
}

static void nmi_waits_out_mov_ss_but_not_sti(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_MOVSS, true);
  h_run(&h, 2);
  vcpu_queue_nmi(h.v);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(frame_at(&h, false).rip, CODE(T_MOVSS) + 7);
  h_free(&h);

  h_init(&h);
  h_boot(&h, T_STI, false);
  e = h_run(&h, 3); /* cli, nop, sti */
  assert_int_equal(e.rip, CODE(T_STI) + 3);
  vcpu_queue_nmi(h.v);
  e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  assert_int_equal(frame_at(&h, false).rip, CODE(T_STI) + 3);
  h_free(&h);
}

/* The host's APF decision reads these between runs (DESIGN.md §2). */
static void host_sees_if_shadows_and_pending_events(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_STI, false);
  assert_true(vcpu_interrupts_blocked(h.v)); /* IF = 0 at boot */
  h_run(&h, 3);                              /* cli, nop, sti */
  assert_true(vcpu_interrupts_blocked(h.v)); /* IF = 1 but in the STI shadow */
  h_run(&h, 1);
  assert_false(vcpu_interrupts_blocked(h.v));
  assert_false(vcpu_exception_pending(h.v));
  assert_false(vcpu_event_reinjecting(h.v));
  vcpu_queue_exception(h.v, 14, 0, 0x1001);
  assert_true(vcpu_exception_pending(h.v));
  h_free(&h);

  h_init(&h);
  h_boot(&h, T_MOVSS, true);
  assert_false(vcpu_interrupts_blocked(h.v));
  h_run(&h, 2); /* right after mov ss */
  assert_true(vcpu_interrupts_blocked(h.v));
  h_free(&h);
}

static void irq_wakes_hlt(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 0x30, H_IRQ, 0, 0xe, 0);
  h_boot(&h, T_HLT, true);
  struct vcpu_exit e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.rip, CODE(T_HLT) + 1);
  h.irq_vector = 0x30;
  vcpu_set_irq_line(h.v, true);
  e = h_run(&h, 2); /* delivered, then inc r13 and iretq */
  assert_int_equal(e.reason, VCPU_EXIT_QUANTUM);
  assert_int_equal(h_reg(&h, R_R13), 1);
  assert_int_equal(e.rip, CODE(T_HLT) + 1);
  assert_false(vcpu_halted(h.v));
  h_free(&h);
}

/* The idle loop's `sti; hlt`: the HLT sits in the STI shadow, and the shadow
 * ends when the HLT retires (SDM: the instruction after STI completes), so
 * an interrupt raised while halted wakes the vCPU, returning after the HLT. */
static void irq_wakes_hlt_in_sti_shadow(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_gate(&h, 0x30, H_IRQ, 0, 0xe, 0);
  h_boot(&h, T_STI_HLT, false);
  struct vcpu_exit e = h_run(&h, 100);
  assert_int_equal(e.reason, VCPU_EXIT_HLT);
  assert_int_equal(e.rip, CODE(T_STI_HLT) + 3);
  assert_false(vcpu_interrupts_blocked(h.v));
  h.irq_vector = 0x30;
  vcpu_set_irq_line(h.v, true);
  e = h_run(&h, 2); /* delivered at once, then inc r13 and iretq */
  assert_int_equal(h_reg(&h, R_R13), 1);
  assert_int_equal(e.rip, CODE(T_STI_HLT) + 3);
  assert_false(vcpu_halted(h.v));
  h_free(&h);
}

/* An exception the platform injects (an APF #PF: error code 0, CR2 =
 * token) lands at the boundary, on the instruction about to run. */
static void injected_pf_carries_token_in_cr2(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h.cfg.costs.event_injection_cycles = 11;
  h_boot(&h, T_NOPS, true);
  h_run(&h, 7);
  vcpu_queue_exception(h.v, 14, 0, 0x1001);
  struct vcpu_exit e = h_run(&h, 100);
  expect_in_handler(&h, e, H_HLT);
  struct frame f = frame_at(&h, true);
  assert_int_equal(f.err, 0);
  assert_int_equal(f.rip, CODE(T_NOPS) + 7);
  assert_int_equal(f.rflags, 0x202 | RF);
  assert_int_equal(vcpu_cr2(h.v), 0x1001);
  assert_int_equal(h.charged[VCPU_COST_INJECTION], 11);
  h_free(&h);
}

/* ---------- CR2 ---------- */

static void cr2_only_changes_on_pf_or_mov(void **state) {
  (void)state;
  struct harness h;
  h_init(&h);
  h_boot(&h, T_CR2, false);
  h_set_reg(&h, R_RAX, 0xdead000);
  for (unsigned i = 0; i < 7; i++) { /* mov cr2; jmp; mov r9,cr2; xor; cpuid; mov r8,cr2; hlt */
    struct vcpu_exit e = h_run(&h, 1);
    assert_int_equal(e.reason, i < 6 ? VCPU_EXIT_QUANTUM : VCPU_EXIT_HLT);
  }
  assert_int_equal(h_reg(&h, R_R9), 0xdead000);
  assert_int_equal(h_reg(&h, R_R8), 0xdead000);
  assert_int_equal(vcpu_cr2(h.v), 0xdead000);
  /* Unicorn faults silently when invalidating code at an unmapped address;
   * the guest must not see it. */
  vcpu_code_changed(h.v, G_NP, 64);
  struct vcpu_sregs s;
  vcpu_get_sregs(h.v, &s);
  assert_int_equal(s.cr2, 0xdead000);
  h_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pf_at_cpl0_pushes_error_code_and_cr2),
      cmocka_unit_test(frame_is_16_byte_aligned),
      cmocka_unit_test(de_has_no_error_code),
      cmocka_unit_test(ud_is_a_fault_on_the_instruction),
      cmocka_unit_test(gp_from_unknown_msr),
      cmocka_unit_test(int_n_from_cpl3_switches_to_rsp0),
      cmocka_unit_test(int_0x81_through_dpl0_gate_is_gp_0x40a),
      cmocka_unit_test(int3_from_cpl3),
      cmocka_unit_test(trap_gate_keeps_if),
      cmocka_unit_test(iretq_returns_to_cpl3),
      cmocka_unit_test(ist_is_used_and_aligned),
      cmocka_unit_test(ist_wins_over_rsp0_from_cpl3),
      cmocka_unit_test(contributory_then_contributory_is_df),
      cmocka_unit_test(pf_while_delivering_pf_is_df),
      cmocka_unit_test(pf_while_delivering_nmi_stays_pf),
      cmocka_unit_test(fault_during_df_is_triple_fault),
      cmocka_unit_test(nmi_blocked_until_iret_of_nested_pf),
      cmocka_unit_test(irq_delivered_when_if_set),
      cmocka_unit_test(irq_waits_for_sti_and_its_shadow),
      cmocka_unit_test(irq_waits_out_mov_ss_shadow),
      cmocka_unit_test(nmi_waits_out_mov_ss_but_not_sti),
      cmocka_unit_test(host_sees_if_shadows_and_pending_events),
      cmocka_unit_test(irq_wakes_hlt_in_sti_shadow),
      cmocka_unit_test(irq_wakes_hlt),
      cmocka_unit_test(injected_pf_carries_token_in_cr2),
      cmocka_unit_test(cr2_only_changes_on_pf_or_mov),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
