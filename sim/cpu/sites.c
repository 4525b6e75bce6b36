/* sites.c — guest instructions the vCPU takes over, found by disassembling
 * guest code, and the per-site code hooks that emulate them.
 *
 * Unicorn 2.0.1 has no hook for RDMSR, WRMSR, RDTSC, RDRAND, HLT, CR moves
 * or INVLPG, ignores unknown MSRs and lets RDTSC/RDRAND read the host. A code
 * hook on the exact address of each such instruction costs only when that
 * instruction runs, so every site gets one: found by a scan of the guest's
 * text at creation, or when a block of unscanned code is first executed
 * (blocks.c). Instructions apfsim cannot emulate (SYSCALL, string I/O,
 * MWAIT ...) are refused with the address.
 *
 * A hook either emulates the instruction and skips it (completed: counted,
 * RIP moves on), lets it run natively after doing its side (CR2, CR3, INVLPG),
 * raises a fault through deliver.c, or stops the run before the instruction
 * so the run loop can do what a hook cannot (HLT, interrupt windows).
 *
 * Not for: CPUID's answer (msr.c) or event delivery (deliver.c). */
#include <stdlib.h>
#include <string.h>

#include "cpu/vcpu_internal.h"

/* ---------- operand decoding ---------- */

struct gpr_names {
  const char *n[4]; /* 64, 32, 16, 8-bit names */
  int uc;
};

static const struct gpr_names gprs[16] = {
    {{"rax", "eax", "ax", "al"}, UC_X86_REG_RAX},   {{"rcx", "ecx", "cx", "cl"}, UC_X86_REG_RCX},
    {{"rdx", "edx", "dx", "dl"}, UC_X86_REG_RDX},   {{"rbx", "ebx", "bx", "bl"}, UC_X86_REG_RBX},
    {{"rsp", "esp", "sp", "spl"}, UC_X86_REG_RSP},  {{"rbp", "ebp", "bp", "bpl"}, UC_X86_REG_RBP},
    {{"rsi", "esi", "si", "sil"}, UC_X86_REG_RSI},  {{"rdi", "edi", "di", "dil"}, UC_X86_REG_RDI},
    {{"r8", "r8d", "r8w", "r8b"}, UC_X86_REG_R8},   {{"r9", "r9d", "r9w", "r9b"}, UC_X86_REG_R9},
    {{"r10", "r10d", "r10w", "r10b"}, UC_X86_REG_R10}, {{"r11", "r11d", "r11w", "r11b"}, UC_X86_REG_R11},
    {{"r12", "r12d", "r12w", "r12b"}, UC_X86_REG_R12}, {{"r13", "r13d", "r13w", "r13b"}, UC_X86_REG_R13},
    {{"r14", "r14d", "r14w", "r14b"}, UC_X86_REG_R14}, {{"r15", "r15d", "r15w", "r15b"}, UC_X86_REG_R15},
};

/* Unicorn id of the 64-bit register holding a Capstone register, its width
 * in *bytes; -1 for anything that is not a general-purpose register. */
static int uc_gpr(csh cs, unsigned reg, unsigned *bytes) {
  const char *name = cs_reg_name(cs, reg);
  if (!name) return -1;
  for (unsigned i = 0; i < 16; i++)
    for (unsigned w = 0; w < 4; w++)
      if (strcmp(name, gprs[i].n[w]) == 0) {
        if (bytes) *bytes = 8u >> w;
        return gprs[i].uc;
      }
  return -1;
}

#define EA_RIP (-2)

static int uc_seg_base(unsigned reg) {
  if (reg == X86_REG_FS) return UC_X86_REG_FS_BASE;
  if (reg == X86_REG_GS) return UC_X86_REG_GS_BASE;
  return -1; /* other segments have base 0 in 64-bit mode */
}

/* ---------- classification ---------- */

static enum insn_class refuse(const char **why, const char *reason) {
  *why = reason;
  return INSN_REFUSED;
}

enum insn_class sites_classify(struct vcpu *v, const cs_insn *insn, struct site *s, const char **why) {
  memset(s, 0, sizeof *s);
  s->addr = insn->address;
  s->len = (uint8_t)insn->size;
  s->reg = -1;
  s->port = -1;
  const cs_x86 *x = &insn->detail->x86;
  switch (insn->id) {
    case X86_INS_RDMSR: s->kind = SITE_RDMSR; return INSN_SITE;
    case X86_INS_WRMSR: s->kind = SITE_WRMSR; return INSN_SITE;
    case X86_INS_RDTSC: s->kind = SITE_RDTSC; return INSN_SITE;
    case X86_INS_CPUID: s->kind = SITE_CPUID; return INSN_SITE;
    case X86_INS_RDTSCP: s->kind = SITE_RDTSCP; return INSN_SITE;
    case X86_INS_RDRAND:
    case X86_INS_RDSEED: {
      unsigned bytes = 0;
      s->kind = insn->id == X86_INS_RDRAND ? SITE_RDRAND : SITE_RDSEED;
      if (x->op_count != 1 || x->operands[0].type != X86_OP_REG ||
          (s->reg = uc_gpr(v->cs, x->operands[0].reg, &bytes)) < 0 || bytes < 2)
        return refuse(why, "unexpected operand");
      s->bytes = (uint8_t)bytes;
      return INSN_SITE;
    }
    case X86_INS_MOV: {
      if (x->op_count != 2 || x->operands[0].type != X86_OP_REG || x->operands[1].type != X86_OP_REG)
        return INSN_PLAIN;
      unsigned dst = x->operands[0].reg, src = x->operands[1].reg;
      bool to_cr = dst >= X86_REG_CR0 && dst <= X86_REG_CR15;
      bool from_cr = src >= X86_REG_CR0 && src <= X86_REG_CR15;
      if (!to_cr && !from_cr) return INSN_PLAIN;
      unsigned cr = to_cr ? dst : src;
      if (cr == X86_REG_CR8) return refuse(why, "CR8 (TPR) has no APIC behind it in Unicorn");
      if (cr == X86_REG_CR2 && to_cr) {
        s->kind = SITE_MOV_TO_CR2;
        s->reg = uc_gpr(v->cs, src, NULL);
        return s->reg < 0 ? refuse(why, "unexpected operand") : INSN_SITE;
      }
      if (!v->has_mmu) return INSN_PLAIN; /* CR0, CR3, CR4 run natively on the guest's own tables */
      if (cr == X86_REG_CR3)
        s->kind = to_cr ? SITE_MOV_TO_CR3 : SITE_MOV_FROM_CR3;
      else if (cr == X86_REG_CR0)
        s->kind = to_cr ? SITE_MOV_TO_CR0 : SITE_MOV_FROM_CR0;
      else if (cr == X86_REG_CR4 && to_cr)
        s->kind = SITE_MOV_TO_CR4;
      else
        return INSN_PLAIN; /* reading CR4 (Unicorn's equals the guest's) */
      s->reg = uc_gpr(v->cs, to_cr ? src : dst, NULL);
      return s->reg < 0 ? refuse(why, "unexpected operand") : INSN_SITE;
    }
    case X86_INS_INVLPG: {
      if (!v->has_mmu) return INSN_PLAIN;
      if (x->op_count != 1 || x->operands[0].type != X86_OP_MEM) return refuse(why, "unexpected operand");
      const x86_op_mem *m = &x->operands[0].mem;
      s->kind = SITE_INVLPG;
      s->mem.seg = uc_seg_base(m->segment);
      s->mem.base = m->base == X86_REG_INVALID ? -1 : m->base == X86_REG_RIP ? EA_RIP : uc_gpr(v->cs, m->base, NULL);
      s->mem.index = m->index == X86_REG_INVALID ? -1 : uc_gpr(v->cs, m->index, NULL);
      s->mem.scale = m->scale;
      s->mem.disp = m->disp;
      if ((m->base != X86_REG_INVALID && s->mem.base == -1) || (m->index != X86_REG_INVALID && s->mem.index < 0) ||
          x->addr_size != 8)
        return refuse(why, "unexpected address form");
      return INSN_SITE;
    }
    case X86_INS_IRETQ:
    case X86_INS_IRETD:
    case X86_INS_IRET:
      s->kind = SITE_IRETQ;
      return INSN_SITE;
    case X86_INS_HLT: s->kind = SITE_HLT; return INSN_SITE;
    case X86_INS_STI: s->kind = SITE_STI; return INSN_SITE;
    case X86_INS_POPF:
    case X86_INS_POPFQ:
      s->kind = SITE_POPF;
      return INSN_SITE;
    case X86_INS_IN:
    case X86_INS_OUT: {
      bool in = insn->id == X86_INS_IN;
      const cs_x86_op *port = &x->operands[in ? 1 : 0], *data = &x->operands[in ? 0 : 1];
      unsigned bytes = 0;
      if (x->op_count != 2 || data->type != X86_OP_REG || uc_gpr(v->cs, data->reg, &bytes) != UC_X86_REG_RAX)
        return refuse(why, "unexpected operand");
      s->kind = in ? SITE_IN : SITE_OUT;
      s->bytes = (uint8_t)bytes;
      s->port = port->type == X86_OP_IMM ? (int)(port->imm & 0xff) : -1;
      return INSN_SITE;
    }
    case X86_INS_SYSCALL:
    case X86_INS_SYSRET:
    case X86_INS_SYSENTER:
    case X86_INS_SYSEXIT:
      return refuse(why, "Unicorn 2.0.1 does not change privilege on fast system calls; use int 0x80");
    case X86_INS_INSB: case X86_INS_INSW: case X86_INS_INSD:
    case X86_INS_OUTSB: case X86_INS_OUTSW: case X86_INS_OUTSD:
      return refuse(why, "string port I/O is not emulated");
    case X86_INS_MONITOR:
    case X86_INS_MWAIT:
      return refuse(why, "MONITOR/MWAIT would halt outside the simulator's control");
    case X86_INS_RDPMC:
      return refuse(why, "performance counters are not simulated");
    case X86_INS_INVPCID:
      return refuse(why, "PCIDs are not simulated");
    default:
      return INSN_PLAIN;
  }
}

/* ---------- the site table ---------- */

static size_t site_hash(uint64_t addr) { return (size_t)((addr * UINT64_C(0x9e3779b97f4a7c15)) >> 54) & (SITE_BUCKETS - 1); }

struct site *sites_find(struct vcpu *v, uint64_t addr) {
  for (struct site *s = v->sites.bucket[site_hash(addr)]; s; s = s->next)
    if (s->addr == addr) return s;
  return NULL;
}

static struct site *site_new(struct vcpu *v, const struct site *proto) {
  struct site *s = malloc(sizeof *s);
  if (!s) return NULL;
  *s = *proto;
  s->v = v;
  s->hooked = false;
  size_t h = site_hash(s->addr);
  s->next = v->sites.bucket[h];
  v->sites.bucket[h] = s;
  v->sites.n++;
  v->sites.counts[s->kind]++;
  if (v->n_pending == v->cap_pending) {
    size_t cap = v->cap_pending ? 2 * v->cap_pending : 64;
    struct site **p = realloc(v->pending_sites, cap * sizeof *p);
    if (!p) return NULL;
    v->pending_sites = p;
    v->cap_pending = cap;
  }
  v->pending_sites[v->n_pending++] = s;
  return s;
}

struct site *sites_note(struct vcpu *v, const struct site *proto) {
  struct site *s = sites_find(v, proto->addr);
  if (!s) s = site_new(v, proto);
  else if (s->kind == SITE_CR3_RESTORE && proto->kind != SITE_CR3_RESTORE) {
    /* the restore point is itself a site: one hook does both (the handler
     * switches on kind at run time, so no retranslation is needed) */
    struct site keep = *s;
    *s = *proto;
    s->restore_cr3 = true;
    s->hook = keep.hook;
    s->hooked = keep.hooked;
    s->v = v;
    s->next = keep.next;
    v->sites.counts[SITE_CR3_RESTORE]--;
    v->sites.counts[s->kind]++;
  }
  if (!s) return NULL;
  if (proto->kind == SITE_MOV_TO_CR3) {
    struct site post;
    memset(&post, 0, sizeof post);
    post.addr = proto->addr + proto->len;
    post.kind = SITE_CR3_RESTORE;
    post.reg = -1;
    post.port = -1;
    struct site *p = sites_find(v, post.addr);
    if (p)
      p->restore_cr3 = true;
    else if ((p = site_new(v, &post)) != NULL)
      p->restore_cr3 = true;
    else
      return NULL;
  }
  return s;
}

static void on_site(uc_engine *uc, uint64_t addr, uint32_t size, void *ud);

size_t sites_hook_pending(struct vcpu *v, uint64_t *lo, uint64_t *hi) {
  size_t n = 0;
  *lo = UINT64_MAX;
  *hi = 0;
  for (size_t i = 0; i < v->n_pending; i++) {
    struct site *s = v->pending_sites[i];
    if (s->hooked) continue;
    if (uc_hook_add(v->uc, &s->hook, UC_HOOK_CODE, (void *)on_site, s, s->addr, s->addr) != UC_ERR_OK) continue;
    s->hooked = true;
    if (s->addr < *lo) *lo = s->addr;
    if (s->addr + 16 > *hi) *hi = s->addr + 16;
    n++;
  }
  v->n_pending = 0;
  return n;
}

bool sites_scan(struct vcpu *v, uint64_t start, uint64_t end, struct diag *err) {
  if (start > end || end > v->mem_bytes)
    return diag_set(err, "guest text range [%#llx, %#llx) is not inside guest RAM (%#llx bytes)",
                    (unsigned long long)start, (unsigned long long)end, (unsigned long long)v->mem_bytes);
  const uint8_t *code = v->mem + start;
  size_t left = end - start;
  uint64_t a = start;
  while (left) {
    uint64_t at = a;
    if (!cs_disasm_iter(v->cs, &code, &left, &a, v->insn)) {
      /* Padding or data: skip a byte. Code that jumps here is decoded again
       * when it first runs (blocks.c), so nothing is missed. */
      code++;
      left--;
      a++;
      continue;
    }
    struct site proto;
    const char *why = NULL;
    switch (sites_classify(v, v->insn, &proto, &why)) {
      case INSN_PLAIN:
        break;
      case INSN_SITE:
        if (!sites_note(v, &proto)) return diag_set(err, "out of memory recording instruction sites");
        break;
      case INSN_REFUSED:
        return diag_set(err, "guest text at %#llx holds `%s %s`, which apfsim cannot emulate: %s",
                        (unsigned long long)at, v->insn->mnemonic, v->insn->op_str, why);
    }
  }
  return true;
}

void sites_free(struct vcpu *v) {
  for (size_t i = 0; i < SITE_BUCKETS; i++) {
    struct site *s = v->sites.bucket[i];
    while (s) {
      struct site *next = s->next;
      free(s);
      s = next;
    }
    v->sites.bucket[i] = NULL;
  }
  free(v->pending_sites);
  v->pending_sites = NULL;
  v->n_pending = v->cap_pending = 0;
}

void sites_drop_range(struct vcpu *v, uint64_t start, uint64_t end) {
  for (size_t i = 0; i < SITE_BUCKETS; i++) {
    struct site **pp = &v->sites.bucket[i];
    while (*pp) {
      struct site *s = *pp;
      if (s->addr >= start && s->addr < end) {
        *pp = s->next;
        if (s->hooked) ubk_hook_del(&v->be, s->hook);
        for (size_t k = 0; k < v->n_pending; k++)
          if (v->pending_sites[k] == s) v->pending_sites[k--] = v->pending_sites[--v->n_pending];
        v->sites.counts[s->kind]--;
        v->sites.n--;
        free(s);
      } else {
        pp = &s->next;
      }
    }
  }
}

/* ---------- emulation ---------- */

static unsigned cpl_now(struct vcpu *v) { return (unsigned)(rd(v, UC_X86_REG_CS) & 3); }

/* The emulated instruction completed: count it and go on after it (or stop
 * there when a callback asked for an exit). */
static void complete(struct vcpu *v, const struct site *s, enum vcpu_cb cb) {
  v->retired += 1;
  if (cb == VCPU_CB_OK) {
    ubk_redirect(&v->be, s->addr + s->len);
    return;
  }
  v->stop = STOP_COMPLETED;
  v->resume_rip = s->addr + s->len;
  v->completed_exit = cb == VCPU_CB_EXIT ? VCPU_EXIT_REQUEST : VCPU_EXIT_SHUTDOWN;
  uc_emu_stop(v->uc);
}

static void fault(struct vcpu *v, const struct site *s, uint8_t vector, uint32_t error_code) {
  struct event ev = {EVENT_FAULT, vector, vector_has_error_code(vector), error_code, 0, s->addr, s->addr, false};
  if (!deliver_event(v, &ev)) {
    v->stop = STOP_EXIT;
    uc_emu_stop(v->uc);
  }
}

static void stop_before(struct vcpu *v, struct site *s, enum stop_reason why) {
  v->stop = why;
  v->stop_site = s;
  uc_emu_stop(v->uc);
}

static enum vcpu_cb cb_of_msr(enum msr_status st) {
  return st == MSR_DONE_EXIT ? VCPU_CB_EXIT : st == MSR_DONE_SHUTDOWN ? VCPU_CB_SHUTDOWN : VCPU_CB_OK;
}

static void write_gpr(struct vcpu *v, int reg, unsigned bytes, uint64_t value) {
  if (bytes == 8 || bytes == 4) {
    wr(v, reg, bytes == 4 ? (uint32_t)value : value); /* 32-bit writes zero-extend */
  } else {
    uint64_t mask = bytes == 2 ? 0xffff : 0xff;
    wr(v, reg, (rd(v, reg) & ~mask) | (value & mask));
  }
}

static void do_rdmsr_wrmsr(struct vcpu *v, struct site *s) {
  vcpu_abort_at(v, s->addr);
  if (cpl_now(v) != 0) return fault(v, s, VEC_GP, 0);
  uint32_t index = (uint32_t)rd(v, UC_X86_REG_RCX);
  enum msr_status st;
  if (s->kind == SITE_RDMSR) {
    uint64_t value = 0;
    st = msr_read(v, index, &value);
    if (st == MSR_RAISE_GP) return fault(v, s, VEC_GP, 0);
    wr(v, UC_X86_REG_RAX, (uint32_t)value);
    wr(v, UC_X86_REG_RDX, value >> 32);
  } else {
    uint64_t value = (rd(v, UC_X86_REG_RDX) << 32) | (uint32_t)rd(v, UC_X86_REG_RAX);
    st = msr_write(v, index, value);
    if (st == MSR_RAISE_GP) return fault(v, s, VEC_GP, 0);
  }
  if (st == MSR_DONE_FLUSH) { /* leave Unicorn so the run loop flushes the TLB */
    v->retired += 1;
    v->stop = STOP_COMPLETED;
    v->resume_rip = s->addr + s->len;
    v->completed_exit = VCPU_EXIT_QUANTUM;
    uc_emu_stop(v->uc);
    return;
  }
  complete(v, s, cb_of_msr(st));
}

static void do_rdtsc(struct vcpu *v, struct site *s) {
  vcpu_abort_at(v, s->addr);
  if ((rd(v, UC_X86_REG_CR4) & CR4_TSD) && cpl_now(v) != 0) return fault(v, s, VEC_GP, 0);
  uint64_t tsc = v->pf.tsc ? v->pf.tsc(v->pf.ctx, v) : vcpu_cycles(v);
  wr(v, UC_X86_REG_RAX, (uint32_t)tsc);
  wr(v, UC_X86_REG_RDX, tsc >> 32);
  if (s->kind == SITE_RDTSCP) wr(v, UC_X86_REG_RCX, (uint32_t)v->tsc_aux);
  complete(v, s, VCPU_CB_OK);
}

/* CPUID is emulated at its site rather than in Unicorn's CPUID hook, which
 * runs in the middle of a block: its exit cost must be able to end a
 * time-bounded run right after it. */
static void do_cpuid(struct vcpu *v, struct site *s) {
  vcpu_abort_at(v, s->addr);
  uint32_t r[4];
  cpuid_answer(v, (uint32_t)rd(v, UC_X86_REG_RAX), (uint32_t)rd(v, UC_X86_REG_RCX), r);
  wr(v, UC_X86_REG_RAX, r[0]);
  wr(v, UC_X86_REG_RBX, r[1]);
  wr(v, UC_X86_REG_RCX, r[2]);
  wr(v, UC_X86_REG_RDX, r[3]);
  vcpu_charge(v, VCPU_COST_EXIT_ENTRY, v->costs.vm_exit_cycles + v->costs.vm_entry_cycles);
  vcpu_charge(v, VCPU_COST_CPUID, v->costs.cpuid_cycles);
  complete(v, s, VCPU_CB_OK);
}

static void do_rdrand(struct vcpu *v, struct site *s) {
  vcpu_abort_at(v, s->addr);
  uint64_t value = 0;
  bool ok = v->pf.random && v->pf.random(v->pf.ctx, v, s->kind == SITE_RDSEED, &value);
  write_gpr(v, s->reg, s->bytes, ok ? value : 0);
  uint64_t fl = rd(v, UC_X86_REG_RFLAGS) & ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
  wr(v, UC_X86_REG_RFLAGS, fl | (ok ? RFLAGS_CF : 0));
  complete(v, s, VCPU_CB_OK);
}

static void do_port_io(struct vcpu *v, struct site *s) {
  vcpu_abort_at(v, s->addr);
  unsigned iopl = (unsigned)((rd(v, UC_X86_REG_RFLAGS) & RFLAGS_IOPL) >> 12);
  if (cpl_now(v) > iopl) return fault(v, s, VEC_GP, 0); /* the TSS I/O bitmap is not consulted */
  uint16_t port = s->port >= 0 ? (uint16_t)s->port : (uint16_t)rd(v, UC_X86_REG_RDX);
  uint32_t mask = s->bytes == 4 ? 0xffffffffu : s->bytes == 2 ? 0xffffu : 0xffu;
  enum vcpu_cb cb = VCPU_CB_OK;
  if (s->kind == SITE_IN || !v->uncosted_out_port || port != v->uncosted_out_port) {
    vcpu_charge(v, VCPU_COST_EXIT_ENTRY, v->costs.vm_exit_cycles + v->costs.vm_entry_cycles);
    vcpu_charge(v, VCPU_COST_IO, v->costs.io_access_cycles);
  }
  if (s->kind == SITE_IN) {
    uint32_t value = 0xffffffffu;
    if (v->pf.port_in) cb = v->pf.port_in(v->pf.ctx, v, port, s->bytes, &value);
    write_gpr(v, UC_X86_REG_RAX, s->bytes, value & mask);
  } else {
    uint32_t value = (uint32_t)rd(v, UC_X86_REG_RAX) & mask;
    if (v->pf.port_out) cb = v->pf.port_out(v->pf.ctx, v, port, s->bytes, value);
  }
  complete(v, s, cb);
}

static uint64_t effective_address(struct vcpu *v, const struct site *s) {
  uint64_t ea = (uint64_t)s->mem.disp;
  if (s->mem.base == EA_RIP)
    ea += s->addr + s->len;
  else if (s->mem.base >= 0)
    ea += rd(v, s->mem.base);
  if (s->mem.index >= 0) ea += rd(v, s->mem.index) * (uint64_t)s->mem.scale;
  if (s->mem.seg >= 0) ea += rd(v, s->mem.seg);
  return ea;
}

/* MOV to CR0/CR4 under shadowing: the guest's view changes; Unicorn keeps
 * CR0.WP (shadow.h's contract) and takes the guest's CR4. A change of WP,
 * SMEP or SMAP empties the shadow, and the TLB must follow (between runs). */
static void do_mov_to_cr0_cr4(struct vcpu *v, struct site *s) {
  if (cpl_now(v) != 0) return; /* native #GP */
  vcpu_abort_at(v, s->addr);
  const uint64_t value = rd(v, s->reg);
  const bool cr0 = s->kind == SITE_MOV_TO_CR0;
  /* long mode needs PG, PE and PAE; bits 63:32 are reserved */
  if ((value >> 32) || (cr0 && (value & 0x80000001u) != 0x80000001u) || (!cr0 && !(value & 0x20)))
    return fault(v, s, VEC_GP, 0);
  const uint64_t old = cr0 ? v->guest_cr0 : v->guest_cr4;
  const uint64_t watched = cr0 ? CR0_WP : (CR4_SMEP | CR4_SMAP);
  if (cr0) {
    v->guest_cr0 = value;
    wr(v, UC_X86_REG_CR0, value | CR0_WP);
  } else {
    v->guest_cr4 = value;
    wr(v, UC_X86_REG_CR4, value);
  }
  if ((old ^ value) & (watched | (cr0 ? 0 : UINT64_C(0x80) /* PGE */))) {
    shadow_reset(v->shadow, v->id);
    v->flush_all = true;
  }
  v->retired += 1;
  /* leave Unicorn so the new controls and the flush take effect */
  v->stop = STOP_COMPLETED;
  v->resume_rip = s->addr + s->len;
  v->completed_exit = VCPU_EXIT_QUANTUM;
  uc_emu_stop(v->uc);
}

static void on_site(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  (void)uc;
  (void)size;
  struct site *s = ud;
  struct vcpu *v = s->v;
  if (addr != s->addr) return;
  if (s->restore_cr3 && v->cr3_reg >= 0) {
    /* the MOV to CR3 before this instruction ran with the shadow root */
    wr(v, v->cr3_reg, v->guest_cr3);
    v->cr3_reg = -1;
  }
  if (v->n_watches && watch_arrive(v, addr)) return; /* stopped before it: nothing else happens */
  if (v->window_pass == addr) {
    v->window_pass = UINT64_MAX; /* the run loop steps this one natively */
    return;
  }
  switch ((enum site_kind)s->kind) {
    case SITE_RDMSR:
    case SITE_WRMSR:
      return do_rdmsr_wrmsr(v, s);
    case SITE_RDTSC:
    case SITE_RDTSCP:
      return do_rdtsc(v, s);
    case SITE_RDRAND:
    case SITE_RDSEED:
      return do_rdrand(v, s);
    case SITE_CPUID:
      return do_cpuid(v, s);
    case SITE_IN:
    case SITE_OUT:
      return do_port_io(v, s);
    case SITE_MOV_TO_CR2:
      /* Runs natively (writing Unicorn's CR2); the guest's copy follows. A
       * CPL>0 attempt faults natively before changing anything. */
      if (cpl_now(v) == 0) v->cr2 = rd(v, s->reg);
      return;
    case SITE_MOV_TO_CR3: {
      if (cpl_now(v) != 0) return; /* native #GP */
      uint64_t value = rd(v, s->reg);
      if (!paging_cr3_valid(value, v->gm->maxphyaddr)) {
        vcpu_abort_at(v, s->addr);
        return fault(v, s, VEC_GP, 0);
      }
      v->guest_cr3 = value;
      shadow_cr3_load(v->shadow, v->id, value);
      /* Unicorn's own MOV to CR3 flushes its TLB: let it load the shadow
       * root, and give the guest its register back at the next instruction. */
      wr(v, s->reg, shadow_root(v->shadow, v->id));
      v->cr3_reg = s->reg;
      return;
    }
    case SITE_MOV_TO_CR0:
    case SITE_MOV_TO_CR4:
      return do_mov_to_cr0_cr4(v, s);
    case SITE_MOV_FROM_CR0:
      if (cpl_now(v) != 0) return;
      vcpu_abort_at(v, s->addr);
      wr(v, s->reg, v->guest_cr0);
      return complete(v, s, VCPU_CB_OK);
    case SITE_MOV_FROM_CR3:
      if (cpl_now(v) != 0) return;
      vcpu_abort_at(v, s->addr);
      wr(v, s->reg, v->guest_cr3);
      return complete(v, s, VCPU_CB_OK);
    case SITE_INVLPG:
      if (cpl_now(v) != 0) return;
      shadow_invlpg(v->shadow, v->id, effective_address(v, s));
      return; /* then Unicorn drops its own TLB entry */
    case SITE_IRETQ:
      if (v->nmi_blocked) {
        if (v->nmi_pending) {
          vcpu_abort_at(v, s->addr);
          return stop_before(v, s, STOP_WINDOW);
        }
        /* Any IRET unblocks NMIs once it completes; if it faults instead,
         * the exception hook puts the blocking back. */
        v->nmi_blocked = false;
        v->iret_pending = true;
        v->iret_site = addr;
        v->iret_retired = vcpu_count_before(v, addr);
      }
      if (v->want_window) {
        vcpu_abort_at(v, s->addr);
        return stop_before(v, s, STOP_WINDOW);
      }
      return;
    case SITE_STI:
      v->sti_retired = vcpu_count_before(v, addr) + 1;
      /* fall through */
    case SITE_POPF:
      if (v->want_window) {
        vcpu_abort_at(v, s->addr);
        return stop_before(v, s, STOP_WINDOW);
      }
      return;
    case SITE_HLT:
      if (cpl_now(v) != 0) return; /* native #GP */
      vcpu_abort_at(v, s->addr);
      return stop_before(v, s, STOP_HLT);
    case SITE_CR3_RESTORE:
    case SITE_KINDS:
      return;
  }
}
