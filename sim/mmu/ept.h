/* ept.h — the host's (EPT's) state of every 4 KiB guest-physical page: is it in host
 * memory, on the swap device, being read, a page of the virtiofs DAX window, or lost
 * (DESIGN.md §2, §3; docs/mmu.md "EPT").
 *
 * What it is for: answering the shadow MMU's residency question (installed by
 * ept_create: a page that is not resident never gets a present shadow entry, so a guest
 * access to it is an EPT violation), classifying an EPT violation for the host layer, and
 * the page transitions the host layer drives: zero fill, swap-in start/completion,
 * eviction (zapping every vCPU's shadow entry and reporting whether the page was written
 * since it came in), DAX mapping and truncation, I/O errors, pins.
 *
 * Not for: choosing victims or holding the memory budget (reclaim.h), timing or issuing
 * I/O (sim/storage), the DAX file's page cache (sim/storage/dax_file.h: the EPT stores
 * only which file offset a window page maps, and the caller asks the file model), APF
 * decisions (sim/apf). One thread; no global state.
 *
 * Cost: one byte per RAM page and per DAX-window page, plus one record per read in flight
 * (a gfn-keyed table sized by the peak number of reads, never by non-resident pages).
 * Every query and transition is O(1) — O(n_vcpus) where the shadow is zapped.
 *
 * Transitions (every other request is refused, see below):
 *   RAM:  ABSENT       --ept_zero_fill-->            RESIDENT (clean)
 *         ABSENT       --ept_host_loaded-->          RESIDENT (dirty: stored nowhere else;
 *                                                     also from SWAPPED, RESIDENT)
 *         ABSENT       --ept_evict(TO_SWAP)-->       SWAPPED  (a scenario's "this is on swap")
 *         SWAPPED      --ept_start_fetch-->          IN_FLIGHT
 *         IN_FLIGHT    --ept_complete_fetch-->       RESIDENT (clean: equals the device copy)
 *         RESIDENT     --ept_evict-->                SWAPPED, or ABSENT for an unwritten zero fill
 *   DAX:  DAX_UNMAPPED --ept_dax_map-->              DAX_MAPPED (page-cache page present)
 *         DAX_UNMAPPED --ept_start_fetch-->          IN_FLIGHT --ept_complete_fetch--> DAX_MAPPED
 *         DAX_MAPPED   --ept_dax_unmap-->            DAX_UNMAPPED
 *         UNRESOLVABLE --ept_dax_restore-->          DAX_UNMAPPED (the truncated file grew back)
 *   both: any          --ept_mark_unresolvable-->    UNRESOLVABLE (IN_FLIGHT: the read failed)
 * Every other request is refused with a message naming the page, its state and the
 * states the request is legal from; nothing changes then.
 */
#ifndef APFSIM_MMU_EPT_H
#define APFSIM_MMU_EPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "mmu/shadow.h"

#define EPT_MAX_DAX_WINDOWS 4
#define EPT_MAX_PINNED_PAGES 256 /* pins are for a few host-shared pages (APF areas) */
#define EPT_NO_VCPU UINT32_MAX   /* a read the host started on its own (no vCPU waits) */
#define EPT_NO_GFN UINT64_MAX

enum ept_state {
  EPT_ABSENT,       /* RAM the host never populated: the first touch maps a zero page, no I/O */
  EPT_RESIDENT,     /* RAM in host memory: may be mapped */
  EPT_SWAPPED,      /* RAM whose content is on the swap device: a touch reads it back */
  EPT_IN_FLIGHT,    /* a read (swap-in or DAX page cache) is running; its waiters are kept */
  EPT_DAX_UNMAPPED, /* DAX window page not mapped: the file model says whether its page-cache
                       page is there (map at once) or must be read */
  EPT_DAX_MAPPED,   /* DAX window page mapped to its page-cache page */
  EPT_UNRESOLVABLE, /* can never be brought in: truncated file page, I/O error, memory error */
  EPT_NOT_MEMORY,   /* query answer only: the gfn is neither RAM nor a DAX window */
};
#define EPT_N_STATES 8

/* Why a page is unresolvable: for verdicts ("truncated" vs "I/O error"). */
enum ept_loss {
  EPT_LOSS_NONE,
  EPT_LOSS_TRUNCATED,    /* the DAX file was truncated below this page */
  EPT_LOSS_IO_ERROR,     /* the swap device or the file read failed */
  EPT_LOSS_MEMORY_ERROR, /* host memory error (hwpoison) on a resident page */
};

/* The answer to an EPT violation on gfn: what the host must do. */
enum ept_fault_kind {
  EPT_FAULT_RETRY,        /* resident by now (the fault raced a completion): just re-enter */
  EPT_FAULT_ZERO_FILL,    /* ABSENT: ept_zero_fill, no I/O (a host minor fault) */
  EPT_FAULT_SWAP_IN,      /* SWAPPED: read the page from the swap device (ept_start_fetch) */
  EPT_FAULT_IN_FLIGHT,    /* a read of it is running: wait for it (ept_join_fetch); KVM's
                             "repeated fault" when a vCPU faults again on an APF'd page */
  EPT_FAULT_DAX,          /* DAX window page not mapped: ask the file model about file_offset,
                             then ept_dax_map, ept_start_fetch or ept_mark_unresolvable */
  EPT_FAULT_UNRESOLVABLE, /* cannot be satisfied: EFAULT to the VMM (sync) or an error report */
  EPT_FAULT_NOT_MEMORY,   /* no memory at gfn (a hole, MMIO): the platform decides */
};
#define EPT_N_FAULT_KINDS 7

struct ept_fault {
  enum ept_fault_kind kind;
  uint64_t gfn;
  enum ept_state state;
  bool dax;             /* gfn lies in a DAX window ...                      */
  unsigned window;      /* ... this one                                      */
  uint64_t file_offset; /* ... at this byte offset of the file (page aligned) */
  uint64_t waiters;     /* IN_FLIGHT: vCPUs (bit v) waiting for the read     */
  uint64_t ready_ns;    /* IN_FLIGHT: completion time given to ept_start_fetch */
  enum ept_loss loss;   /* UNRESOLVABLE */
};

/* What one transition did: for the caller's follow-up (I/O, TLB flushes, wake-ups). */
struct ept_change {
  uint64_t gfn;
  enum ept_state from, to;
  bool dirty;               /* eviction: written since it came in (or never stored anywhere):
                               with write-back on, the caller writes it to the device */
  uint64_t waiters;         /* completion / failure of a read: vCPUs that waited */
  uint64_t ready_ns;        /* ... the time the read was due */
  struct shadow_flush flush; /* shadow entries zapped or write-protected: act before they run */
};

enum ept_initial {
  EPT_INITIAL_ABSENT,  /* default: RAM starts unpopulated; a touch is a zero fill */
  EPT_INITIAL_SWAPPED, /* every RAM page starts on the swap device (a cold restore) */
};

struct ept_config {
  struct shadow_mmu *shadow; /* required; its guest range must cover RAM and the DAX windows;
                                its vCPUs are the ones waiter masks name */
  uint64_t ram_bytes;        /* guest RAM is [0, ram_bytes): a positive multiple of 4 KiB */
  enum ept_initial initial;
};

struct ept_stats {
  uint64_t pages[EPT_N_STATES]; /* pages in each state now (NOT_MEMORY: 0) */
  uint64_t resident_peak;       /* most RAM pages ever RESIDENT at once */
  uint64_t in_flight_peak;
  uint64_t pinned;              /* pages pinned now */
  uint64_t faults[EPT_N_FAULT_KINDS]; /* ept_classify answers */
  uint64_t zero_fills;
  uint64_t host_loaded;
  uint64_t fetches_started;     /* swap-ins and DAX reads */
  uint64_t fetch_joins;
  uint64_t fetches_completed;
  uint64_t fetches_failed;      /* reads ended by ept_mark_unresolvable */
  uint64_t evictions;           /* RESIDENT pages evicted */
  uint64_t evictions_dirty;     /* ... that had to be written */
  uint64_t evictions_to_absent; /* ... clean pages the host never stored: dropped as zero */
  uint64_t absent_to_swapped;   /* ABSENT pages declared swapped (EPT_EVICT_TO_SWAP) */
  uint64_t dax_maps;
  uint64_t dax_unmaps;
  uint64_t dax_restores;
  uint64_t marked_unresolvable;
  uint64_t refused;             /* illegal requests refused */
};

struct ept;

/* NULL + message on bad geometry. Installs ept_resident as the shadow's residency callback
 * and empties every shadow (vCPUs that already ran must flush their TLBs). */
struct ept *ept_create(const struct ept_config *cfg, struct diag *err);
void ept_destroy(struct ept *e);

/* A virtiofs DAX window: guest pages [gpa, gpa + bytes) map the file's bytes
 * [file_offset, file_offset + bytes). Page aligned, outside RAM and other windows, inside
 * the shadow's guest range. Pages start DAX_UNMAPPED. *window (may be NULL) gets its index. */
bool ept_add_dax_window(struct ept *e, uint64_t gpa, uint64_t bytes, uint64_t file_offset, unsigned *window,
                        struct diag *err);
/* The gfn of a window's file offset (EPT_NO_GFN if the window does not map it). */
uint64_t ept_dax_gfn(const struct ept *e, unsigned window, uint64_t file_offset);

/* ---- queries (O(1)) ---- */
enum ept_state ept_state(const struct ept *e, uint64_t gfn);
/* The shadow MMU's residency callback (ctx = the struct ept): RESIDENT or DAX_MAPPED. */
bool ept_resident(void *ept, uint64_t gfn);
bool ept_pinned(const struct ept *e, uint64_t gfn);
/* On an EPT violation (a SHADOW_HOST_FAULT on gfn): what the host must do. Counts it. */
void ept_classify(struct ept *e, uint64_t gfn, struct ept_fault *out);
uint64_t ept_ram_pages(const struct ept *e);
uint64_t ept_resident_pages(const struct ept *e); /* RAM pages RESIDENT now */
struct shadow_mmu *ept_shadow(const struct ept *e);
const struct ept_stats *ept_stats(const struct ept *e);
/* Heap bytes the EPT holds: fixed by RAM and window sizes, plus the in-flight table. */
size_t ept_memory_bytes(const struct ept *e);

/* ---- transitions: false + message (nothing changed) when illegal. out may be NULL. ---- */

/* ABSENT → RESIDENT: a zero page, clean (evicting it unwritten drops it back to ABSENT). */
bool ept_zero_fill(struct ept *e, uint64_t gfn, struct diag *err);
/* Before the run: the simulator wrote [gpa, gpa + bytes) (guest image, boot data). Those
 * RAM pages become RESIDENT and dirty (no copy exists anywhere else). From ABSENT,
 * RESIDENT or SWAPPED (EPT_INITIAL_SWAPPED); refused as a whole if any page is in
 * another state. With a memory limit, call reclaim_balance after loading. */
bool ept_host_loaded(struct ept *e, uint64_t gpa, uint64_t bytes, struct diag *err);
/* SWAPPED or DAX_UNMAPPED → IN_FLIGHT: a read due at ready_ns, started for vcpu
 * (EPT_NO_VCPU: nobody waits yet). */
bool ept_start_fetch(struct ept *e, uint64_t gfn, unsigned vcpu, uint64_t ready_ns, struct diag *err);
/* IN_FLIGHT: vcpu now waits for the read too. */
bool ept_join_fetch(struct ept *e, uint64_t gfn, unsigned vcpu, struct diag *err);
/* IN_FLIGHT → RESIDENT (clean: it equals the device's copy) or DAX_MAPPED; out->waiters.
 * With a memory limit, call reclaim_balance right after (reclaim.h). */
bool ept_complete_fetch(struct ept *e, uint64_t gfn, struct ept_change *out, struct diag *err);
/* DAX_UNMAPPED → DAX_MAPPED: the page-cache page is there, no read needed. */
bool ept_dax_map(struct ept *e, uint64_t gfn, struct diag *err);
/* DAX_MAPPED → DAX_UNMAPPED (the host dropped the page-cache page): zaps the shadow. */
bool ept_dax_unmap(struct ept *e, uint64_t gfn, struct ept_change *out, struct diag *err);

#define EPT_EVICT_TO_SWAP (1u << 0) /* end SWAPPED even if the page holds nothing the device
                                       lacks (scripted evictions: "this range is on swap");
                                       also makes an ABSENT page SWAPPED */
/* RESIDENT (not pinned) → SWAPPED: zaps every vCPU's shadow entry (out->flush) and says
 * whether the page was written since it came in (out->dirty; a page the host never stored
 * is dirty unless it is an unwritten zero fill). Without EPT_EVICT_TO_SWAP a clean page
 * that came from a zero fill goes back to ABSENT (nothing to store). */
bool ept_evict(struct ept *e, uint64_t gfn, unsigned flags, struct ept_change *out, struct diag *err);

/* Any memory state → UNRESOLVABLE for `loss` (not NONE): zaps the shadow if mapped; an
 * IN_FLIGHT page's read failed and out->waiters must be told. Pins stay (they only
 * matter to eviction). Refused for a page already UNRESOLVABLE. */
bool ept_mark_unresolvable(struct ept *e, uint64_t gfn, enum ept_loss loss, struct ept_change *out,
                           struct diag *err);
/* UNRESOLVABLE (a truncated DAX page) → DAX_UNMAPPED: the file grew back over it. */
bool ept_dax_restore(struct ept *e, uint64_t gfn, struct diag *err);

/* Host truncation of the DAX file of `window`: every window page mapping a file page in
 * [first_file_page, first_file_page + n_pages) becomes UNRESOLVABLE (TRUNCATED), zapped.
 * Pages whose read is in flight stay IN_FLIGHT: the file model fails that read, and the
 * caller then calls ept_mark_unresolvable. *flush (may be NULL) collects the TLB work
 * (full_tlb_vcpus: every vCPU that lost an entry). Returns the pages changed. */
uint64_t ept_dax_truncate(struct ept *e, unsigned window, uint64_t first_file_page, uint64_t n_pages,
                          struct shadow_flush *flush);

/* Pins keep a page from being evicted (APF shared areas the host writes at any time).
 * Counted: n pins need n unpins. RAM pages only. */
bool ept_pin(struct ept *e, uint64_t gfn, struct diag *err);
bool ept_unpin(struct ept *e, uint64_t gfn, struct diag *err);

/* Reclaim's view: a page is a candidate while it is a RESIDENT, unpinned RAM page. The
 * observer hears every change of that (in gfn-independent, call order), so reclaim keeps
 * its lists without scanning. One observer; NULL removes it. */
typedef void (*ept_candidate_fn)(void *ctx, uint64_t gfn, bool candidate);
void ept_set_candidate_observer(struct ept *e, ept_candidate_fn fn, void *ctx);
bool ept_candidate(const struct ept *e, uint64_t gfn);

const char *ept_state_name(enum ept_state s);
const char *ept_fault_kind_name(enum ept_fault_kind k);
const char *ept_loss_name(enum ept_loss l);
/* One sentence, e.g. "EPT violation on gfn 0x1234: swapped out: read it from the swap device". */
void ept_describe_fault(const struct ept_fault *f, char *buf, size_t len);

#endif
