/* shadow.h — the shadow MMU (DESIGN.md §7): the page tables Unicorn really walks.
 *
 * Unicorn 2.0.1 checks permissions against the page tables CR3 points to but then
 * accesses the address equal to the virtual one, so the guest lives in one
 * identity-mapped space (VA = PA = Unicorn address) and Unicorn's CR3 always holds
 * a simulator-owned shadow root per vCPU, in the host buffer above guest RAM. Shadow
 * tables start empty; every Unicorn #PF comes here and gets one verdict:
 *
 *   FILLED       the guest's tables allow the access: a 4 KiB identity leaf now holds
 *                the guest's effective rights (minus what the rules below withhold);
 *                retry the instruction. Act on info.flush first.
 *   GUEST_FAULT  the guest's tables refuse it: deliver #PF(info.error_code), CR2 = va.
 *   HOST_FAULT   the guest allows it but the page (or one of the guest's page tables)
 *                is not resident on the host: an EPT violation on info.gfn.
 *   BAD_MAPPING  the guest broke the identity rule (or put a table outside its RAM):
 *                stop the run with shadow_describe()'s sentence.
 *
 * Rules the shadow adds on top of the guest's rights (each costs at most one extra fault):
 *  - Dirty bits are exact: a page whose guest D flag is clear is filled read-only; the
 *    first write faults, sets D, and makes it writable.
 *  - So is the host's dirty bit (an EPT D bit): a page the host has cleaned
 *    (shadow_test_and_clear_dirty, after a swap-in) is filled read-only even if the
 *    guest's D is set, until its first write. Pages start dirty.
 *  - Translated-code coherence across vCPUs: Unicorn keeps one engine's own writes and
 *    its translated code coherent, but not writes by another engine or by the host
 *    (measured: tests/mmu/test_mmu_unicorn.c). So each guest page has an owner
 *    state — DATA (writable anywhere, executable nowhere), CODE (executable anywhere,
 *    writable nowhere) or OWNED by one vCPU (writable and executable there, read-only
 *    and non-executable elsewhere). Changes of state come back in info.flush: whose
 *    TLB entry for the page to drop and which engines must drop translated code.
 *
 * Contract with the vCPU (sim/cpu): Unicorn runs with CR0.WP=1 and EFER.NXE=1 always
 * (the shadow relies on read-only and NX leaves trapping every mode), CR4.SMEP/SMAP
 * mirror the guest's; the guest's own CR0.WP/EFER.NXE/CR4 bits travel in paging_ctx.
 *
 * Not for: choosing what is resident (the host layer sets a residency callback),
 * delivering anything, touching Unicorn. One thread; no global state.
 */
#ifndef APFSIM_MMU_SHADOW_H
#define APFSIM_MMU_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "mmu/paging.h"

#define SHADOW_MAX_VCPUS 64 /* vCPU sets travel as 64-bit masks */
#define SHADOW_MAX_PINS 8

struct shadow_config {
  uint8_t *mem;          /* host buffer: guest RAM at offset 0, shadow tables at shadow_base */
  uint64_t guest_bytes;  /* guest RAM size, multiple of 4 KiB */
  unsigned maxphyaddr;   /* guest's MAXPHYADDR for reserved-bit checks (e.g. PAGING_MAXPHYADDR_DEFAULT) */
  uint64_t shadow_base;  /* >= guest_bytes, 4 KiB aligned; the guest must never map it */
  uint64_t shadow_bytes; /* table pool; at least shadow_min_bytes(n_vcpus) */
  unsigned n_vcpus;      /* 1..SHADOW_MAX_VCPUS */
};

/* Pool size below which shadow_create refuses (one root plus a few tables per vCPU). */
uint64_t shadow_min_bytes(unsigned n_vcpus);

/* What the vCPU layer must do before the named vCPUs next execute guest code.
 * The faulting vCPU is never in code_vcpus (Unicorn's per-engine self-modifying-code
 * tracking keeps its own code fresh) and is in tlb_vcpus only for a guest running with
 * CR0.WP=0 (a supervisor-write-only leaf handed back to user mode); it is in
 * full_tlb_vcpus when its shadow was emptied during the fault (pool exhausted, paging
 * controls changed without shadow_reset). Its own entries otherwise only gain rights. */
struct shadow_flush {
  uint64_t va;             /* the page concerned (VA = guest PA) */
  uint64_t tlb_vcpus;      /* drop va from these vCPUs' Unicorn TLBs (e.g. the invlpg stub) */
  uint64_t full_tlb_vcpus; /* these vCPUs' shadows were emptied: flush their whole TLB */
  uint64_t code_vcpus;     /* these engines must drop translated code of the page (uc_ctl_remove_cache) */
};

static inline bool shadow_flush_needed(const struct shadow_flush *f) {
  return (f->tlb_vcpus | f->full_tlb_vcpus | f->code_vcpus) != 0;
}

enum shadow_verdict { SHADOW_FILLED, SHADOW_GUEST_FAULT, SHADOW_HOST_FAULT, SHADOW_BAD_MAPPING };

enum shadow_bad_reason {
  SHADOW_BAD_NONE,
  SHADOW_BAD_NOT_IDENTITY,  /* the guest maps va to another physical page (walk.pa) */
  SHADOW_BAD_OUTSIDE_RAM,   /* identity, but the page is not guest RAM (e.g. the shadow area) */
  SHADOW_BAD_TABLE_OUTSIDE, /* a guest paging structure lies outside guest RAM (walk.bad_pa) */
  SHADOW_BAD_NONCANONICAL,  /* never from a real #PF: the vCPU raises #GP for these */
};

struct shadow_fault_info {
  enum shadow_verdict verdict;
  uint64_t va;
  struct paging_access access;
  struct paging_walk walk;    /* the guest walk that decided the verdict */
  uint32_t error_code;        /* GUEST_FAULT: the architectural #PF error code */
  uint64_t gfn;               /* HOST_FAULT: the page to bring in */
  bool in_walk;               /* HOST_FAULT: gfn holds a guest page table (EPT violation on the walk) */
  enum shadow_bad_reason bad; /* BAD_MAPPING */
  bool spurious;              /* FILLED: the shadow already allowed this access (stale Unicorn TLB) */
  struct shadow_flush flush;  /* FILLED (and any verdict after a reset): act before resuming */
};

struct shadow_stats {
  uint64_t fills;             /* FILLED verdicts */
  uint64_t spurious_fills;    /* ... of which changed nothing */
  uint64_t dirty_upgrades;    /* write faults that only made a clean page writable */
  uint64_t guest_faults;
  uint64_t host_faults;
  uint64_t bad_mappings;
  uint64_t flips;             /* page state changes (DATA/CODE/OWNED) that restricted another vCPU */
  uint64_t code_flushes;      /* engine x page translated-code drops requested */
  uint64_t zaps;              /* shadow leaves cleared by shadow_zap_gfn */
  uint64_t table_zaps;        /* evictions of guest page-table pages (every shadow dropped) */
  uint64_t resets;            /* per-vCPU shadow drops, whatever the cause (CR3 loads mostly) */
  uint64_t ctx_resets;        /* ... at fault time: paging controls changed without shadow_reset */
  uint64_t exhaustion_resets; /* shadows dropped because the table pool ran out */
  uint64_t invlpgs;
  uint64_t write_protects;    /* leaves made read-only by shadow_test_and_clear_dirty */
  uint64_t tables_in_use;     /* table pages allocated now (roots included) */
  uint64_t tables_peak;
};

struct shadow_mmu;

/* NULL with a message in err on bad geometry. Zeroes the shadow pool. */
struct shadow_mmu *shadow_create(const struct shadow_config *cfg, struct diag *err);
void shadow_destroy(struct shadow_mmu *m);

/* The host layer's (EPT's) residency answer; NULL = every page resident. A page that is
 * not resident never gets a present shadow entry. */
void shadow_set_residency(struct shadow_mmu *m, bool (*resident)(void *ctx, uint64_t gfn), void *ctx);

/* The guest-memory view (with residency) for paging_read/paging_write in event delivery. */
const struct guest_mem *shadow_guest_mem(const struct shadow_mmu *m);

unsigned shadow_n_vcpus(const struct shadow_mmu *m);

/* What Unicorn's CR3 holds for this vCPU — constant for the life of m. */
uint64_t shadow_root(const struct shadow_mmu *m, unsigned vcpu);

/* Guest MOV to CR3 (any value, same one included): the guest may have edited tables
 * and relies on the load to flush, so the vCPU's shadow is emptied. Unicorn's own CR3
 * write (of shadow_root) flushes its TLB. */
void shadow_cr3_load(struct shadow_mmu *m, unsigned vcpu, uint64_t guest_cr3);

/* Guest CR0.WP / CR4.SMEP / CR4.SMAP / EFER.NXE change: empties the vCPU's shadow
 * (the vCPU then flushes its whole TLB). shadow_fault catches a missed call at the next
 * fault, but leaves filled under the old controls act until then: do call it. */
void shadow_reset(struct shadow_mmu *m, unsigned vcpu);

/* Guest INVLPG va: drops the vCPU's entry for va — and, if va was part of a guest
 * 2 MiB / 1 GiB page, every piece of it. Drop the shadow entry before Unicorn's own
 * invlpg runs (it then flushes its TLB). */
void shadow_invlpg(struct shadow_mmu *m, unsigned vcpu, uint64_t va);

/* A Unicorn #PF on vCPU vcpu at va with access (decode Unicorn's error code with
 * paging_access_from_error_code). ctx holds the guest's paging controls. */
enum shadow_verdict shadow_fault(struct shadow_mmu *m, unsigned vcpu, const struct paging_ctx *ctx,
                                 uint64_t va, struct paging_access access, struct shadow_fault_info *out);

/* The host evicted gfn: every vCPU's entry for it is cleared (the identity rule makes
 * the reverse map a function: page gfn can only be mapped at va = gfn << 12, so it is
 * one lookup per vCPU, whatever the number of non-resident pages). If gfn held a guest
 * page table, every shadow is dropped (full_tlb_vcpus), since leaves derive from it. */
void shadow_zap_gfn(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out);

/* The simulator wrote guest page gfn (APF shared area, DMA, DAX, a delivery frame through
 * paging_write, the guest image at load): engines that may hold translated code of it are
 * named in out->code_vcpus, and the page counts as dirty for the host. */
void shadow_host_write(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out);

/* Access tracking for reclaim: true if some vCPU's entry for gfn was used since the last
 * call (or its fill) — including entries dropped since by a CR3 load, INVLPG, reset or
 * pool exhaustion, whose accessed flag is remembered when they go. Clears it all and names
 * the TLBs to flush so the next use sets the flags again. Eviction (shadow_zap_gfn)
 * forgets the page's history. */
bool shadow_test_and_clear_accessed(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out);

/* The host's dirty bit for gfn: true if the page may have been written since the last
 * call (a leaf was writable, or shadow_host_write), true for a page never cleaned. Clears
 * it and makes every vCPU's leaf read-only (out->tlb_vcpus must drop the page), so the
 * next write faults once and sets it again. The host calls it after zapping an evicted
 * page (was it written since it came in?) and when a page comes in (it now equals the
 * host's copy). */
bool shadow_test_and_clear_dirty(struct shadow_mmu *m, uint64_t gfn, struct shadow_flush *out);

/* Maps a simulator page (outside guest RAM and the pool, e.g. the TLB-flush stub) at
 * its own address in every vCPU's shadow, supervisor-only, kept across resets. Meant
 * for start-up: it empties every shadow (flush all TLBs if vCPUs already ran). */
bool shadow_pin(struct shadow_mmu *m, uint64_t va, bool writable, bool executable, struct diag *err);

/* The vCPU's shadow leaf for va (0 if none): for tests and debugging. */
uint64_t shadow_leaf(const struct shadow_mmu *m, unsigned vcpu, uint64_t va);

const struct shadow_stats *shadow_stats(const struct shadow_mmu *m);

/* One readable sentence for a verdict, e.g. for a BAD_MAPPING run verdict. */
void shadow_describe(const struct shadow_fault_info *info, char *buf, size_t len);

const char *shadow_verdict_name(enum shadow_verdict v);

#endif
