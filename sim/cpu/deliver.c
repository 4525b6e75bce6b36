/* deliver.c — architectural delivery of an exception, NMI or external
 * interrupt in IA-32e mode, done by the simulator because Unicorn 2.0.1
 * stops at the interrupt hook and delivers nothing.
 *
 * deliver_once() follows Intel SDM vol. 3A §6.14 ("Exception and Interrupt
 * Handling in 64-bit Mode") step by step: fetch the 16-byte gate (§6.14.1),
 * check it and the target code segment (§6.12.1.1 privilege rules), choose
 * the stack — IST, TSS.RSPn on a privilege change, else the current one
 * (§6.14.4, §6.14.5) —, align it to 16 bytes, push SS, RSP, RFLAGS, CS, RIP
 * and the error code (§6.14.2), then load CS:RIP and clear TF, NT, RF and,
 * for an interrupt gate, IF. The IDT, GDT and TSS are read, and the frame is
 * written, through the guest's own page tables with their permissions
 * (paging.h), and through EPT residency: a page the host does not have is a
 * synchronous EPT-violation exit, never an APF.
 *
 * deliver_event() wraps it with the double-fault rules of §6.15 (table 6-5):
 * contributory then contributory, or #PF then #PF/contributory, become #DF;
 * anything during #DF is a triple fault, reported as an exit; everything
 * else is handled serially (a #PF while delivering an NMI stays a #PF).
 *
 * Choices where the SDM leaves room (docs/vcpu.md): an IST switch without a
 * privilege change keeps SS; the first event is dropped when delivering it
 * raised an exception that was delivered instead; only 64-bit code segments
 * in the GDT are valid handler targets. */
#include <stdio.h>
#include <string.h>

#include "cpu/vcpu_internal.h"

bool vector_has_error_code(unsigned vector) {
  return vector == VEC_DF || (vector >= VEC_TS && vector <= VEC_PF) || vector == VEC_AC || vector == 21;
}

static bool contributory(unsigned vector) { return vector == VEC_DE || (vector >= VEC_TS && vector <= VEC_GP); }

static bool is_exception(const struct event *ev) { return ev->kind == EVENT_FAULT || ev->kind == EVENT_TRAP; }

static void event_name(const struct event *ev, char *buf, size_t n) {
  static const char *const names[32] = {
      "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#9", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
      "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
  switch (ev->kind) {
    case EVENT_NMI:
      snprintf(buf, n, "NMI");
      return;
    case EVENT_IRQ:
      snprintf(buf, n, "interrupt %#x", ev->vector);
      return;
    case EVENT_SOFT_INT:
      snprintf(buf, n, "int %#x", ev->vector);
      return;
    default:
      if (ev->vector < 32 && names[ev->vector])
        snprintf(buf, n, "%s", names[ev->vector]);
      else
        snprintf(buf, n, "exception %u", ev->vector);
  }
}

enum attempt_kind { ATT_OK, ATT_FAULT, ATT_HOST, ATT_INTERNAL };

struct attempt {
  enum attempt_kind kind;
  struct event second; /* ATT_FAULT: the exception raised while delivering */
  uint64_t gpa, gva;   /* ATT_HOST */
  enum vcpu_access access;
  char msg[160]; /* ATT_INTERNAL */
};

static void raise2(struct attempt *a, uint8_t vector, uint32_t error_code, uint64_t fault_rip) {
  a->kind = ATT_FAULT;
  a->second = (struct event){EVENT_FAULT, vector, vector_has_error_code(vector), error_code, 0, fault_rip, fault_rip,
                             false};
}

/* Guest memory as event delivery sees it: the guest's page tables, with
 * permissions, and the host's residency. The only path delivery uses, so a
 * different walker or an EPT model plugs in here. */
static bool guest_access(struct vcpu *v, const struct paging_ctx *pc, uint64_t va, void *buf, size_t len,
                         bool write, enum paging_mode mode, uint64_t fault_rip, struct attempt *a) {
  struct paging_walk w;
  enum paging_status st = write ? paging_write(v->gm, pc, va, buf, len, mode, &w)
                                : paging_read(v->gm, pc, va, buf, len, mode, &w);
  switch (st) {
    case PAGING_OK:
      if (write && v->has_mmu) /* the host wrote these pages: dirty for EPT, stale for translated code */
        for (uint64_t page = va & ~UINT64_C(0xfff); page < va + len; page += 4096) {
          struct shadow_flush f;
          shadow_host_write(v->shadow, page >> PAGING_PAGE_SHIFT, &f);
          vcpu_queue_flush(v, &f);
        }
      return true;
    case PAGING_FAULT:
      raise2(a, VEC_PF, w.error_code, fault_rip);
      a->second.cr2 = w.va;
      return false;
    case PAGING_HOST_FAULT:
      a->kind = ATT_HOST;
      a->gpa = w.gfn << PAGING_PAGE_SHIFT;
      a->gva = w.va;
      a->access = write ? VCPU_ACCESS_WRITE : VCPU_ACCESS_READ;
      return false;
    case PAGING_NONCANONICAL:
      raise2(a, VEC_GP, 0, fault_rip);
      return false;
    case PAGING_BAD_TABLE:
    case PAGING_BAD_MAPPING:
      a->kind = ATT_INTERNAL;
      snprintf(a->msg, sizeof a->msg, "event delivery %s %#llx: %s (table entry at %#llx)", write ? "writing" : "reading",
               (unsigned long long)va, paging_status_name(st), (unsigned long long)w.bad_pa);
      return false;
  }
  return false;
}

static uint64_t le64(const uint8_t *p) {
  uint64_t x;
  memcpy(&x, p, 8);
  return x;
}
static uint32_t le32(const uint8_t *p) {
  uint32_t x;
  memcpy(&x, p, 4);
  return x;
}

/* One attempt at delivering ev (SDM §6.14). Changes nothing unless it
 * succeeds. */
static void deliver_once(struct vcpu *v, const struct event *ev, struct attempt *a) {
  memset(a, 0, sizeof *a);
  const uint64_t fault_rip = ev->kind == EVENT_SOFT_INT ? ev->insn_rip : ev->rip;
  /* EXT: the event came from outside the instruction stream (§6.13). */
  const uint32_t ext = ev->kind == EVENT_SOFT_INT ? 0 : 1;

  struct paging_ctx pc;
  vcpu_guest_paging(v, &pc);
  pc.ac = false; /* delivery's accesses are never helped by RFLAGS.AC */
  uc_x86_mmr idtr, gdtr, tr;
  uc_reg_read(v->uc, UC_X86_REG_IDTR, &idtr);
  uc_reg_read(v->uc, UC_X86_REG_GDTR, &gdtr);
  uc_reg_read(v->uc, UC_X86_REG_TR, &tr);
  const uint64_t rsp = rd(v, UC_X86_REG_RSP), rflags = rd(v, UC_X86_REG_RFLAGS);
  const uint16_t cs = (uint16_t)rd(v, UC_X86_REG_CS), ss = (uint16_t)rd(v, UC_X86_REG_SS);
  ubk_begin(&v->be);
  const unsigned cpl = ubk_cpl(&v->be);

  /* 1. The gate: 16 bytes at IDT base + 16 * vector. */
  const uint32_t idt_err = (uint32_t)ev->vector * 8 + 2 + ext;
  if ((uint32_t)ev->vector * 16 + 15 > idtr.limit) return raise2(a, VEC_GP, idt_err, fault_rip);
  uint8_t gate[16];
  if (!guest_access(v, &pc, idtr.base + (uint64_t)ev->vector * 16, gate, 16, false, PAGING_SUPERVISOR_IMPLICIT,
                    fault_rip, a))
    return;
  const uint64_t target = (uint64_t)(gate[0] | gate[1] << 8) | (uint64_t)(gate[6] | gate[7] << 8) << 16 |
                          (uint64_t)le32(gate + 8) << 32;
  const uint16_t sel = (uint16_t)(gate[2] | gate[3] << 8);
  const unsigned ist = gate[4] & 7, type = gate[5] & 0xf, gate_dpl = (gate[5] >> 5) & 3, present = gate[5] >> 7;
  if (type != 0xe && type != 0xf) return raise2(a, VEC_GP, idt_err, fault_rip);
  /* INT n, INT3 and INTO may only use gates with DPL >= CPL; EXT is 0. */
  if (ev->kind == EVENT_SOFT_INT && gate_dpl < cpl) return raise2(a, VEC_GP, (uint32_t)ev->vector * 8 + 2, fault_rip);
  if (!present) return raise2(a, VEC_NP, idt_err, fault_rip);

  /* 2. The handler's code segment (GDT only), a present 64-bit code
   * segment with DPL <= CPL. */
  const uint32_t sel_err = (sel & 0xfffcu) + ext;
  if ((sel & 0xfffc) == 0) return raise2(a, VEC_GP, ext, fault_rip);
  if ((sel & 4) || (uint32_t)(sel | 7) > gdtr.limit) return raise2(a, VEC_GP, sel_err, fault_rip);
  uint8_t desc[8];
  if (!guest_access(v, &pc, gdtr.base + (sel & ~7u), desc, 8, false, PAGING_SUPERVISOR_IMPLICIT, fault_rip, a)) return;
  const uint32_t hi = le32(desc + 4);
  const bool s_bit = hi & (1u << 12), code = hi & (1u << 11), conforming = hi & (1u << 10);
  const bool seg_present = hi & (1u << 15), long_mode = hi & (1u << 21), db = hi & (1u << 22);
  const unsigned cs_dpl = (hi >> 13) & 3;
  if (!s_bit || !code || !long_mode || db || cs_dpl > cpl) return raise2(a, VEC_GP, sel_err, fault_rip);
  if (!seg_present) return raise2(a, VEC_NP, sel_err, fault_rip);
  const unsigned new_cpl = conforming ? cpl : cs_dpl;

  /* 3. The stack: IST always; else TSS.RSP[new CPL] on a privilege change. */
  const bool privilege_change = new_cpl < cpl;
  uint64_t new_rsp = rsp;
  if (ist || privilege_change) {
    const uint32_t off = ist ? 36 + 8 * (ist - 1) : 4 + 8 * new_cpl;
    if ((tr.selector & 0xfffc) == 0 || off + 7 > tr.limit)
      return raise2(a, VEC_TS, (tr.selector & 0xfffcu) + ext, fault_rip);
    uint8_t buf[8];
    if (!guest_access(v, &pc, tr.base + off, buf, 8, false, PAGING_SUPERVISOR_IMPLICIT, fault_rip, a)) return;
    new_rsp = le64(buf);
  }
  if (!paging_is_canonical(new_rsp)) return raise2(a, VEC_SS, ext, fault_rip);
  if (!paging_is_canonical(target)) return raise2(a, VEC_GP, ext, fault_rip);
  new_rsp &= ~UINT64_C(15);

  /* 4. The frame. The pushed RFLAGS has RF = 1 for faults, RF = 0 for INT n;
   * the simulator's own single-step TF never shows. */
  uint64_t image = rflags;
  if (v->stepping) image &= ~RFLAGS_TF;
  if (ev->kind == EVENT_FAULT) image |= RFLAGS_RF;
  if (ev->kind == EVENT_SOFT_INT) image &= ~RFLAGS_RF;
  uint64_t frame[6];
  unsigned n = 0;
  if (ev->has_error) frame[n++] = ev->error_code;
  frame[n++] = ev->rip;
  frame[n++] = cs;
  frame[n++] = image;
  frame[n++] = rsp;
  frame[n++] = ss;
  const uint64_t frame_va = new_rsp - 8 * n;
  if (!paging_is_canonical(frame_va)) return raise2(a, VEC_SS, ext, fault_rip);
  if (!guest_access(v, &pc, frame_va, frame, 8 * n, true, new_cpl == 3 ? PAGING_USER : PAGING_SUPERVISOR,
                    fault_rip, a))
    return;

  /* 5. Load the handler's state (the frame is in memory; nothing can fail
   * from here). A privilege change loads a NULL SS with RPL = new CPL. */
  const uint16_t new_cs = (uint16_t)((sel & 0xfffc) | new_cpl);
  uint64_t new_rflags = rflags & ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
  if (type == 0xe) new_rflags &= ~RFLAGS_IF;
  ubk_clear_exception_in_flight(&v->be);
  ubk_clear_irq_shadow(&v->be);
  if (new_cs != cs || new_cpl != cpl) ubk_load_cs(&v->be, new_cs, hi, new_cpl);
  if (privilege_change) ubk_load_ss(&v->be, (uint16_t)new_cpl, (uint32_t)new_cpl << 13);
  uint64_t rsp_out = frame_va;
  uc_context_reg_write(v->be.ctx, UC_X86_REG_RSP, &rsp_out);
  uc_context_reg_write(v->be.ctx, UC_X86_REG_RFLAGS, &new_rflags);
  ubk_commit(&v->be);
  ubk_redirect(&v->be, target);
  a->kind = ATT_OK;
}

static void set_cr2(struct vcpu *v, uint64_t va) {
  v->cr2 = va;
  wr(v, UC_X86_REG_CR2, va);
}

bool deliver_event(struct vcpu *v, const struct event *ev0) {
  struct event ev = *ev0;
  const uint64_t fault_rip = ev0->kind == EVENT_SOFT_INT ? ev0->insn_rip : ev0->rip;
  char history[200];
  size_t used = 0;
  /* #PF writes CR2 before it is delivered (§6.15, interrupt 14). */
  if (ev.vector == VEC_PF && is_exception(&ev)) set_cr2(v, ev.cr2);
  for (;;) {
    char name[32];
    event_name(&ev, name, sizeof name);
    if (used < sizeof history)
      used += (size_t)snprintf(history + used, sizeof history - used, "%s%s", used ? " -> " : "", name);
    struct attempt a;
    deliver_once(v, &ev, &a);
    switch (a.kind) {
      case ATT_OK:
        if (ev.kind == EVENT_NMI) v->nmi_blocked = true;
        v->halted = false;
        if (ev0->injected) vcpu_charge(v, VCPU_COST_INJECTION, v->costs.event_injection_cycles);
        return true;
      case ATT_HOST:
        vcpu_set_exit(v, VCPU_EXIT_EPT_VIOLATION, "guest page %#llx not resident while delivering %s",
                      (unsigned long long)a.gpa, name);
        v->exit->ept.gpa = a.gpa;
        v->exit->ept.gva = a.gva;
        v->exit->ept.access = a.access;
        v->exit->ept.during_delivery = true;
        vcpu_charge(v, VCPU_COST_EXIT_ENTRY, v->costs.vm_exit_cycles + v->costs.vm_entry_cycles);
        vcpu_charge(v, VCPU_COST_EPT, v->costs.ept_violation_cycles);
        /* Events that will not come back by themselves wait for the retry. */
        if (ev0->kind == EVENT_NMI) v->nmi_pending = true;
        if (ev0->kind == EVENT_IRQ) {
          v->irq_vector_held = true;
          v->held_vector = ev0->vector;
        }
        if (ev0->injected && is_exception(ev0)) {
          v->exc_queued = true;
          v->queued_exc = *ev0;
        }
        return false;
      case ATT_INTERNAL:
        vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "%s (delivering %s)", a.msg, name);
        return false;
      case ATT_FAULT:
        break;
    }
    const struct event *second = &a.second;
    if (is_exception(&ev) && ev.vector == VEC_DF) {
      char sname[32];
      event_name(second, sname, sizeof sname);
      v->shut_down = true;
      int w = snprintf(v->triple_msg, sizeof v->triple_msg, "triple fault: %.120s -> %.20s (first event at rip %#llx)",
                       history, sname, (unsigned long long)fault_rip);
      (void)w;
      vcpu_set_exit(v, VCPU_EXIT_TRIPLE_FAULT, "%s", v->triple_msg);
      return false;
    }
    const bool df = is_exception(&ev) && ((contributory(ev.vector) && contributory(second->vector)) ||
                                          (ev.vector == VEC_PF && (contributory(second->vector) ||
                                                                   second->vector == VEC_PF)));
    if (second->vector == VEC_PF) set_cr2(v, second->cr2);
    if (df)
      ev = (struct event){EVENT_FAULT, VEC_DF, true, 0, 0, fault_rip, fault_rip, false};
    else
      ev = *second;
  }
}
