/* vcpu.c — creation, the run loop, exact instruction counting, and the
 * Unicorn hooks that see every block and every exception.
 *
 * Counting. A block hook adds each block's instruction count (blocks.c)
 * before the block runs and stops the run, before the block, when the block
 * would pass the stop count. A fault or a takeover in the middle of a block
 * takes back the instructions that did not retire (vcpu_abort_at). The
 * instructions left before the stop count, fewer than a block, run under
 * the simulator's single-step mode (TF, see unicorn_backend.c): one block per
 * instruction and no retranslation. The count therefore equals what
 * single-stepping the guest would give, and a stop lands exactly.
 *
 * The run loop works at instruction boundaries: it delivers injected
 * exceptions, NMIs and interrupts when the guest can take them, asks for
 * single steps through the STI/MOV SS shadow and through the IRET, STI or
 * POPF that opens a window, emulates HLT, and turns hook stops into exits.
 *
 * Not for: delivery itself (deliver.c), instruction emulation (sites.c,
 * msr.c), Unicorn internals (unicorn_backend.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vcpu_internal.h"

uint64_t rd(struct vcpu *v, int reg) {
  uint64_t x = 0;
  uc_reg_read(v->uc, reg, &x);
  return x;
}

void wr(struct vcpu *v, int reg, uint64_t value) { uc_reg_write(v->uc, reg, &value); }

const char *vcpu_exit_reason_name(enum vcpu_exit_reason r) {
  switch (r) {
    case VCPU_EXIT_QUANTUM: return "quantum";
    case VCPU_EXIT_HLT: return "hlt";
    case VCPU_EXIT_EPT_VIOLATION: return "ept_violation";
    case VCPU_EXIT_REQUEST: return "request";
    case VCPU_EXIT_TRIPLE_FAULT: return "triple_fault";
    case VCPU_EXIT_SHUTDOWN: return "shutdown";
    case VCPU_EXIT_INTERNAL_ERROR: return "internal_error";
    case VCPU_EXIT_WATCH: return "watch";
  }
  return "?";
}

bool vcpu_set_exit(struct vcpu *v, enum vcpu_exit_reason r, const char *fmt, ...) {
  struct vcpu_exit *e = v->exit ? v->exit : &v->idle_exit;
  e->reason = r;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return false;
}

/* Under vcpu_run_cycles, the instructions that still fit before the time
 * bound. v->retired may include the rest of the current block: it cancels
 * out (those instructions are in both terms). */
static uint64_t cycle_target(const struct vcpu *v) {
  const uint64_t now = v->retired * v->costs.cpi_milli + v->extra_mcycles;
  return v->retired + (v->limit_mcycles > now ? (v->limit_mcycles - now) / v->costs.cpi_milli : 0);
}

void vcpu_charge(struct vcpu *v, enum vcpu_cost_kind kind, uint64_t cycles) {
  if (!cycles) return;
  v->extra_mcycles += cycles * 1000;
  if (v->cycle_bound) {
    const uint64_t t = cycle_target(v);
    if (t < v->target) v->target = t;
    if (t < v->stop_at) v->stop_at = t; /* the block hook sees it at once */
  }
  if (v->pf.account) v->pf.account(v->pf.ctx, v, kind, cycles);
}

bool vcpu_abort_at(struct vcpu *v, uint64_t addr) {
  struct block_info *b = v->cur;
  v->cur = NULL;
  if (!b) return true;
  int i = blocks_index(b, addr);
  if (i < 0) return false;
  v->retired -= b->icount - (uint64_t)i;
  return true;
}

uint64_t vcpu_count_before(const struct vcpu *v, uint64_t addr) {
  if (v->cur) {
    int i = blocks_index(v->cur, addr);
    if (i >= 0) return v->retired - (v->cur->icount - (uint64_t)i);
  }
  return v->retired;
}

void vcpu_guest_paging(struct vcpu *v, struct paging_ctx *p) {
  uint64_t cr0 = v->has_mmu ? v->guest_cr0 : rd(v, UC_X86_REG_CR0);
  uint64_t cr4 = v->has_mmu ? v->guest_cr4 : rd(v, UC_X86_REG_CR4);
  memset(p, 0, sizeof *p);
  p->cr3 = v->has_mmu ? v->guest_cr3 : rd(v, UC_X86_REG_CR3);
  p->nxe = (v->efer & EFER_NXE) != 0;
  p->wp = (cr0 & CR0_WP) != 0;
  p->smep = (cr4 & CR4_SMEP) != 0;
  p->smap = (cr4 & CR4_SMAP) != 0;
  p->ac = (rd(v, UC_X86_REG_RFLAGS) & RFLAGS_AC) != 0;
  p->gbpages = v->gbpages;
}

/* ---------- shadow TLB flushes ---------- */

/* Unicorn's TLB can only be flushed by the guest CPU itself (MOV to CR3,
 * INVLPG): a two-instruction stub on a simulator page pinned in every
 * shadow runs at CPL0 on a borrowed context, uncounted. */
enum { STUB_INVLPG = 0x0, STUB_RELOAD_CR3 = 0x10 };

static bool run_stub(struct vcpu *v, unsigned entry, uint64_t rax) {
  uc_context_save(v->uc, v->stub_ctx);
  ubk_begin(&v->be);
  ubk_load_cs(&v->be, VCPU_SEL_KERNEL_CS, 0x00af9b00u, 0);
  ubk_load_ss(&v->be, 0, 0);
  ubk_commit(&v->be);
  wr(v, UC_X86_REG_RAX, rax);
  wr(v, UC_X86_REG_RFLAGS, 0x2);
  v->in_stub = true;
  v->stub_failed = false;
  uc_err e = uc_emu_start(v->uc, VCPU_STUB_VA + entry, 0, 0, 0);
  v->in_stub = false;
  const bool ok = e == UC_ERR_OK && !v->stub_failed && rd(v, UC_X86_REG_RIP) == VCPU_STUB_VA + entry + 4;
  uc_context_restore(v->uc, v->stub_ctx);
  return ok;
}

bool vcpu_flush_pending(const struct vcpu *v) { return v->flush_all || v->n_flush_pages || v->n_code_pages; }

static bool do_pending_flushes(struct vcpu *v) {
  for (unsigned i = 0; i < v->n_code_pages; i++) vcpu_code_changed(v, v->code_pages[i], 4096);
  v->n_code_pages = 0;
  bool ok = true;
  if (v->flush_all)
    ok = run_stub(v, STUB_RELOAD_CR3, shadow_root(v->shadow, v->id));
  else
    for (unsigned i = 0; i < v->n_flush_pages && ok; i++) ok = run_stub(v, STUB_INVLPG, v->flush_pages[i]);
  v->flush_all = false;
  v->n_flush_pages = 0;
  if (!ok) vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "the TLB-flush stub at %#llx did not run (was vcpu_shadow_setup called?)",
                         (unsigned long long)VCPU_STUB_VA);
  return ok;
}

static void queue_one(struct vcpu *v, uint64_t va, bool tlb, bool full, bool code) {
  if (full) v->flush_all = true;
  if (tlb && !v->flush_all) {
    if (v->n_flush_pages < 16)
      v->flush_pages[v->n_flush_pages++] = va & ~UINT64_C(0xfff);
    else
      v->flush_all = true;
  }
  if (code) {
    const uint64_t page = va & ~UINT64_C(0xfff);
    for (unsigned i = 0; i < v->n_code_pages; i++)
      if (v->code_pages[i] == page) return;
    if (v->n_code_pages == v->cap_code_pages) {
      unsigned cap = v->cap_code_pages ? 2 * v->cap_code_pages : 16;
      uint64_t *p = realloc(v->code_pages, cap * sizeof *p);
      if (!p) return; /* stays stale only if out of memory */
      v->code_pages = p;
      v->cap_code_pages = cap;
    }
    v->code_pages[v->n_code_pages++] = page;
  }
}

void vcpu_apply_shadow_flush(struct vcpu *const *peers, unsigned n_peers, const struct shadow_flush *f) {
  for (unsigned i = 0; i < n_peers && i < SHADOW_MAX_VCPUS; i++) {
    const uint64_t bit = UINT64_C(1) << i;
    if (!peers[i] || !((f->tlb_vcpus | f->full_tlb_vcpus | f->code_vcpus) & bit)) continue;
    queue_one(peers[i], f->va, f->tlb_vcpus & bit, f->full_tlb_vcpus & bit, f->code_vcpus & bit);
  }
}

void vcpu_queue_flush(struct vcpu *v, const struct shadow_flush *f) {
  if (!shadow_flush_needed(f)) return;
  if (v->peers) {
    vcpu_apply_shadow_flush(v->peers, v->n_peers, f);
  } else {
    const uint64_t bit = UINT64_C(1) << v->id;
    queue_one(v, f->va, f->tlb_vcpus & bit, f->full_tlb_vcpus & bit, f->code_vcpus & bit);
  }
}

bool vcpu_shadow_setup(struct shadow_mmu *m, struct diag *err) {
  return shadow_pin(m, VCPU_STUB_VA, false, true, err);
}

/* ---------- hooks ---------- */

static void on_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  struct vcpu *v = ud;
  if (__builtin_expect(v->in_stub, 0)) return;
  struct block_info *b = blocks_find(&v->blocks, addr, size);
  if (__builtin_expect(b != NULL && b->head != blocks_head(v->mem + addr, size), 0)) {
    /* Guest code rewritten in place (Unicorn retranslated it by itself):
     * forget what was decoded there, and its sites, before it runs. */
    v->stop = STOP_RELEARN;
    v->resume_rip = addr;
    v->relearn_size = size;
    uc_emu_stop(uc);
    return;
  }
  if (__builtin_expect(b == NULL, 0)) {
    b = blocks_learn(v, addr, size);
    if (!b) {
      v->stop = STOP_EXIT;
      uc_emu_stop(uc);
      return;
    }
    if (v->n_pending) { /* sites in code nobody scanned: hook them first */
      v->stop = STOP_LEARN;
      v->resume_rip = addr;
      uc_emu_stop(uc);
      return;
    }
  }
  uint64_t n = b->icount;
  if (__builtin_expect(b->flags & BI_REP_ONLY, 0)) {
    /* Unicorn re-enters a REP instruction once more after its last
     * iteration, with the count at 0: not an instruction. */
    const struct block_info *prev = v->cur;
    if (prev && prev->addr + prev->off[prev->icount - 1] == addr) {
      uint64_t count = rd(v, UC_X86_REG_RCX);
      if ((b->flags & BI_ADDR32 ? (uint32_t)count : count) == 0) n = 0;
    }
  }
  if (__builtin_expect(v->retired + n > v->stop_at, 0)) {
    v->stop = STOP_BUDGET;
    v->resume_rip = addr; /* see STOP_BUDGET in vcpu_run */
    uc_emu_stop(uc);
    return;
  }
  v->retired += n;
  v->cur = b;
}

static void stop_with_exit(struct vcpu *v) {
  v->stop = STOP_EXIT;
  uc_emu_stop(v->uc);
}

static void internal(struct vcpu *v, const char *what, uint64_t rip) {
  vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "%s at rip %#llx", what, (unsigned long long)rip);
  stop_with_exit(v);
}

/* The guest's own PUSHFQ pushed the simulator's TF while single-stepping. */
static void undo_pushf_tf(struct vcpu *v) {
  uint64_t rsp = rd(v, UC_X86_REG_RSP), image;
  if (rsp + 8 > v->mem_bytes) return;
  memcpy(&image, v->mem + rsp, 8);
  image &= ~RFLAGS_TF;
  memcpy(v->mem + rsp, &image, 8);
}

static void on_page_fault(struct vcpu *v, uint64_t rip, uint32_t hw_error) {
  const uint64_t va = rd(v, UC_X86_REG_CR2);
  wr(v, UC_X86_REG_CR2, v->cr2); /* Unicorn's write is not the guest's (yet) */
  /* An instruction fetch faults before its block runs (nothing to take
   * back); a data access faults inside the current block. With shadowing,
   * Unicorn runs with EFER.NXE and reports fetches (I/D); without, a fault
   * inside the instruction's own bytes that is not a write is its fetch. */
  const bool fetch = (hw_error & PF_EC_I) || (!v->has_mmu && !(hw_error & PF_EC_W) && va >= rip && va - rip < 16);
  if (fetch)
    v->cur = NULL;
  else if (!vcpu_abort_at(v, rip))
    return internal(v, "#PF outside the current block", rip);
  uint32_t error_code = hw_error;
  if (v->has_mmu) {
    const unsigned cpl = (unsigned)(rd(v, UC_X86_REG_CS) & 3);
    struct paging_ctx pc;
    vcpu_guest_paging(v, &pc);
    struct shadow_fault_info info;
    switch (shadow_fault(v->shadow, v->id, &pc, va, paging_access_from_error_code(hw_error, cpl), &info)) {
      case SHADOW_FILLED: {
        vcpu_queue_flush(v, &info.flush);
        if (vcpu_flush_pending(v)) { /* this vCPU's own TLB: only between runs */
          v->stop = STOP_FLUSH;
          v->resume_rip = rip;
          uc_emu_stop(v->uc);
        }
        return; /* Unicorn re-runs the instruction */
      }
      case SHADOW_GUEST_FAULT:
        vcpu_queue_flush(v, &info.flush);
        error_code = info.error_code;
        break;
      case SHADOW_HOST_FAULT:
        vcpu_set_exit(v, VCPU_EXIT_EPT_VIOLATION, "guest page %#llx not resident%s",
                      (unsigned long long)(info.gfn << PAGING_PAGE_SHIFT), info.in_walk ? " (a page table)" : "");
        v->exit->ept.gpa = info.gfn << PAGING_PAGE_SHIFT;
        v->exit->ept.gva = va;
        v->exit->ept.access = fetch ? VCPU_ACCESS_FETCH : (hw_error & PF_EC_W) ? VCPU_ACCESS_WRITE : VCPU_ACCESS_READ;
        v->exit->ept.during_delivery = false;
        vcpu_charge(v, VCPU_COST_EXIT_ENTRY, v->costs.vm_exit_cycles + v->costs.vm_entry_cycles);
        vcpu_charge(v, VCPU_COST_EPT, v->costs.ept_violation_cycles);
        return stop_with_exit(v); /* RIP stays on the instruction */
      case SHADOW_BAD_MAPPING: {
        char why[200];
        shadow_describe(&info, why, sizeof why);
        vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "%s", why);
        return stop_with_exit(v);
      }
    }
  }
  struct event ev = {EVENT_FAULT, VEC_PF, true, error_code, va, rip, rip, false};
  if (!deliver_event(v, &ev)) stop_with_exit(v);
}

static void on_intr(uc_engine *uc, uint32_t intno, void *ud) {
  (void)uc;
  struct vcpu *v = ud;
  if (v->in_stub) {
    v->stub_failed = true;
    uc_emu_stop(v->uc);
    return;
  }
  const uint64_t rip = rd(v, UC_X86_REG_RIP);
  ubk_begin(&v->be);
  const bool soft = ubk_is_software_int(&v->be);
  const uint32_t hw_error = ubk_error_code(&v->be);
  if (intno == VEC_DB && v->stepping && !soft) {
    /* the simulator's own single-step trap: the instruction retired */
    if (v->cur && (v->cur->flags & BI_PUSHF)) undo_pushf_tf(v);
    return;
  }
  ubk_clear_exception_in_flight(&v->be);
  ubk_commit(&v->be);
  if (intno > 255) return internal(v, "exception number out of range", rip);

  if (soft) {
    /* INT n / INT3 ended its block and retired; RIP is after it. */
    const struct block_info *b = v->cur;
    uint64_t insn = b ? b->addr + b->off[b->icount - 1] : rip - 2;
    struct event ev = {EVENT_SOFT_INT, (uint8_t)intno, false, 0, 0, rip, insn, false};
    if (!deliver_event(v, &ev)) {
      if (v->exit->reason == VCPU_EXIT_EPT_VIOLATION) { /* run the INT again once the page is in */
        v->retired -= 1;
        v->resume_rip = insn;
        v->resume_valid = true;
      }
      stop_with_exit(v);
    }
    return;
  }
  if (v->iret_step && rip == v->iret_site) v->iret_step = false; /* the stepped IRETQ faulted */
  if (v->iret_pending && rip == v->iret_site) {
    /* the IRET that was to unblock NMIs faulted instead (§6.7.1) */
    uint64_t before = v->retired;
    if (v->cur) {
      int i = blocks_index(v->cur, rip);
      if (i >= 0) before -= v->cur->icount - (uint64_t)i;
    }
    if (before == v->iret_retired) v->nmi_blocked = true;
    v->iret_pending = false;
  }
  if (intno == VEC_PF) return on_page_fault(v, rip, hw_error);

  /* #DB outside our single-stepping is the guest's own trap (TF or a
   * breakpoint): reported after the instruction. Everything else Unicorn
   * raises is a fault on the instruction at RIP. */
  const bool trap = intno == VEC_DB;
  if (!trap && !vcpu_abort_at(v, rip)) return internal(v, "exception outside the current block", rip);
  struct event ev = {trap ? EVENT_TRAP : EVENT_FAULT, (uint8_t)intno, vector_has_error_code(intno),
                     vector_has_error_code(intno) ? hw_error : 0, 0, rip, rip, false};
  if (!deliver_event(v, &ev)) stop_with_exit(v);
}

static bool on_invalid(uc_engine *uc, void *ud) {
  (void)uc;
  struct vcpu *v = ud;
  const uint64_t rip = rd(v, UC_X86_REG_RIP);
  if (!vcpu_abort_at(v, rip)) {
    internal(v, "#UD outside the current block", rip);
    return true;
  }
  v->stop = STOP_UD;
  v->resume_rip = rip;
  return true; /* Unicorn ends the run; the run loop delivers #UD */
}

/* ---------- creation ---------- */

struct vcpu *vcpu_create(const struct vcpu_config *cfg, struct diag *err) {
  if (!cfg->mem || !cfg->mem_bytes || (cfg->mem_bytes & 0xfff) || ((uintptr_t)cfg->mem & 0xfff)) {
    diag_set(err, "vcpu %u: guest memory must be a non-empty, 4 KiB aligned buffer of whole pages", cfg->id);
    return NULL;
  }
  struct vcpu *v = calloc(1, sizeof *v);
  if (!v) {
    diag_set(err, "vcpu %u: out of memory", cfg->id);
    return NULL;
  }
  v->id = cfg->id;
  v->mem = cfg->mem;
  v->mem_bytes = cfg->mem_bytes;
  v->cr3_reg = -1;
  v->window_pass = UINT64_MAX;
  v->exit = &v->idle_exit;
  v->pat = UINT64_C(0x0007040600070406);
  v->efer = EFER_LME | EFER_LMA;
  v->costs = cfg->costs;
  v->uncosted_out_port = cfg->uncosted_out_port;
  v->kvm_features = cfg->kvm_features;
  v->enforce_pv_cpuid = cfg->enforce_pv_cpuid;
  v->cpuid_x2apic = cfg->cpuid_x2apic;
  v->msrs = cfg->msrs;
  if (cfg->platform) v->pf = *cfg->platform;
  v->peers = cfg->peers;
  v->n_peers = cfg->n_peers;
  if (cfg->shadow) {
    v->shadow = cfg->shadow;
    v->has_mmu = true;
    if (cfg->id >= shadow_n_vcpus(cfg->shadow) || !cfg->shadow_bytes || (cfg->shadow_base & 0xfff) ||
        cfg->shadow_base < cfg->mem_bytes || (cfg->shadow_bytes & 0xfff) ||
        cfg->shadow_base + cfg->shadow_bytes > VCPU_STUB_VA) {
      diag_set(err, "vcpu %u: the shadow MMU needs this vCPU id and its pool [shadow_base, +shadow_bytes) "
               "page aligned above guest RAM and below VCPU_STUB_VA", cfg->id);
      free(v);
      return NULL;
    }
  }
  if (cfg->peers) {
    if (cfg->id >= cfg->n_peers) {
      diag_set(err, "vcpu %u: id beyond the %u peers", cfg->id, cfg->n_peers);
      free(v);
      return NULL;
    }
    cfg->peers[cfg->id] = v;
  }
  blocks_init(&v->blocks);
  if (!v->blocks.bucket || cs_open(CS_ARCH_X86, CS_MODE_64, &v->cs) != CS_ERR_OK) {
    diag_set(err, "vcpu %u: cannot set up the disassembler", cfg->id);
    blocks_free(&v->blocks);
    free(v);
    return NULL;
  }
  cs_option(v->cs, CS_OPT_DETAIL, CS_OPT_ON);
  v->insn = cs_malloc(v->cs);
  if (!ubk_open(&v->be, err)) {
    vcpu_destroy(v);
    return NULL;
  }
  v->uc = v->be.uc;
  for (unsigned i = 0; i < v->be.cpuid.n; i++)
    if (v->be.cpuid.e[i].leaf == 0x80000001u) v->gbpages = (v->be.cpuid.e[i].r[3] >> 26) & 1;
  v->gmem = (struct guest_mem){v->mem, v->mem_bytes, cfg->maxphyaddr ? cfg->maxphyaddr : PAGING_MAXPHYADDR_DEFAULT,
                               NULL, NULL};
  v->gm = v->has_mmu ? shadow_guest_mem(v->shadow) : &v->gmem;
  uc_err e = uc_mem_map_ptr(v->uc, 0, v->mem_bytes, UC_PROT_ALL, v->mem);
  if (e == UC_ERR_OK && v->has_mmu) {
    e = uc_mem_map_ptr(v->uc, cfg->shadow_base, cfg->shadow_bytes, UC_PROT_ALL, v->mem + cfg->shadow_base);
    v->stub_page = aligned_alloc(4096, 4096);
    if (!v->stub_page || uc_context_alloc(v->uc, &v->stub_ctx) != UC_ERR_OK) {
      diag_set(err, "vcpu %u: out of memory", cfg->id);
      vcpu_destroy(v);
      return NULL;
    }
    static const uint8_t stub[] = {0x0f, 0x01, 0x38, 0xf4,                         /* invlpg [rax]; hlt */
                                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0f, 0x22, 0xd8, 0xf4}; /* mov cr3, rax; hlt */
    memset(v->stub_page, 0xf4, 4096);
    memcpy(v->stub_page, stub, sizeof stub);
    if (e == UC_ERR_OK) e = uc_mem_map_ptr(v->uc, VCPU_STUB_VA, 4096, UC_PROT_READ | UC_PROT_EXEC, v->stub_page);
  }
  if (e != UC_ERR_OK) {
    diag_set(err, "vcpu %u: mapping guest memory into Unicorn failed: %s", cfg->id, uc_strerror(e));
    vcpu_destroy(v);
    return NULL;
  }
  if (uc_hook_add(v->uc, &v->hooks[0], UC_HOOK_BLOCK, (void *)on_block, v, 1, 0) != UC_ERR_OK ||
      uc_hook_add(v->uc, &v->hooks[1], UC_HOOK_INTR, (void *)on_intr, v, 1, 0) != UC_ERR_OK ||
      uc_hook_add(v->uc, &v->hooks[2], UC_HOOK_INSN_INVALID, (void *)on_invalid, v, 1, 0) != UC_ERR_OK) {
    diag_set(err, "vcpu %u: cannot install Unicorn hooks", cfg->id);
    vcpu_destroy(v);
    return NULL;
  }
  for (size_t i = 0; i < cfg->n_text; i++)
    if (!sites_scan(v, cfg->text[i].start, cfg->text[i].end, err)) {
      vcpu_destroy(v);
      return NULL;
    }
  uint64_t lo, hi;
  sites_hook_pending(v, &lo, &hi); /* nothing is translated yet: no invalidation */
  return v;
}

void vcpu_destroy(struct vcpu *v) {
  if (!v) return;
  if (v->peers && v->id < v->n_peers && v->peers[v->id] == v) v->peers[v->id] = NULL;
  if (v->stub_ctx) uc_context_free(v->stub_ctx);
  ubk_close(&v->be);
  free(v->stub_page);
  free(v->code_pages);
  sites_free(v);
  watches_free(v);
  blocks_free(&v->blocks);
  if (v->insn) cs_free(v->insn, 1);
  if (v->cs) cs_close(&v->cs);
  free(v);
}

uint16_t vcpu_write_flat_gdt(uint8_t *mem, uint64_t gdt_gpa, uint64_t tss_gpa) {
  static const uint64_t flat[8] = {
      0, 0,
      UINT64_C(0x00af9b000000ffff), /* 0x10 kernel code, 64-bit */
      UINT64_C(0x00cf93000000ffff), /* 0x18 kernel data */
      0,
      UINT64_C(0x00cff3000000ffff), /* 0x28 user data (0x2b) */
      UINT64_C(0x00affb000000ffff), /* 0x30 user code, 64-bit (0x33) */
      0,
  };
  memcpy(mem + gdt_gpa, flat, sizeof flat);
  const uint64_t lim = 0x67;
  uint64_t tss[2] = {(lim & 0xffff) | ((tss_gpa & 0xffffff) << 16) | (UINT64_C(0x89) << 40) |
                         (((tss_gpa >> 24) & 0xff) << 56),
                     tss_gpa >> 32};
  memcpy(mem + gdt_gpa + VCPU_SEL_TSS, tss, sizeof tss);
  return VCPU_SEL_TSS + 16 - 1;
}

static bool read_descriptor(struct vcpu *v, uint64_t gdt_base, uint16_t limit, uint16_t sel, unsigned bytes,
                            uint8_t *out, struct diag *err) {
  if ((uint32_t)(sel & ~7u) + bytes - 1 > limit)
    return diag_set(err, "vcpu %u: selector %#x is beyond the GDT limit %#x", v->id, sel, limit);
  struct paging_ctx pc;
  vcpu_guest_paging(v, &pc);
  struct paging_walk w;
  if (paging_read(v->gm, &pc, gdt_base + (sel & ~7u), out, bytes, PAGING_SUPERVISOR_IMPLICIT, &w) != PAGING_OK)
    return diag_set(err, "vcpu %u: cannot read the GDT entry of selector %#x at %#llx through the guest page tables",
                    v->id, sel, (unsigned long long)(gdt_base + (sel & ~7u)));
  return true;
}

bool vcpu_boot(struct vcpu *v, const struct vcpu_boot *b, struct diag *err) {
  if ((b->efer & (EFER_LME | EFER_LMA)) != (EFER_LME | EFER_LMA) || !(b->cr0 & 0x80000001u) || !(b->cr4 & 0x20))
    return diag_set(err, "vcpu %u: long mode needs EFER.LME|LMA, CR0.PG|PE and CR4.PAE", v->id);
  if (b->efer & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
    return diag_set(err, "vcpu %u: EFER %#llx has bits apfsim does not model", v->id, (unsigned long long)b->efer);
  /* With shadowing Unicorn always runs with CR0.WP (and EFER.NXE, below):
   * read-only and NX shadow leaves must trap in every mode (shadow.h). */
  wr(v, UC_X86_REG_CR0, v->has_mmu ? b->cr0 | CR0_WP : b->cr0);
  wr(v, UC_X86_REG_CR4, b->cr4);
  v->guest_cr0 = b->cr0;
  v->guest_cr4 = b->cr4;
  v->efer = b->efer;
  v->guest_cr3 = b->cr3;
  uc_x86_mmr gdtr = {0, b->gdt_base, b->gdt_limit, 0}, idtr = {0, b->idt_base, b->idt_limit, 0};
  uc_reg_write(v->uc, UC_X86_REG_GDTR, &gdtr);
  uc_reg_write(v->uc, UC_X86_REG_IDTR, &idtr);
  if (v->has_mmu) {
    shadow_cr3_load(v->shadow, v->id, b->cr3);
    wr(v, UC_X86_REG_CR3, shadow_root(v->shadow, v->id));
  } else {
    wr(v, UC_X86_REG_CR3, b->cr3);
  }
  uint8_t cs_desc[8], ss_desc[8] = {0}, tss_desc[16];
  if (!read_descriptor(v, b->gdt_base, b->gdt_limit, b->cs, 8, cs_desc, err)) return false;
  if ((b->ss & ~3u) && !read_descriptor(v, b->gdt_base, b->gdt_limit, b->ss, 8, ss_desc, err)) return false;
  uint32_t cs_hi, ss_hi;
  memcpy(&cs_hi, cs_desc + 4, 4);
  memcpy(&ss_hi, ss_desc + 4, 4);
  const unsigned cpl = (cs_hi >> 13) & 3;
  if (!(cs_hi & (1u << 21)) || (cs_hi & (1u << 22)) || !(cs_hi & (1u << 11)) || (b->cs & 3) != cpl)
    return diag_set(err, "vcpu %u: CS %#x is not a 64-bit code segment of its RPL", v->id, b->cs);
  if (b->tr) {
    if (!read_descriptor(v, b->gdt_base, b->gdt_limit, b->tr, 16, tss_desc, err)) return false;
    uint64_t lo, hi;
    memcpy(&lo, tss_desc, 8);
    memcpy(&hi, tss_desc + 8, 8);
    uc_x86_mmr tr = {b->tr, ((lo >> 16) & 0xffffff) | (((lo >> 56) & 0xff) << 24) | (hi << 32),
                     (uint32_t)((lo & 0xffff) | ((lo >> 32) & 0xf0000)), (uint32_t)(lo >> 32) & 0x00f0ff00};
    uc_reg_write(v->uc, UC_X86_REG_TR, &tr);
  }
  wr(v, UC_X86_REG_DS, b->ds);
  wr(v, UC_X86_REG_ES, b->ds);
  wr(v, UC_X86_REG_RIP, b->rip);
  wr(v, UC_X86_REG_RSP, b->rsp);
  wr(v, UC_X86_REG_RFLAGS, b->rflags | 2);
  wr(v, UC_X86_REG_CR2, v->cr2);
  ubk_begin(&v->be);
  ubk_load_cs(&v->be, b->cs, cs_hi, cpl);
  ubk_load_ss(&v->be, b->ss, (b->ss & ~3u) ? ss_hi : (uint32_t)cpl << 13);
  ubk_set_efer(&v->be, EFER_LME | EFER_LMA | (v->efer & EFER_SCE) | (v->has_mmu ? EFER_NXE : v->efer & EFER_NXE));
  ubk_clear_exception_in_flight(&v->be);
  ubk_commit(&v->be);
  return true;
}

/* ---------- instruction boundaries ---------- */

/* True when RFLAGS.IF is set and no STI/MOV SS shadow blocks interrupts;
 * *movss_shadow tells the shadows apart (STI's does not block NMIs). */
static bool interrupt_window(struct vcpu *v, bool *shadow, bool *movss_shadow) {
  ubk_begin(&v->be);
  *shadow = ubk_irq_shadow(&v->be);
  *movss_shadow = *shadow && v->sti_retired != v->retired;
  return (rd(v, UC_X86_REG_RFLAGS) & RFLAGS_IF) && !*shadow;
}

/* Delivers what can be delivered now, highest priority first (SDM §6.9):
 * an exception the platform queued, then an NMI, then an interrupt. More
 * than one can go in a row (an NMI right at a #PF handler's first
 * instruction is the race apfsim studies). Sets *step_until when the next
 * event needs one more instruction first (a shadow). False: exit set. */
static bool boundary(struct vcpu *v, uint64_t *step_until) {
  if (v->iret_step && v->retired != v->iret_step_before) {
    /* the IRETQ stepped for a latched NMI completed (a fault clears iret_step) */
    if (v->retired == v->iret_step_before + 1) v->nmi_blocked = false;
    v->iret_step = false;
  }
  v->want_window = false;
  for (unsigned guard = 0; guard < 8; guard++) {
    const uint64_t rip = rd(v, UC_X86_REG_RIP);
    if (v->exc_queued) {
      v->exc_queued = false;
      struct event ev = v->queued_exc;
      ev.rip = ev.insn_rip = rip;
      if (!deliver_event(v, &ev)) return false;
      continue;
    }
    const bool nmi_ready = v->nmi_pending && !v->nmi_blocked;
    const bool irq_ready = v->irq_line || v->irq_vector_held;
    if (!nmi_ready && !irq_ready) break;
    bool shadow, movss;
    const bool window = interrupt_window(v, &shadow, &movss);
    if (nmi_ready) {
      if (movss) {
        *step_until = v->retired + 1;
        break;
      }
      v->nmi_pending = false;
      struct event ev = {EVENT_NMI, VEC_NMI, false, 0, 0, rip, rip, true};
      if (!deliver_event(v, &ev)) return false;
      continue;
    }
    if (!window) {
      if (shadow && (rd(v, UC_X86_REG_RFLAGS) & RFLAGS_IF)) *step_until = v->retired + 1;
      break;
    }
    int vector;
    if (v->irq_vector_held) {
      v->irq_vector_held = false;
      vector = v->held_vector;
    } else {
      vector = v->pf.irq_ack ? v->pf.irq_ack(v->pf.ctx, v) : -1;
    }
    if (vector < 0 || vector > 255) {
      v->irq_line = false;
      break;
    }
    struct event ev = {EVENT_IRQ, (uint8_t)vector, false, 0, 0, rip, rip, true};
    if (!deliver_event(v, &ev)) return false;
  }
  const bool irq_waits = (v->irq_line || v->irq_vector_held) && !(rd(v, UC_X86_REG_RFLAGS) & RFLAGS_IF);
  v->want_window = irq_waits || (v->nmi_pending && v->nmi_blocked);
  return true;
}

static void finish(struct vcpu *v, struct vcpu_exit *exit, uint64_t start, uint64_t start_mc) {
  exit->instructions = v->retired - start;
  exit->cycles = (v->retired * v->costs.cpi_milli + v->extra_mcycles) / 1000 -
                 (start * v->costs.cpi_milli + start_mc) / 1000;
  exit->rip = rd(v, UC_X86_REG_RIP);
  v->exit = &v->idle_exit;
}

bool vcpu_run_cycles(struct vcpu *v, uint64_t max_cycles, struct vcpu_exit *exit) {
  if (!v->costs.cpi_milli) {
    memset(exit, 0, sizeof *exit);
    exit->reason = VCPU_EXIT_INTERNAL_ERROR;
    snprintf(exit->message, sizeof exit->message, "vcpu_run_cycles needs cpi_milli > 0");
    return false;
  }
  v->cycle_bound = true;
  v->limit_mcycles = v->retired * v->costs.cpi_milli + v->extra_mcycles + max_cycles * 1000;
  const bool ok = vcpu_run(v, cycle_target(v) - v->retired, exit);
  v->cycle_bound = false;
  return ok;
}

bool vcpu_run(struct vcpu *v, uint64_t max_instructions, struct vcpu_exit *exit) {
  memset(exit, 0, sizeof *exit);
  v->exit = exit;
  exit->reason = VCPU_EXIT_QUANTUM;
  exit->watch = -1;
  const uint64_t start = v->retired, start_mc = v->extra_mcycles;
  if (v->shut_down) {
    vcpu_set_exit(v, VCPU_EXIT_SHUTDOWN, "vcpu %u is shut down (%s)", v->id, v->triple_msg);
    finish(v, exit, start, start_mc);
    return true;
  }
  v->target = v->retired + max_instructions;
  uint64_t step_until = 0;
  bool step_mode = false;
  for (;;) {
    if (step_until && v->retired >= step_until) step_until = 0;
    if (vcpu_flush_pending(v) && !do_pending_flushes(v)) break;
    if (!boundary(v, &step_until)) break;
    if (v->halted) {
      exit->reason = VCPU_EXIT_HLT;
      break;
    }
    if (v->retired >= v->target) {
      exit->reason = VCPU_EXIT_QUANTUM;
      break;
    }
    v->stop_at = step_until && step_until < v->target ? step_until : v->target;
    v->stop = STOP_NONE;
    if (step_mode) {
      ubk_step_enter(&v->be, &v->saved_dr6);
      v->stepping = true;
    }
    const uint64_t rip = rd(v, UC_X86_REG_RIP);
    uc_err e = uc_emu_start(v->uc, rip, 0, 0, 0);
    if (v->stepping) {
      ubk_step_leave(&v->be, v->saved_dr6);
      v->stepping = false;
    }
    step_mode = false;
    /* RF is 1 at a boundary only right after an IRET that popped it;
     * Unicorn 2.0.1 keeps it through chained blocks (docs/unicorn-notes.md). */
    uint64_t fl = rd(v, UC_X86_REG_RFLAGS);
    if ((fl & RFLAGS_RF) && !(v->cur && (v->cur->flags & BI_LAST_IRET) && v->stop == STOP_BUDGET))
      wr(v, UC_X86_REG_RFLAGS, fl & ~RFLAGS_RF);
    if (e != UC_ERR_OK && v->stop != STOP_EXIT) {
      vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "Unicorn stopped at rip %#llx: %s",
                    (unsigned long long)rd(v, UC_X86_REG_RIP), uc_strerror(e));
      break;
    }
    switch (v->stop) {
      case STOP_NONE:
        vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "Unicorn returned without a reason at rip %#llx",
                      (unsigned long long)rd(v, UC_X86_REG_RIP));
        goto out;
      case STOP_BUDGET:
        /* The block did not run. Unicorn 2.0.1 does not put RIP back on it
         * when code hooks exist and it was reached by a chained jump
         * (docs/unicorn-notes.md), so the simulator does. */
        wr(v, UC_X86_REG_RIP, v->resume_rip);
        /* Fewer instructions than the next block are left: single-step them. */
        if (v->retired < v->stop_at) step_mode = true;
        continue;
      case STOP_RELEARN:
        wr(v, UC_X86_REG_RIP, v->resume_rip);
        vcpu_code_changed(v, v->resume_rip & ~UINT64_C(0xfff),
                          ((v->resume_rip + v->relearn_size + 0xfff) & ~UINT64_C(0xfff)) - (v->resume_rip & ~UINT64_C(0xfff)));
        continue;
      case STOP_LEARN: {
        wr(v, UC_X86_REG_RIP, v->resume_rip);
        uint64_t lo, hi;
        if (sites_hook_pending(v, &lo, &hi)) ubk_invalidate_code(&v->be, lo, hi);
        continue;
      }
      case STOP_HLT:
        /* HLT retires; the vCPU waits for an event (boundary() wakes it).
         * It never runs in Unicorn, so end the STI / MOV SS shadow here: the
         * shadow covers only the next instruction, and in the idle loop's
         * `sti; hlt` that instruction is the HLT itself. */
        v->retired += 1;
        wr(v, UC_X86_REG_RIP, v->stop_site->addr + v->stop_site->len);
        ubk_begin(&v->be);
        ubk_clear_irq_shadow(&v->be);
        ubk_commit(&v->be);
        v->halted = true;
        vcpu_charge(v, VCPU_COST_EXIT_ENTRY, v->costs.vm_exit_cycles + v->costs.vm_entry_cycles);
        continue;
      case STOP_WINDOW:
        /* Let the STI/POPF/IRETQ run natively, then look again. */
        if (v->stop_site->kind == SITE_IRETQ && v->nmi_blocked && v->nmi_pending) {
          v->iret_step = true;
          v->iret_step_before = v->retired;
          v->iret_site = v->stop_site->addr;
          v->iret_pending = false;
        }
        v->window_pass = v->stop_site->addr;
        step_until = v->retired + 1;
        continue;
      case STOP_FLUSH:
        wr(v, UC_X86_REG_RIP, v->resume_rip);
        continue;
      case STOP_COMPLETED:
        wr(v, UC_X86_REG_RIP, v->resume_rip);
        if (v->completed_exit == VCPU_EXIT_QUANTUM) continue; /* it only needed to leave Unicorn */
        exit->reason = v->completed_exit;
        if (exit->reason == VCPU_EXIT_SHUTDOWN) snprintf(exit->message, sizeof exit->message, "requested by a callback");
        goto out;
      case STOP_UD: {
        struct event ev = {EVENT_FAULT, VEC_UD, false, 0, 0, v->resume_rip, v->resume_rip, false};
        if (!deliver_event(v, &ev)) goto out;
        continue;
      }
      case STOP_WATCH:
        /* Like STOP_BUDGET, RIP may be stale: the hook stopped before addr. */
        wr(v, UC_X86_REG_RIP, v->resume_rip);
        exit->reason = VCPU_EXIT_WATCH;
        exit->watch = v->stop_watch;
        goto out;
      case STOP_EXIT:
        if (v->resume_valid) wr(v, UC_X86_REG_RIP, v->resume_rip);
        v->resume_valid = false;
        goto out;
    }
  }
out:
  v->window_pass = UINT64_MAX;
  finish(v, exit, start, start_mc);
  return exit->reason != VCPU_EXIT_INTERNAL_ERROR;
}

/* ---------- injection and state ---------- */

void vcpu_queue_exception(struct vcpu *v, uint8_t vector, uint32_t error_code, uint64_t cr2) {
  v->exc_queued = true;
  v->queued_exc = (struct event){EVENT_FAULT, vector, error_code != VCPU_NO_ERROR_CODE,
                                 error_code == VCPU_NO_ERROR_CODE ? 0 : error_code, cr2, 0, 0, true};
}

void vcpu_queue_nmi(struct vcpu *v) { v->nmi_pending = true; }

void vcpu_set_irq_line(struct vcpu *v, bool pending) { v->irq_line = pending; }

static const int gpr_ids[18] = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_RBP, UC_X86_REG_RSP, UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15, UC_X86_REG_RIP, UC_X86_REG_RFLAGS,
};

void vcpu_get_regs(struct vcpu *v, struct vcpu_regs *r) {
  uint64_t *f = &r->rax;
  for (unsigned i = 0; i < 18; i++) f[i] = rd(v, gpr_ids[i]);
}

void vcpu_set_regs(struct vcpu *v, const struct vcpu_regs *r) {
  const uint64_t *f = &r->rax;
  for (unsigned i = 0; i < 18; i++) wr(v, gpr_ids[i], f[i]);
  v->halted = false; /* a debugger-style state change ends a HLT */
  v->cur = NULL;
}

void vcpu_get_sregs(struct vcpu *v, struct vcpu_sregs *s) {
  memset(s, 0, sizeof *s);
  s->cs = (uint16_t)rd(v, UC_X86_REG_CS);
  s->ss = (uint16_t)rd(v, UC_X86_REG_SS);
  s->ds = (uint16_t)rd(v, UC_X86_REG_DS);
  s->es = (uint16_t)rd(v, UC_X86_REG_ES);
  s->fs = (uint16_t)rd(v, UC_X86_REG_FS);
  s->gs = (uint16_t)rd(v, UC_X86_REG_GS);
  uc_x86_mmr tr, gdtr, idtr;
  uc_reg_read(v->uc, UC_X86_REG_TR, &tr);
  uc_reg_read(v->uc, UC_X86_REG_GDTR, &gdtr);
  uc_reg_read(v->uc, UC_X86_REG_IDTR, &idtr);
  s->tr = tr.selector;
  s->gdt_base = gdtr.base;
  s->gdt_limit = (uint16_t)gdtr.limit;
  s->idt_base = idtr.base;
  s->idt_limit = (uint16_t)idtr.limit;
  ubk_begin(&v->be);
  s->cpl = ubk_cpl(&v->be);
  s->fs_base = rd(v, UC_X86_REG_FS_BASE);
  s->gs_base = rd(v, UC_X86_REG_GS_BASE);
  uc_x86_msr m = {0xc0000102u, 0};
  uc_reg_read(v->uc, UC_X86_REG_MSR, &m);
  s->kernel_gs_base = m.value;
  s->cr0 = v->has_mmu ? v->guest_cr0 : rd(v, UC_X86_REG_CR0);
  s->cr2 = v->cr2;
  s->cr3 = v->has_mmu ? v->guest_cr3 : rd(v, UC_X86_REG_CR3);
  s->cr4 = v->has_mmu ? v->guest_cr4 : rd(v, UC_X86_REG_CR4);
  s->efer = v->efer;
}

uint64_t vcpu_cr2(const struct vcpu *v) { return v->cr2; }

void vcpu_set_cr2(struct vcpu *v, uint64_t cr2) {
  v->cr2 = cr2;
  wr(v, UC_X86_REG_CR2, cr2);
}

unsigned vcpu_id(const struct vcpu *v) { return v->id; }
uint64_t vcpu_retired(const struct vcpu *v) { return v->retired; }
uint64_t vcpu_cycles(const struct vcpu *v) { return (v->retired * v->costs.cpi_milli + v->extra_mcycles) / 1000; }
bool vcpu_halted(const struct vcpu *v) { return v->halted; }
bool vcpu_nmi_blocked(const struct vcpu *v) { return v->nmi_blocked; }
bool vcpu_nmi_pending(const struct vcpu *v) { return v->nmi_pending; }

bool vcpu_interrupts_blocked(struct vcpu *v) {
  bool shadow, movss;
  return !interrupt_window(v, &shadow, &movss);
}
bool vcpu_exception_pending(const struct vcpu *v) { return v->exc_queued; }
bool vcpu_event_reinjecting(const struct vcpu *v) { return v->irq_vector_held; }

void vcpu_code_changed(struct vcpu *v, uint64_t gpa, uint64_t bytes) {
  if (!bytes) return;
  blocks_drop_range(&v->blocks, gpa, gpa + bytes);
  sites_drop_range(v, gpa, gpa + bytes); /* the new code is scanned when it runs */
  v->cur = NULL;
  ubk_invalidate_code(&v->be, gpa, gpa + bytes);
}
