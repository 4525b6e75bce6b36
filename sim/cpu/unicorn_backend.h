/* unicorn_backend.h — the one place that knows Unicorn 2.0.1's insides.
 *
 * Unicorn 2.0.1 is a CPU emulator without exception delivery, and several
 * pieces of CPU state apfsim must read or change have no register id: the #PF
 * error code, whether an exception came from INT n, the "exception in flight"
 * field Unicorn never clears, the CS/SS descriptor caches and the CPL, EFER bits
 * its WRMSR drops, the STI/MOV SS interrupt shadow. This backend finds where
 * they live in a saved uc_context by probing a scratch engine at start-up
 * (never by trusting a header), checks every other behaviour the vCPU relies
 * on, and offers small typed accessors over a saved context. A later Unicorn
 * (2.1 has a virtual TLB and hookable RDTSC) replaces this file, not vcpu.c.
 *
 * Not for: policy. Nothing here decides what a guest sees; vcpu.c and
 * deliver.c do, through these accessors. The measured facts are listed in
 * docs/unicorn-notes.md. */
#ifndef APFSIM_CPU_UNICORN_BACKEND_H
#define APFSIM_CPU_UNICORN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <capstone/capstone.h>
#include <unicorn/unicorn.h>

#include "core/diag.h"

/* Byte offsets of hidden CPU state inside a saved uc_context (counted from
 * the start of the uc_context allocation), found by ubk_calibrate. */
struct ubk_layout {
  size_t ctx_bytes;
  size_t hflags;        /* u32: CPL in bits 1:0, interrupt shadow in bit 3 */
  size_t seg_cs;        /* segment cache of CS: u32 selector, u64 base, u32 limit, u32 flags */
  size_t seg_ss;        /* same for SS */
  size_t efer;          /* u64 */
  size_t error_code;    /* i32: error code of the exception being raised */
  size_t is_int;        /* i32: 1 when the exception came from INT n / INT3 */
  size_t old_exception; /* i32: "exception in flight", -1 when none */
};

#define UBK_CPUID_MAX 64
struct ubk_cpuid_entry {
  uint32_t leaf, subleaf;
  uint32_t r[4]; /* eax ebx ecx edx */
};

/* Unicorn's own CPUID answers, captured once so the vCPU can answer every
 * leaf itself, edited (it emulates CPUID rather than let Unicorn answer). */
struct ubk_cpuid_table {
  unsigned n;
  struct ubk_cpuid_entry e[UBK_CPUID_MAX];
};

/* One engine and the scratch context used to patch its hidden state. */
struct ubk {
  uc_engine *uc;
  uc_context *ctx;
  struct ubk_layout L;
  struct ubk_cpuid_table cpuid;
};

/* Runs every probe (the self-check) and fills the layout and CPUID table.
 * False with a message naming the behaviour that differs. */
bool ubk_calibrate(struct ubk_layout *L, struct ubk_cpuid_table *cpuid, struct diag *err);

/* Calibrates, opens a 64-bit engine and disables Unicorn's "until" exit
 * (see docs/unicorn-notes.md: its end-of-run invalidation clobbers CR2). */
bool ubk_open(struct ubk *b, struct diag *err);
void ubk_close(struct ubk *b);

/* Context transactions: begin saves the engine state into the scratch
 * context, the accessors read or patch it, commit writes it back. Safe inside
 * hooks (Unicorn re-reads all of it before the next translation block). */
void ubk_begin(struct ubk *b);
void ubk_commit(struct ubk *b);

uint32_t ubk_error_code(const struct ubk *b);

/* A REP/REPNE-prefixed string instruction (MOVS, STOS, LODS, CMPS, SCAS),
 * disassembled with details on: Unicorn 2.0.1 runs one extra pass of it with
 * RCX = 0 outside single-step mode, which the instruction counter skips. */
bool x86_is_rep_string(const cs_insn *insn);
bool ubk_is_software_int(const struct ubk *b);
/* Unicorn would turn the next #PF or contributory exception into #DF. */
void ubk_clear_exception_in_flight(struct ubk *b);
unsigned ubk_cpl(const struct ubk *b);
uint64_t ubk_efer(const struct ubk *b);
void ubk_set_efer(struct ubk *b, uint64_t efer);

bool ubk_irq_shadow(const struct ubk *b);
void ubk_clear_irq_shadow(struct ubk *b);

/* Load CS (and the CPL) or SS as a far transfer would: selector and
 * descriptor cache (uc_reg_write only changes the selector in 64-bit mode).
 * flags is the high dword of the descriptor; for a NULL SS, DPL << 13. */
void ubk_load_cs(struct ubk *b, uint16_t sel, uint32_t flags, unsigned cpl);
void ubk_load_ss(struct ubk *b, uint16_t sel, uint32_t flags);

/* Drops translated code for [start, end). Unicorn translates start through
 * the current page tables and, when that faults, silently leaves CR2, the
 * error code and the exception-in-flight field changed: they are restored. */
void ubk_invalidate_code(struct ubk *b, uint64_t start, uint64_t end);

/* uc_hook_del, which also invalidates the hooked code the same way. */
void ubk_hook_del(struct ubk *b, uc_hook h);

/* Single-step mode (RFLAGS.TF under the simulator's control): Unicorn then
 * runs one instruction per block and raises #DB after each, with no
 * retranslation of normal code. DR6 is restored on leave. */
void ubk_step_enter(struct ubk *b, uint64_t *saved_dr6);
void ubk_step_leave(struct ubk *b, uint64_t saved_dr6);

/* Writing RIP from inside a hook makes Unicorn leave the current block and
 * go on at the new RIP. It also cancels any uc_emu_stop requested earlier in
 * the same hook, so callers that stop must not redirect. */
void ubk_redirect(struct ubk *b, uint64_t rip);

#endif
