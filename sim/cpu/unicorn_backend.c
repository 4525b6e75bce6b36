/* unicorn_backend.c — calibration, self-check and hidden-state patching for
 * Unicorn 2.0.1 (see unicorn_backend.h; facts in docs/unicorn-notes.md).
 *
 * Every offset used here is found by running a probe and searching the saved
 * context for the value the architecture says must be there, then confirmed
 * by a second, behavioural probe (patch it and watch the CPU obey). If a
 * probe disagrees, the vCPU refuses to start and says which fact failed. */
#include "cpu/unicorn_backend.h"

#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "cpu/probe_layout.h"

extern const uint8_t ubk_probe_blob[];
extern const uint8_t ubk_probe_blob_end[];

/* QEMU's hflags bits the backend touches (facts checked by the probes). */
#define HF_CPL_MASK 0x3u
#define HF_INHIBIT_IRQ (1u << 3)
#define HF_LMA_CS64 ((1u << 14) | (1u << 15))

#define RFLAGS_TF (UINT64_C(1) << 8)
#define EFER_SCE (UINT64_C(1) << 0)
#define EFER_NXE (UINT64_C(1) << 11)

/* Segment cache as stored in the context: selector, base, limit, flags. */
#define SEG_BASE 8
#define SEG_LIMIT 16
#define SEG_FLAGS 20
#define SEG_STRIDE 24 /* ES, CS, SS, ... are consecutive */

/* ---------- raw context access ---------- */

static uint32_t rd32(const void *ctx, size_t off) {
  uint32_t v;
  memcpy(&v, (const uint8_t *)ctx + off, sizeof v);
  return v;
}
static uint64_t rd64(const void *ctx, size_t off) {
  uint64_t v;
  memcpy(&v, (const uint8_t *)ctx + off, sizeof v);
  return v;
}
static void wr32(void *ctx, size_t off, uint32_t v) { memcpy((uint8_t *)ctx + off, &v, sizeof v); }
static void wr64(void *ctx, size_t off, uint64_t v) { memcpy((uint8_t *)ctx + off, &v, sizeof v); }

/* ---------- the probe machine ---------- */

enum probe_intr_mode {
  PROBE_STOP, /* record the first event and stop */
  PROBE_STEP, /* count #DB traps (single-step) and go on */
};

struct probe {
  uint8_t *mem; /* shared by every probe engine of one calibration */
  uc_engine *uc;
  enum probe_intr_mode mode;
  const struct ubk_layout *L; /* partially known while calibrating */
  int intno;
  uint64_t rip, cr2;
  uint8_t *snap; /* context saved in the interrupt hook */
  size_t snap_bytes;
  uc_context *ctx;
  bool invalid; /* UC_HOOK_INSN_INVALID fired */
  uint64_t steps;
  uint64_t blocks;
  uint64_t block_addr[64];
  uint32_t block_size[64];
  uint64_t block_rcx[64];
  unsigned n_block_log;
  bool stop_in_block_at;
  uint64_t block_stop_addr;
  uint64_t code_hook_hits;
};

static void pw64(uint8_t *mem, uint64_t a, uint64_t v) { memcpy(mem + a, &v, 8); }

static void probe_memory_init(uint8_t *mem) {
  memset(mem, 0, PROBE_MEM_BYTES);
  pw64(mem, PROBE_GDT + PROBE_SEL_KCODE, UINT64_C(0x00af9b000000ffff));
  pw64(mem, PROBE_GDT + PROBE_SEL_KDATA, UINT64_C(0x00cf93000000ffff));
  pw64(mem, PROBE_GDT + (PROBE_SEL_UDATA & ~7), UINT64_C(0x00cff3000000ffff));
  pw64(mem, PROBE_GDT + (PROBE_SEL_UCODE & ~7), UINT64_C(0x00affb000000ffff));
  uint64_t tss = PROBE_TSS, lim = 0x67;
  pw64(mem, PROBE_GDT + PROBE_SEL_TSS,
       (lim & 0xffff) | ((tss & 0xffffff) << 16) | (UINT64_C(0x89) << 40) | (((tss >> 24) & 0xff) << 56));
  pw64(mem, PROBE_GDT + PROBE_SEL_TSS + 8, tss >> 32);
  pw64(mem, PROBE_PML4, PROBE_PDPT | 7);
  pw64(mem, PROBE_PDPT, PROBE_PD | 7);
  pw64(mem, PROBE_PD, PROBE_PT0 | 7);
  pw64(mem, PROBE_PD + 8, PROBE_PT1 | 7);
  for (uint64_t i = 0; i < 512; i++) {
    pw64(mem, PROBE_PT0 + 8 * i, (i << 12) | 7);
    uint64_t va = 0x200000 + (i << 12), e = va | 7;
    if (va == PROBE_PAGE_NP) e = 0;
    if (va == PROBE_PAGE_RO) e = va | 5;
    if (va == PROBE_PAGE_SUP) e = va | 3;
    if (va == PROBE_PAGE_NX) e = va | 7 | (UINT64_C(1) << 63);
    pw64(mem, PROBE_PT1 + 8 * i, e);
  }
  memcpy(mem + PROBE_CODE, ubk_probe_blob, (size_t)(ubk_probe_blob_end - ubk_probe_blob));
  mem[PROBE_PAGE_NX] = 0xf4; /* hlt */
  for (unsigned i = 0; i < 64; i++) mem[PROBE_COPY_SRC + i] = (uint8_t)(0xa0 + i);
}

static void probe_on_intr(uc_engine *uc, uint32_t intno, void *ud) {
  struct probe *p = ud;
  if (p->mode == PROBE_STEP && intno == 1) {
    p->steps++;
    return;
  }
  p->intno = (int)intno;
  uc_reg_read(uc, UC_X86_REG_RIP, &p->rip);
  uc_reg_read(uc, UC_X86_REG_CR2, &p->cr2);
  uc_context_save(uc, p->ctx);
  memcpy(p->snap, p->ctx, p->snap_bytes);
  uc_emu_stop(uc);
}

static bool probe_on_invalid(uc_engine *uc, void *ud) {
  struct probe *p = ud;
  p->invalid = true;
  uc_reg_read(uc, UC_X86_REG_RIP, &p->rip);
  return true;
}

static void probe_on_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  struct probe *p = ud;
  if (p->stop_in_block_at && addr == p->block_stop_addr) {
    uc_emu_stop(uc);
    return;
  }
  if (p->n_block_log < 64) {
    p->block_addr[p->n_block_log] = addr;
    p->block_size[p->n_block_log] = size;
    uc_reg_read(uc, UC_X86_REG_RCX, &p->block_rcx[p->n_block_log]);
    p->n_block_log++;
  }
  p->blocks++;
}

static void probe_on_code_stop(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  (void)addr;
  (void)size;
  struct probe *p = ud;
  p->code_hook_hits++;
  uc_emu_stop(uc);
}

static void probe_close(struct probe *p) {
  if (p->ctx) uc_context_free(p->ctx);
  if (p->uc) uc_close(p->uc);
  free(p->snap);
  p->ctx = NULL;
  p->uc = NULL;
  p->snap = NULL;
}

static bool probe_open(struct probe *p, uint8_t *mem, const struct ubk_layout *L, bool block_hook,
                       struct diag *err) {
  memset(p, 0, sizeof *p);
  p->mem = mem;
  p->L = L;
  p->intno = -1;
  uc_err e = uc_open(UC_ARCH_X86, UC_MODE_64, &p->uc);
  if (e != UC_ERR_OK) return diag_set(err, "unicorn: uc_open(x86-64) failed: %s", uc_strerror(e));
  e = uc_mem_map_ptr(p->uc, 0, PROBE_MEM_BYTES, UC_PROT_ALL, mem);
  if (e != UC_ERR_OK) {
    probe_close(p);
    return diag_set(err, "unicorn: uc_mem_map_ptr failed: %s", uc_strerror(e));
  }
  uint64_t cr0 = UINT64_C(0x80010033), cr3 = PROBE_PML4, cr4 = 0x6a0, rsp = PROBE_KSTACK_TOP;
  uc_reg_write(p->uc, UC_X86_REG_CR3, &cr3);
  uc_reg_write(p->uc, UC_X86_REG_CR4, &cr4);
  uc_reg_write(p->uc, UC_X86_REG_CR0, &cr0);
  uc_x86_mmr gdtr = {0, PROBE_GDT, 0x4f, 0};
  uc_reg_write(p->uc, UC_X86_REG_GDTR, &gdtr);
  uc_x86_mmr tr = {PROBE_SEL_TSS, PROBE_TSS, 0x67, 0x8900};
  uc_reg_write(p->uc, UC_X86_REG_TR, &tr);
  uint64_t cs = PROBE_SEL_KCODE, ss = PROBE_SEL_KDATA;
  uc_reg_write(p->uc, UC_X86_REG_CS, &cs);
  uc_reg_write(p->uc, UC_X86_REG_SS, &ss);
  uc_reg_write(p->uc, UC_X86_REG_RSP, &rsp);
  uc_ctl_exits_enable(p->uc);
  p->snap_bytes = uc_context_size(p->uc);
  p->snap = calloc(1, p->snap_bytes);
  if (!p->snap || uc_context_alloc(p->uc, &p->ctx) != UC_ERR_OK) {
    probe_close(p);
    return diag_set(err, "unicorn: cannot allocate a context");
  }
  uc_hook h;
  uc_hook_add(p->uc, &h, UC_HOOK_INTR, (void *)probe_on_intr, p, 1, 0);
  uc_hook_add(p->uc, &h, UC_HOOK_INSN_INVALID, (void *)probe_on_invalid, p, 1, 0);
  if (block_hook) uc_hook_add(p->uc, &h, UC_HOOK_BLOCK, (void *)probe_on_block, p, 1, 0);
  return true;
}

static uc_err probe_run(struct probe *p, uint64_t entry_off, size_t count) {
  p->intno = -1;
  p->invalid = false;
  return uc_emu_start(p->uc, PROBE_CODE + entry_off, 0, 0, count);
}

static uint64_t reg(uc_engine *uc, int id) {
  uint64_t v = 0;
  uc_reg_read(uc, id, &v);
  return v;
}
static void set_reg(uc_engine *uc, int id, uint64_t v) { uc_reg_write(uc, id, &v); }

/* A #PF probe: runs entry, expects intno 14 at entry+rip_off with CR2 = addr.
 * Leaves the context saved in the hook in p->snap. */
static bool expect_pf(struct probe *p, uint64_t entry, uint64_t rip_off, uint64_t addr, const char *what,
                      struct diag *err) {
  uc_err e = probe_run(p, entry, 0);
  if (e != UC_ERR_OK) return diag_set(err, "unicorn self-check: %s: uc_emu_start: %s", what, uc_strerror(e));
  if (p->intno != 14 || p->rip != PROBE_CODE + rip_off || p->cr2 != addr)
    return diag_set(err,
                    "unicorn self-check: %s: expected #PF (14) at rip %#llx with CR2 %#llx in the interrupt "
                    "hook, got intno %d rip %#llx CR2 %#llx",
                    what, (unsigned long long)(PROBE_CODE + rip_off), (unsigned long long)addr, p->intno,
                    (unsigned long long)p->rip, (unsigned long long)p->cr2);
  return true;
}

/* ---------- calibration steps ---------- */

/* error code, is_int and the exception-in-flight field. */
static bool find_exception_fields(uint8_t *mem, struct ubk_layout *L, struct diag *err) {
  struct probe p;
  /* Four #PF with different architectural error codes; the offset holding
   * all four values (in separate engines, so no state carries over) is it. */
  static const struct {
    uint64_t entry, rip_off, addr;
    int32_t code;
    const char *what;
  } pf[] = {
      {P_PF_WRITE, P_PF_WRITE, PROBE_PAGE_NP, 2, "write to a not-present page"},
      {P_PF_READ, P_PF_READ, PROBE_PAGE_NP, 0, "read of a not-present page"},
      {P_PF_RO, P_PF_RO, PROBE_PAGE_RO, 3, "write to a read-only page"},
  };
  uint8_t *snaps[4] = {0};
  uint8_t *fresh = NULL;
  bool ok = false;
  for (unsigned i = 0; i < 3; i++) {
    if (!probe_open(&p, mem, NULL, false, err)) goto out;
    L->ctx_bytes = p.snap_bytes;
    if (i == 0) {
      fresh = malloc(p.snap_bytes);
      uc_context_save(p.uc, p.ctx);
      memcpy(fresh, p.ctx, p.snap_bytes);
    }
    if (!expect_pf(&p, pf[i].entry, pf[i].rip_off, pf[i].addr, pf[i].what, err)) {
      probe_close(&p);
      goto out;
    }
    snaps[i] = malloc(p.snap_bytes);
    memcpy(snaps[i], p.snap, p.snap_bytes);
    probe_close(&p);
  }
  /* The fourth: a CPL3 read of a supervisor page (error code 5). */
  if (!probe_open(&p, mem, NULL, false, err)) goto out;
  if (!expect_pf(&p, P_TO_USER, P_USER + 1, PROBE_PAGE_SUP, "CPL3 read of a supervisor page", err)) {
    probe_close(&p);
    goto out;
  }
  snaps[3] = malloc(p.snap_bytes);
  memcpy(snaps[3], p.snap, p.snap_bytes);
  probe_close(&p);

  size_t found = 0, where = 0, old_found = 0, old_where = 0;
  for (size_t o = 0; o + 4 <= L->ctx_bytes; o += 4) {
    if ((int32_t)rd32(snaps[0], o) == 2 && (int32_t)rd32(snaps[1], o) == 0 && (int32_t)rd32(snaps[2], o) == 3 &&
        (int32_t)rd32(snaps[3], o) == 5) {
      found++;
      where = o;
    }
    if ((int32_t)rd32(fresh, o) == -1 && (int32_t)rd32(snaps[0], o) == 14 && (int32_t)rd32(snaps[1], o) == 14) {
      old_found++;
      old_where = o;
    }
  }
  if (found != 1) {
    diag_set(err,
             "unicorn self-check: the #PF error code is not at exactly one place in a saved uc_context "
             "(%zu candidates); apfsim needs it to tell reads, writes and user accesses apart",
             found);
    goto out;
  }
  if (old_found != 1) {
    diag_set(err,
             "unicorn self-check: the exception-in-flight field (-1 when idle, 14 after a #PF) was found "
             "at %zu places in a saved uc_context, expected 1",
             old_found);
    goto out;
  }
  L->error_code = where;
  L->is_int = where + 4; /* confirmed by probe_int_n */
  L->old_exception = old_where;
  ok = true;
out:
  for (unsigned i = 0; i < 4; i++) free(snaps[i]);
  free(fresh);
  return ok;
}

/* CS/SS caches and hflags, from a CPL0 context and the CPL3 context that a
 * native IRETQ produced. */
static bool find_segment_fields(uint8_t *mem, struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  uc_context_save(p.uc, p.ctx);
  uint8_t *k = malloc(L->ctx_bytes);
  memcpy(k, p.ctx, L->ctx_bytes);
  bool ok = false;
  if (!expect_pf(&p, P_TO_USER, P_USER + 1, PROBE_PAGE_SUP, "IRETQ to CPL3, then a supervisor read", err))
    goto out;
  const uint8_t *u = p.snap;
  size_t n_cs = 0, cs = 0;
  for (size_t o = 0; o + SEG_STRIDE * 2 <= L->ctx_bytes; o += 4) {
    if (rd32(k, o) == PROBE_SEL_KCODE && rd32(u, o) == PROBE_SEL_UCODE && rd32(k, o + SEG_STRIDE) == PROBE_SEL_KDATA &&
        rd32(u, o + SEG_STRIDE) == PROBE_SEL_UDATA) {
      n_cs++;
      cs = o;
    }
  }
  if (n_cs != 1) {
    diag_set(err, "unicorn self-check: CS/SS selectors not found once in a saved uc_context (%zu candidates)", n_cs);
    goto out;
  }
  uint32_t ucode_hi = rd32(mem, PROBE_GDT + (PROBE_SEL_UCODE & ~7) + 4);
  uint32_t udata_hi = rd32(mem, PROBE_GDT + (PROBE_SEL_UDATA & ~7) + 4);
  if (rd64(u, cs + SEG_BASE) != 0 || rd32(u, cs + SEG_LIMIT) != 0xffffffffu || rd32(u, cs + SEG_FLAGS) != ucode_hi ||
      rd32(u, cs + SEG_STRIDE + SEG_FLAGS) != udata_hi) {
    diag_set(err,
             "unicorn self-check: the CS/SS descriptor caches after IRETQ do not read as {selector, base 0, "
             "limit 0xffffffff, flags = descriptor high dword}");
    goto out;
  }
  size_t n_hf = 0, hf = 0;
  for (size_t o = 0; o + 4 <= cs; o += 4) {
    uint32_t a = rd32(k, o), b = rd32(u, o);
    if ((a & HF_CPL_MASK) == 0 && (b & HF_CPL_MASK) == 3 && (a & ~HF_CPL_MASK) == (b & ~HF_CPL_MASK) &&
        (a & HF_LMA_CS64) == HF_LMA_CS64) {
      n_hf++;
      hf = o;
    }
  }
  if (n_hf != 1) {
    diag_set(err, "unicorn self-check: the hflags word (CPL in bits 1:0, long mode bits 14/15) was found at %zu "
             "places, expected 1", n_hf);
    goto out;
  }
  L->seg_cs = cs;
  L->seg_ss = cs + SEG_STRIDE;
  L->hflags = hf;
  ok = true;
out:
  free(k);
  probe_close(&p);
  return ok;
}

/* EFER: the only u64 holding LME|LMA that RDMSR reports back when patched. */
static bool find_efer(uint8_t *mem, struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  uc_context_save(p.uc, p.ctx);
  uint8_t *fresh = malloc(L->ctx_bytes);
  memcpy(fresh, p.ctx, L->ctx_bytes);
  probe_close(&p);
  bool ok = false;
  size_t n = 0;
  for (size_t o = 0; o + 8 <= L->ctx_bytes; o += 8) {
    if (rd64(fresh, o) != 0x500) continue;
    if (!probe_open(&p, mem, L, false, err)) goto out;
    uc_context_save(p.uc, p.ctx);
    wr64(p.ctx, o, 0x500 | EFER_NXE);
    uc_context_restore(p.uc, p.ctx);
    /* Read it with the API's RDMSR path (the same helper as the instruction). */
    uc_x86_msr m = {0xc0000080, 0};
    uc_reg_read(p.uc, UC_X86_REG_MSR, &m);
    if (m.value & EFER_NXE) {
      n++;
      L->efer = o;
    }
    probe_close(&p);
  }
  if (n != 1) {
    diag_set(err, "unicorn self-check: EFER not found once in a saved uc_context (%zu candidates)", n);
    goto out;
  }
  ok = true;
out:
  free(fresh);
  return ok;
}

/* ---------- behavioural checks (each one a fact apfsim relies on) ---------- */

/* A second #PF becomes #DF unless the in-flight field is reset; resetting it
 * through the context works. */
static bool check_exception_in_flight(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  if (!expect_pf(&p, P_PF_READ, P_PF_READ, PROBE_PAGE_NP, "first #PF", err)) goto out;
  probe_run(&p, P_PF_READ, 0);
  if (p.intno != 8) {
    diag_set(err, "unicorn self-check: a second #PF without resetting the exception-in-flight field was "
             "reported as %d, expected the stale #DF (8) documented for 2.0.1", p.intno);
    goto out;
  }
  uc_context_save(p.uc, p.ctx);
  wr32(p.ctx, L->old_exception, UINT32_MAX);
  uc_context_restore(p.uc, p.ctx);
  probe_run(&p, P_PF_READ, 0);
  if (p.intno != 14 || (int32_t)rd32(p.snap, L->error_code) != 0) {
    diag_set(err, "unicorn self-check: after resetting the exception-in-flight field a #PF was reported as %d",
             p.intno);
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* INT n reaches the hook with RIP after the instruction and is_int = 1. */
static bool check_int_n(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  probe_run(&p, P_INT81, 0);
  if (p.intno != 0x81 || p.rip != PROBE_CODE + P_INT81 + 2 || (int32_t)rd32(p.snap, L->is_int) != 1) {
    diag_set(err, "unicorn self-check: int 0x81 reached the hook as %d at rip %#llx (is_int %d); expected 0x81 "
             "after the instruction with is_int 1", p.intno, (unsigned long long)p.rip,
             (int32_t)rd32(p.snap, L->is_int));
    goto out;
  }
  probe_close(&p);
  if (!probe_open(&p, mem, L, false, err)) return false;
  if (!expect_pf(&p, P_PF_READ, P_PF_READ, PROBE_PAGE_NP, "#PF is_int", err)) goto out;
  if ((int32_t)rd32(p.snap, L->is_int) != 0) {
    diag_set(err, "unicorn self-check: is_int is not 0 for a #PF");
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* uc_reg_write(CS) changes only the selector: the CPL stays 3 (so a
 * privileged instruction still faults); patching the caches and hflags
 * makes the same code run at CPL0. */
static bool check_cpl_patch(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  if (!expect_pf(&p, P_TO_USER, P_USER + 1, PROBE_PAGE_SUP, "reach CPL3", err)) goto out;
  set_reg(p.uc, UC_X86_REG_CS, PROBE_SEL_KCODE);
  set_reg(p.uc, UC_X86_REG_SS, PROBE_SEL_KDATA);
  uc_context_save(p.uc, p.ctx);
  wr32(p.ctx, L->old_exception, UINT32_MAX);
  uc_context_restore(p.uc, p.ctx);
  probe_run(&p, P_PRIV, 0);
  if (p.intno != 13) {
    diag_set(err, "unicorn self-check: after uc_reg_write(CS=kernel) at CPL3, mov rax,cr0 gave %d, expected #GP "
             "(13): the documented 'selector only' behaviour changed",
             p.intno);
    goto out;
  }
  uc_context_save(p.uc, p.ctx);
  wr32(p.ctx, L->old_exception, UINT32_MAX);
  uint32_t kcode_hi = rd32(mem, PROBE_GDT + PROBE_SEL_KCODE + 4);
  uint32_t kdata_hi = rd32(mem, PROBE_GDT + PROBE_SEL_KDATA + 4);
  wr32(p.ctx, L->seg_cs, PROBE_SEL_KCODE);
  wr32(p.ctx, L->seg_cs + SEG_FLAGS, kcode_hi);
  wr32(p.ctx, L->seg_ss, PROBE_SEL_KDATA);
  wr32(p.ctx, L->seg_ss + SEG_FLAGS, kdata_hi);
  wr32(p.ctx, L->hflags, rd32(p.ctx, L->hflags) & ~HF_CPL_MASK);
  uc_context_restore(p.uc, p.ctx);
  uc_err e = probe_run(&p, P_PRIV, 0);
  if (e != UC_ERR_OK || p.intno != -1 || reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_PRIV + 4) {
    diag_set(err, "unicorn self-check: patching the CS/SS caches and CPL to 0 did not let mov rax,cr0 run "
             "(intno %d, rip %#llx)", p.intno, (unsigned long long)reg(p.uc, UC_X86_REG_RIP));
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* STI and MOV SS set the interrupt-shadow bit; the next instruction clears it. */
static bool check_irq_shadow(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, true, err)) return false;
  bool ok = false;
  /* Stop at the block after sti (the nop): sti ends its block. */
  p.stop_in_block_at = true;
  p.block_stop_addr = PROBE_CODE + P_STI + 2;
  probe_run(&p, P_STI, 0);
  uc_context_save(p.uc, p.ctx);
  if (reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_STI + 2 || !(rd32(p.ctx, L->hflags) & HF_INHIBIT_IRQ)) {
    diag_set(err, "unicorn self-check: after sti the interrupt-shadow bit of hflags is not set (rip %#llx)",
             (unsigned long long)reg(p.uc, UC_X86_REG_RIP));
    goto out;
  }
  p.stop_in_block_at = true;
  p.block_stop_addr = PROBE_CODE + P_STI + 3;
  uc_emu_start(p.uc, PROBE_CODE + P_STI + 2, 0, 0, 0);
  uc_context_save(p.uc, p.ctx);
  if (reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_STI + 3 || (rd32(p.ctx, L->hflags) & HF_INHIBIT_IRQ)) {
    diag_set(err, "unicorn self-check: the interrupt shadow did not end after one instruction");
    goto out;
  }
  p.block_stop_addr = PROBE_CODE + P_MOVSS + 6;
  probe_run(&p, P_MOVSS, 0);
  uc_context_save(p.uc, p.ctx);
  if (reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_MOVSS + 6 || !(rd32(p.ctx, L->hflags) & HF_INHIBIT_IRQ)) {
    diag_set(err, "unicorn self-check: after mov ss the interrupt-shadow bit of hflags is not set");
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* EFER.SCE/NXE written by WRMSR are dropped; patched into the context, NXE
 * is honoured by the page walk (a fetch from an XD page faults with I/D). */
static bool check_efer(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  probe_run(&p, P_EFER, 0);
  uint64_t efer = (reg(p.uc, UC_X86_REG_RDX) << 32) | (reg(p.uc, UC_X86_REG_RAX) & 0xffffffff);
  if (efer & (EFER_SCE | EFER_NXE)) {
    diag_set(err, "unicorn self-check: WRMSR now keeps EFER.SCE/NXE (EFER %#llx); the backend patches EFER and "
             "must be re-checked", (unsigned long long)efer);
    goto out;
  }
  /* Without NXE the XD bit is reserved: the fetch faults with RSVD. */
  probe_run(&p, P_NX_JMP, 0);
  uint32_t ec = rd32(p.snap, L->error_code);
  if (p.intno != 14 || p.cr2 != PROBE_PAGE_NX || ec != 0x9) {
    diag_set(err, "unicorn self-check: fetch from an XD page without NXE: intno %d CR2 %#llx error %#x, expected "
             "#PF at the page with error 0x9 (P|RSVD)", p.intno, (unsigned long long)p.cr2, ec);
    goto out;
  }
  uc_context_save(p.uc, p.ctx);
  wr32(p.ctx, L->old_exception, UINT32_MAX);
  wr64(p.ctx, L->efer, rd64(p.ctx, L->efer) | EFER_NXE);
  uc_context_restore(p.uc, p.ctx);
  probe_run(&p, P_NX_JMP, 0);
  ec = rd32(p.snap, L->error_code);
  if (p.intno != 14 || p.cr2 != PROBE_PAGE_NX || ec != 0x11) {
    diag_set(err, "unicorn self-check: fetch from an XD page with NXE patched in: intno %d error %#x, expected "
             "#PF with error 0x11 (P|I/D)", p.intno, ec);
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* WRMSR/RDMSR of an unknown MSR raise nothing (why apfsim hooks their sites);
 * RDTSC is not hookable and reads the host. */
static bool check_msr_and_tsc(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  probe_run(&p, P_WRMSR, 0);
  /* hlt returns from uc_emu_start with RIP after it (P_WRMSR + 25). */
  if (p.intno != -1 || reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_WRMSR + 25 ||
      (reg(p.uc, UC_X86_REG_RAX) & 0xffffffff) != 0 || (reg(p.uc, UC_X86_REG_RDX) & 0xffffffff) != 0) {
    diag_set(err, "unicorn self-check: wrmsr/rdmsr of an unknown MSR gave intno %d, rip %#llx, edx:eax %#llx:%#llx; "
             "apfsim's MSR emulation assumes Unicorn ignores the write, reads 0 and stops after hlt",
             p.intno, (unsigned long long)reg(p.uc, UC_X86_REG_RIP),
             (unsigned long long)reg(p.uc, UC_X86_REG_RDX), (unsigned long long)reg(p.uc, UC_X86_REG_RAX));
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* #UD reaches UC_HOOK_INSN_INVALID (not the interrupt hook), RIP on the
 * instruction, and ends the run. */
static bool check_ud(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  probe_run(&p, P_UD, 0);
  if (!p.invalid || p.intno != -1 || reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_UD) {
    diag_set(err, "unicorn self-check: ud2 did not reach the invalid-instruction hook with RIP on it");
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* A native IRETQ to the same privilege works, and clears the NMI-blocking bit
 * of hflags2 (hflags + 4) — so "any IRET unblocks NMIs" is also visible in the
 * context. */
static bool check_iretq(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  uc_context_save(p.uc, p.ctx);
  wr32(p.ctx, L->hflags + 4, rd32(p.ctx, L->hflags + 4) | (1u << 2));
  uc_context_restore(p.uc, p.ctx);
  uc_err e = probe_run(&p, P_IRET_SAME, 0);
  uc_context_save(p.uc, p.ctx);
  uint64_t rip = reg(p.uc, UC_X86_REG_RIP);
  if (e != UC_ERR_OK || p.intno != -1 || rip != PROBE_CODE + P_IRET_SAME + 0x14 ||
      (rd32(p.ctx, L->hflags + 4) & (1u << 2))) {
    diag_set(err, "unicorn self-check: native iretq to CPL0 failed or did not clear the NMI-blocked bit "
             "(intno %d, rip %#llx)", p.intno, (unsigned long long)rip);
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* Counting facts. Unicorn's block hook reports every executed block with a
 * size covering whole instructions; stopping in it leaves the block
 * unexecuted; a code-hook stop leaves its instruction unexecuted; with TF set
 * Unicorn raises #DB after every instruction and runs one REP iteration per
 * step. Without TF a REP loop that runs out of count takes one extra pass
 * through a block holding only the REP instruction, entered with RCX = 0
 * right after the same instruction: that pass is not an instruction (the
 * vCPU's block counter skips it, see vcpu.c). With that rule, block counting
 * equals the architectural single-step count. */
struct decoded {
  unsigned n;
  bool exact;
  bool rep_only;      /* the block is one REP-prefixed string instruction */
  uint32_t last_off;  /* offset of the last instruction */
};

bool x86_is_rep_string(const cs_insn *insn) {
  uint8_t rep = insn->detail->x86.prefix[0];
  if (rep != X86_PREFIX_REP && rep != X86_PREFIX_REPNE) return false;
  switch (insn->id) {
    case X86_INS_MOVSB: case X86_INS_MOVSW: case X86_INS_MOVSD: case X86_INS_MOVSQ:
    case X86_INS_STOSB: case X86_INS_STOSW: case X86_INS_STOSD: case X86_INS_STOSQ:
    case X86_INS_LODSB: case X86_INS_LODSW: case X86_INS_LODSD: case X86_INS_LODSQ:
    case X86_INS_CMPSB: case X86_INS_CMPSW: case X86_INS_CMPSD: case X86_INS_CMPSQ:
    case X86_INS_SCASB: case X86_INS_SCASW: case X86_INS_SCASD: case X86_INS_SCASQ:
      return true;
    default:
      return false;
  }
}

static struct decoded decode_block(csh cs, const uint8_t *code, uint64_t addr, uint32_t size) {
  struct decoded d = {0, false, false, 0};
  const uint8_t *c = code;
  size_t left = size;
  uint64_t a = addr;
  cs_insn *insn = cs_malloc(cs);
  while (left) {
    uint64_t at = a;
    if (!cs_disasm_iter(cs, &c, &left, &a, insn)) break;
    d.last_off = (uint32_t)(at - addr);
    if (d.n == 0 && left == 0 && insn->detail && x86_is_rep_string(insn))
      d.rep_only = true;
    d.n++;
  }
  cs_free(insn, 1);
  d.exact = left == 0;
  return d;
}

static bool check_counting(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  csh cs;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) return diag_set(err, "capstone: cs_open failed");
  cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
  struct probe p;
  bool ok = false;
  /* Reference: TF single-step traps, plus the final hlt (no trap). */
  if (!probe_open(&p, mem, L, false, err)) goto out_cs;
  p.mode = PROBE_STEP;
  set_reg(p.uc, UC_X86_REG_RFLAGS, 0x2 | RFLAGS_TF);
  probe_run(&p, P_COUNT, 0);
  uint64_t ref = p.steps + 1;
  probe_close(&p);

  if (!probe_open(&p, mem, L, true, err)) goto out_cs;
  probe_run(&p, P_COUNT, 0);
  if (p.n_block_log >= 64) {
    diag_set(err, "unicorn self-check: counting probe ran too many blocks");
    goto out;
  }
  uint64_t counted = 0, passes = 0, prev_last = UINT64_MAX;
  for (unsigned i = 0; i < p.n_block_log; i++) {
    struct decoded d = decode_block(cs, mem + p.block_addr[i], p.block_addr[i], p.block_size[i]);
    if (!d.exact) {
      diag_set(err, "unicorn self-check: block at %#llx of %u bytes does not end on an instruction boundary",
               (unsigned long long)p.block_addr[i], p.block_size[i]);
      goto out;
    }
    if (d.rep_only && prev_last == p.block_addr[i] && p.block_rcx[i] == 0)
      passes++;
    else
      counted += d.n;
    prev_last = p.block_addr[i] + d.last_off;
  }
  if (counted != ref || passes != 1) {
    diag_set(err, "unicorn self-check: block counting gives %llu instructions (%llu final REP passes skipped), TF "
             "single-stepping %llu; expected equal counts and one final REP pass",
             (unsigned long long)counted, (unsigned long long)passes, (unsigned long long)ref);
    goto out;
  }
  /* Stopping in the block hook leaves the block unexecuted. */
  p.stop_in_block_at = true;
  p.block_stop_addr = PROBE_CODE + P_STI + 2;
  probe_run(&p, P_STI, 0);
  if (reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_STI + 2) {
    diag_set(err, "unicorn self-check: uc_emu_stop in a block hook did not stop before the block");
    goto out;
  }
  p.stop_in_block_at = false;
  /* A code hook stop leaves its instruction unexecuted. */
  uc_hook hb;
  uc_hook_add(p.uc, &hb, UC_HOOK_CODE, (void *)probe_on_code_stop, &p, PROBE_CODE + P_PRIV + 3,
              PROBE_CODE + P_PRIV + 3);
  set_reg(p.uc, UC_X86_REG_RAX, 0);
  probe_run(&p, P_PRIV, 0);
  if (p.code_hook_hits != 1 || reg(p.uc, UC_X86_REG_RIP) != PROBE_CODE + P_PRIV + 3 ||
      reg(p.uc, UC_X86_REG_RAX) == 0) {
    diag_set(err, "unicorn self-check: uc_emu_stop in a code hook did not stop right before its instruction");
    goto out;
  }
  uc_hook_del(p.uc, hb);
  ok = true;
out:
  probe_close(&p);
out_cs:
  cs_close(&cs);
  return ok;
}

/* The "until" exit walks the page tables at the end of every run; an
 * unmapped until address silently leaves CR2 and the in-flight field changed.
 * With exits enabled and none set, nothing changes. */
static bool check_until_clobber(uint8_t *mem, const struct ubk_layout *L, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  bool ok = false;
  uc_emu_start(p.uc, PROBE_CODE + P_STI, 0, 0, 0); /* exits enabled, none set */
  uc_context_save(p.uc, p.ctx);
  if (reg(p.uc, UC_X86_REG_CR2) != 0 || (int32_t)rd32(p.ctx, L->old_exception) != -1) {
    diag_set(err, "unicorn self-check: a run with no exit address changed CR2 or the exception-in-flight field");
    goto out;
  }
  /* The invalidation of an unmapped address faults silently; the backend
   * restores what it clobbers. */
  uc_ctl_remove_cache(p.uc, PROBE_PAGE_NP, PROBE_PAGE_NP + 1);
  uc_context_save(p.uc, p.ctx);
  if (reg(p.uc, UC_X86_REG_CR2) != PROBE_PAGE_NP || (int32_t)rd32(p.ctx, L->old_exception) != 14) {
    diag_set(err, "unicorn self-check: invalidating code at an unmapped address no longer clobbers CR2 "
             "(CR2 %#llx); re-check ubk_invalidate_code", (unsigned long long)reg(p.uc, UC_X86_REG_CR2));
    goto out;
  }
  ok = true;
out:
  probe_close(&p);
  return ok;
}

/* Unicorn's CPUID answers, captured so the vCPU can answer every leaf itself
 * (edited) when it emulates CPUID at its site. */
static bool capture_cpuid(uint8_t *mem, const struct ubk_layout *L, struct ubk_cpuid_table *t, struct diag *err) {
  struct probe p;
  if (!probe_open(&p, mem, L, false, err)) return false;
  t->n = 0;
  static const uint32_t bases[] = {0, 0x80000000u};
  for (unsigned b = 0; b < 2; b++) {
    set_reg(p.uc, UC_X86_REG_RAX, bases[b]);
    set_reg(p.uc, UC_X86_REG_RCX, 0);
    probe_run(&p, P_CPUID_ALL, 0);
    uint32_t max = (uint32_t)reg(p.uc, UC_X86_REG_RAX);
    if (max < bases[b] || max > bases[b] + 0x40) max = bases[b];
    for (uint32_t leaf = bases[b]; leaf <= max; leaf++) {
      unsigned subs = (leaf == 4 || leaf == 7 || leaf == 0xb || leaf == 0xd) ? 4 : 1;
      for (uint32_t sub = 0; sub < subs && t->n < UBK_CPUID_MAX; sub++) {
        set_reg(p.uc, UC_X86_REG_RAX, leaf);
        set_reg(p.uc, UC_X86_REG_RCX, sub);
        probe_run(&p, P_CPUID_ALL, 0);
        struct ubk_cpuid_entry *e = &t->e[t->n++];
        e->leaf = leaf;
        e->subleaf = subs > 1 ? sub : UINT32_MAX;
        e->r[0] = (uint32_t)reg(p.uc, UC_X86_REG_RAX);
        e->r[1] = (uint32_t)reg(p.uc, UC_X86_REG_RBX);
        e->r[2] = (uint32_t)reg(p.uc, UC_X86_REG_RCX);
        e->r[3] = (uint32_t)reg(p.uc, UC_X86_REG_RDX);
      }
    }
  }
  probe_close(&p);
  return true;
}

bool ubk_calibrate(struct ubk_layout *L, struct ubk_cpuid_table *cpuid, struct diag *err) {
  unsigned major = 0, minor = 0;
  uc_version(&major, &minor);
  if (major != 2) return diag_set(err, "unicorn: version %u.%u found; apfsim's backend is for 2.0.x", major, minor);
  uint8_t *mem = aligned_alloc(4096, PROBE_MEM_BYTES);
  if (!mem) return diag_set(err, "unicorn self-check: out of memory");
  probe_memory_init(mem);
  memset(L, 0, sizeof *L);
  bool ok = find_exception_fields(mem, L, err) && find_segment_fields(mem, L, err) && find_efer(mem, L, err) &&
            check_int_n(mem, L, err) && check_exception_in_flight(mem, L, err) && check_cpl_patch(mem, L, err) &&
            check_irq_shadow(mem, L, err) && check_efer(mem, L, err) && check_msr_and_tsc(mem, L, err) &&
            check_ud(mem, L, err) && check_iretq(mem, L, err) && check_until_clobber(mem, L, err);
  if (ok) {
    probe_memory_init(mem);
    ok = check_counting(mem, L, err);
  }
  if (ok && cpuid) ok = capture_cpuid(mem, L, cpuid, err);
  free(mem);
  return ok;
}

/* ---------- per-engine use ---------- */

bool ubk_open(struct ubk *b, struct diag *err) {
  memset(b, 0, sizeof *b);
  if (!ubk_calibrate(&b->L, &b->cpuid, err)) return false;
  uc_err e = uc_open(UC_ARCH_X86, UC_MODE_64, &b->uc);
  if (e != UC_ERR_OK) return diag_set(err, "unicorn: uc_open(x86-64) failed: %s", uc_strerror(e));
  uc_ctl_exits_enable(b->uc);
  if (uc_context_alloc(b->uc, &b->ctx) != UC_ERR_OK) {
    uc_close(b->uc);
    b->uc = NULL;
    return diag_set(err, "unicorn: cannot allocate a context");
  }
  return true;
}

void ubk_close(struct ubk *b) {
  if (b->ctx) uc_context_free(b->ctx);
  if (b->uc) uc_close(b->uc);
  b->ctx = NULL;
  b->uc = NULL;
}

void ubk_begin(struct ubk *b) { uc_context_save(b->uc, b->ctx); }
void ubk_commit(struct ubk *b) { uc_context_restore(b->uc, b->ctx); }

uint32_t ubk_error_code(const struct ubk *b) { return rd32(b->ctx, b->L.error_code); }
bool ubk_is_software_int(const struct ubk *b) { return rd32(b->ctx, b->L.is_int) != 0; }
void ubk_clear_exception_in_flight(struct ubk *b) { wr32(b->ctx, b->L.old_exception, UINT32_MAX); }
unsigned ubk_cpl(const struct ubk *b) { return rd32(b->ctx, b->L.hflags) & HF_CPL_MASK; }
bool ubk_irq_shadow(const struct ubk *b) { return (rd32(b->ctx, b->L.hflags) & HF_INHIBIT_IRQ) != 0; }
uint64_t ubk_efer(const struct ubk *b) { return rd64(b->ctx, b->L.efer); }
void ubk_set_efer(struct ubk *b, uint64_t efer) { wr64(b->ctx, b->L.efer, efer); }

void ubk_clear_irq_shadow(struct ubk *b) { wr32(b->ctx, b->L.hflags, rd32(b->ctx, b->L.hflags) & ~HF_INHIBIT_IRQ); }

/* Only 64-bit code segments are loaded here (handlers of a 64-bit kernel),
 * so the long-mode bits of hflags stay set. */
void ubk_load_cs(struct ubk *b, uint16_t sel, uint32_t flags, unsigned cpl) {
  wr32(b->ctx, b->L.seg_cs, sel);
  wr64(b->ctx, b->L.seg_cs + SEG_BASE, 0);
  wr32(b->ctx, b->L.seg_cs + SEG_LIMIT, 0xffffffffu);
  wr32(b->ctx, b->L.seg_cs + SEG_FLAGS, flags);
  uint32_t hf = rd32(b->ctx, b->L.hflags);
  wr32(b->ctx, b->L.hflags, (hf & ~HF_CPL_MASK) | (cpl & 3) | HF_LMA_CS64);
}

void ubk_load_ss(struct ubk *b, uint16_t sel, uint32_t flags) {
  wr32(b->ctx, b->L.seg_ss, sel);
  wr64(b->ctx, b->L.seg_ss + SEG_BASE, 0);
  wr32(b->ctx, b->L.seg_ss + SEG_LIMIT, (sel & ~3u) ? 0xffffffffu : 0);
  wr32(b->ctx, b->L.seg_ss + SEG_FLAGS, flags);
}

/* Unicorn translates the first address of an invalidation through the live
 * page tables; a miss is a silent #PF that changes CR2, the error code and
 * the in-flight field. Put them back. */
static void invalidation(struct ubk *b, uint64_t start, uint64_t end, uc_hook h, bool del) {
  uint64_t cr2 = reg(b->uc, UC_X86_REG_CR2);
  ubk_begin(b);
  uint32_t ec = rd32(b->ctx, b->L.error_code), old = rd32(b->ctx, b->L.old_exception);
  if (del)
    uc_hook_del(b->uc, h);
  else
    uc_ctl_remove_cache(b->uc, start, end);
  ubk_begin(b);
  wr32(b->ctx, b->L.error_code, ec);
  wr32(b->ctx, b->L.old_exception, old);
  ubk_commit(b);
  set_reg(b->uc, UC_X86_REG_CR2, cr2);
}

void ubk_invalidate_code(struct ubk *b, uint64_t start, uint64_t end) { invalidation(b, start, end, 0, false); }
void ubk_hook_del(struct ubk *b, uc_hook h) { invalidation(b, 0, 0, h, true); }

void ubk_step_enter(struct ubk *b, uint64_t *saved_dr6) {
  *saved_dr6 = reg(b->uc, UC_X86_REG_DR6);
  set_reg(b->uc, UC_X86_REG_RFLAGS, reg(b->uc, UC_X86_REG_RFLAGS) | RFLAGS_TF);
}

void ubk_step_leave(struct ubk *b, uint64_t saved_dr6) {
  set_reg(b->uc, UC_X86_REG_RFLAGS, reg(b->uc, UC_X86_REG_RFLAGS) & ~RFLAGS_TF);
  set_reg(b->uc, UC_X86_REG_DR6, saved_dr6);
}

void ubk_redirect(struct ubk *b, uint64_t rip) { set_reg(b->uc, UC_X86_REG_RIP, rip); }

bool vcpu_backend_selfcheck(struct diag *err) {
  struct ubk_layout L;
  return ubk_calibrate(&L, NULL, err);
}
