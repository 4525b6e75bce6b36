/* vcpu_internal.h — the vCPU's state and the interfaces between its files:
 * vcpu.c (creation, run loop, counting, exception hooks), blocks.c (decoded
 * translation blocks), sites.c (intercepted instruction sites), deliver.c
 * (event delivery), msr.c (MSR and CPUID emulation), watch.c (watched
 * addresses).
 * Not for: anything outside sim/cpu/. */
#ifndef APFSIM_CPU_VCPU_INTERNAL_H
#define APFSIM_CPU_VCPU_INTERNAL_H

#include <stdarg.h>

#include <capstone/capstone.h>

#include "cpu/unicorn_backend.h"
#include "cpu/vcpu.h"
#include "mmu/paging.h"

/* Architectural constants used across files. */
#define RFLAGS_CF (UINT64_C(1) << 0)
#define RFLAGS_PF (UINT64_C(1) << 2)
#define RFLAGS_AF (UINT64_C(1) << 4)
#define RFLAGS_ZF (UINT64_C(1) << 6)
#define RFLAGS_SF (UINT64_C(1) << 7)
#define RFLAGS_TF (UINT64_C(1) << 8)
#define RFLAGS_IF (UINT64_C(1) << 9)
#define RFLAGS_OF (UINT64_C(1) << 11)
#define RFLAGS_IOPL (UINT64_C(3) << 12)
#define RFLAGS_NT (UINT64_C(1) << 14)
#define RFLAGS_RF (UINT64_C(1) << 16)
#define RFLAGS_VM (UINT64_C(1) << 17)
#define RFLAGS_AC (UINT64_C(1) << 18)

#define CR0_WP (UINT64_C(1) << 16)
#define CR4_TSD (UINT64_C(1) << 2)
#define CR4_SMEP (UINT64_C(1) << 20)
#define CR4_SMAP (UINT64_C(1) << 21)

#define EFER_SCE (UINT64_C(1) << 0)
#define EFER_LME (UINT64_C(1) << 8)
#define EFER_LMA (UINT64_C(1) << 10)
#define EFER_NXE (UINT64_C(1) << 11)

/* Vectors (SDM vol. 3A table 6-1). */
enum {
  VEC_DE = 0, VEC_DB = 1, VEC_NMI = 2, VEC_BP = 3, VEC_OF = 4, VEC_BR = 5, VEC_UD = 6, VEC_NM = 7,
  VEC_DF = 8, VEC_TS = 10, VEC_NP = 11, VEC_SS = 12, VEC_GP = 13, VEC_PF = 14, VEC_MF = 16,
  VEC_AC = 17, VEC_MC = 18, VEC_XM = 19, VEC_VE = 20,
};

/* ---------- translation blocks (blocks.c) ---------- */

#define BI_REP_ONLY 0x1 /* the block is one REP string instruction */
#define BI_ADDR32 0x2   /* ... with a 0x67 prefix: the count is ECX */
#define BI_PUSHF 0x4    /* the first instruction is PUSHFQ (single-step TF leak) */
#define BI_LAST_IRET 0x8 /* the last instruction is an IRET (RF may stay set after it) */

struct block_info {
  uint64_t addr;
  uint64_t head; /* the block's first 8 code bytes (fewer if shorter, zero-padded): detects rewritten code */
  uint32_t size;
  uint16_t icount;
  uint8_t flags;
  uint16_t *off; /* icount instruction offsets, ascending */
  struct block_info *next;
};

struct block_cache {
  struct block_info **bucket;
  size_t n_buckets, n_blocks;
  /* bump arena for entries and offset arrays (freed at destroy) */
  uint8_t **chunks;
  size_t n_chunks, chunk_used;
};

void blocks_init(struct block_cache *c);
void blocks_free(struct block_cache *c);
static inline size_t blocks_hash(uint64_t addr, uint32_t size, size_t mask) {
  uint64_t h = (addr ^ ((uint64_t)size << 40)) * UINT64_C(0x9e3779b97f4a7c15);
  return (size_t)(h >> 40) & mask;
}
static inline uint64_t blocks_head(const uint8_t *code, uint32_t size) {
  uint64_t h = 0;
  if (__builtin_expect(size >= 8, 1))
    __builtin_memcpy(&h, code, 8); /* one load on the hot path */
  else
    __builtin_memcpy(&h, code, size);
  return h;
}
static inline struct block_info *blocks_find(const struct block_cache *c, uint64_t addr, uint32_t size) {
  for (struct block_info *b = c->bucket[blocks_hash(addr, size, c->n_buckets - 1)]; b; b = b->next)
    if (b->addr == addr && b->size == size) return b;
  return NULL;
}
struct vcpu;
/* Decodes a new block; may find instruction sites without hooks (they are
 * queued on v) or instructions apfsim refuses (exit set). NULL on failure. */
struct block_info *blocks_learn(struct vcpu *v, uint64_t addr, uint32_t size);
/* Index of the instruction at addr in b, or -1. */
int blocks_index(const struct block_info *b, uint64_t addr);
void blocks_drop_range(struct block_cache *c, uint64_t start, uint64_t end);

/* ---------- intercepted instruction sites (sites.c) ---------- */

enum site_kind {
  SITE_RDMSR, SITE_WRMSR, SITE_RDTSC, SITE_RDTSCP, SITE_RDRAND, SITE_RDSEED,
  SITE_MOV_TO_CR3, SITE_MOV_FROM_CR3, SITE_CR3_RESTORE, SITE_MOV_TO_CR2, SITE_INVLPG,
  SITE_IRETQ, SITE_HLT, SITE_STI, SITE_POPF, SITE_IN, SITE_OUT,
  SITE_MOV_TO_CR0, SITE_MOV_FROM_CR0, SITE_MOV_TO_CR4, SITE_CPUID,
  SITE_KINDS
};

struct site {
  uint64_t addr;
  uint8_t len;
  uint8_t kind;
  uint8_t bytes;   /* operand size: IN/OUT, RDRAND/RDSEED */
  int reg;         /* Unicorn id of the GPR operand (CR moves, RDRAND), -1 if none */
  int port;        /* IN/OUT immediate port, -1 for DX */
  struct { int seg, base, index, scale; int64_t disp; } mem; /* INVLPG operand */
  bool restore_cr3; /* also the instruction after a MOV to CR3: give the guest its register back */
  uc_hook hook;
  bool hooked;
  struct vcpu *v;
  struct site *next;
};

#define SITE_BUCKETS 1024
struct site_table {
  struct site *bucket[SITE_BUCKETS];
  size_t n;
  size_t counts[SITE_KINDS];
};

/* What decoding one instruction means for the vCPU. */
enum insn_class { INSN_PLAIN, INSN_SITE, INSN_REFUSED };
/* Classifies insn; fills *s for sites (addr, len, kind, operands) or a
 * reason for refused ones. */
enum insn_class sites_classify(struct vcpu *v, const cs_insn *insn, struct site *s, const char **why);
struct site *sites_find(struct vcpu *v, uint64_t addr);
/* Records the site described by proto (merging with one already at its
 * address); a new one is queued for hooking. NULL when out of memory. */
struct site *sites_note(struct vcpu *v, const struct site *proto);
/* Hooks every recorded site that has no hook yet; returns how many. */
size_t sites_hook_pending(struct vcpu *v, uint64_t *lo, uint64_t *hi);
bool sites_scan(struct vcpu *v, uint64_t start, uint64_t end, struct diag *err);
void sites_free(struct vcpu *v);
/* Forgets (and unhooks) the sites in [start, end): the code there changed. */
void sites_drop_range(struct vcpu *v, uint64_t start, uint64_t end);

/* ---------- watched addresses (watch.c) ---------- */

struct watch {
  uint64_t addr, nth, count;
  uint64_t last_arrival; /* retired count before addr at the last counted arrival; UINT64_MAX: none */
  bool reported;         /* its stop happened */
  int id;
  uc_hook hook;
  struct vcpu *v;
};

/* An arrival at addr, the next instruction to run (called from code hooks
 * before anything else touches the instruction): counts it on the watches
 * there and, when one reaches its nth, stops the run before it (STOP_WATCH)
 * and returns true. A site hook at a watched address calls it first, since
 * Unicorn runs the hooks of one address in the order they were added. */
bool watch_arrive(struct vcpu *v, uint64_t addr);
void watches_free(struct vcpu *v);

/* ---------- events (deliver.c) ---------- */

enum event_kind {
  EVENT_FAULT,    /* exception reported on the instruction (pushed RIP = it, RF = 1) */
  EVENT_TRAP,     /* exception reported after the instruction */
  EVENT_SOFT_INT, /* INT n / INT3 / INTO: DPL-checked, RF = 0 */
  EVENT_NMI,
  EVENT_IRQ,
};

struct event {
  enum event_kind kind;
  uint8_t vector;
  bool has_error;
  uint32_t error_code;
  uint64_t cr2;      /* #PF: the faulting address */
  uint64_t rip;      /* the RIP pushed */
  uint64_t insn_rip; /* SOFT_INT: the INT instruction (a fault it raises points there) */
  bool injected;     /* from the platform: charged and re-queued on a host fault */
};

/* Delivers ev per SDM §6.14, with #DF/triple fault per §6.15. True when a
 * handler was entered; false when an exit was set (triple fault, host fault
 * during delivery, internal error). Works inside hooks and between runs. */
bool deliver_event(struct vcpu *v, const struct event *ev);
bool vector_has_error_code(unsigned vector);

/* ---------- MSRs and CPUID (msr.c) ---------- */

enum msr_status { MSR_DONE, MSR_RAISE_GP, MSR_DONE_EXIT, MSR_DONE_SHUTDOWN, MSR_DONE_FLUSH };
enum msr_status msr_read(struct vcpu *v, uint32_t index, uint64_t *value);
enum msr_status msr_write(struct vcpu *v, uint32_t index, uint64_t value);
void cpuid_answer(struct vcpu *v, uint32_t leaf, uint32_t subleaf, uint32_t r[4]);

/* ---------- the vCPU ---------- */

enum stop_reason {
  STOP_NONE,
  STOP_BUDGET,    /* the next block would pass stop_at (block-hook stop, nothing ran) */
  STOP_LEARN,     /* new sites need hooks; the block did not run */
  STOP_RELEARN,   /* the code of a known block changed; the block did not run */
  STOP_HLT,       /* before a HLT site */
  STOP_WINDOW,    /* before STI/POPF/IRETQ while an event waits for the window */
  STOP_COMPLETED, /* an emulated instruction completed; RIP := resume_rip */
  STOP_FLUSH,     /* this vCPU's TLB must be flushed before going on (RIP := resume_rip) */
  STOP_UD,        /* #UD from the invalid-instruction hook */
  STOP_WATCH,     /* before a watched instruction (RIP := resume_rip); stop_watch says which */
  STOP_EXIT,      /* exit already filled */
};

struct vcpu {
  unsigned id;
  struct ubk be;
  uc_engine *uc;
  uint8_t *mem;
  uint64_t mem_bytes;
  struct guest_mem gmem;      /* own view without shadowing */
  const struct guest_mem *gm; /* the one in use (the shadow MMU's, with residency, when shadowing) */
  struct vcpu_platform pf;
  struct vcpu_msr_table *msrs;
  struct shadow_mmu *shadow; /* NULL: the guest's own tables */
  bool has_mmu;
  struct vcpu **peers;
  unsigned n_peers;
  uint64_t guest_cr0, guest_cr4; /* the guest's view when shadowing (Unicorn's CR0.WP is forced on) */
  /* TLB-flush stub (shadowing only): its page, and the context it borrows */
  uint8_t *stub_page;
  uc_context *stub_ctx;
  bool in_stub, stub_failed;
  /* flushes other vCPUs (or this one's own hooks) asked for: done before the next guest instruction */
  bool flush_all;
  unsigned n_flush_pages, n_code_pages, cap_code_pages;
  uint64_t flush_pages[16];
  uint64_t *code_pages;
  struct vcpu_costs costs;
  uint16_t uncosted_out_port; /* vcpu_config's */
  uint32_t kvm_features;
  bool enforce_pv_cpuid, cpuid_x2apic, gbpages;
  csh cs;
  cs_insn *insn;
  uc_hook hooks[3];

  /* counting */
  uint64_t retired;  /* block-level: includes the whole current block while it runs */
  uint64_t stop_at;  /* absolute count the current uc_emu_start must not pass */
  struct block_info *cur;
  struct block_cache blocks;
  bool stepping;
  uint64_t saved_dr6;

  /* run */
  enum stop_reason stop;
  uint64_t resume_rip;
  uint32_t relearn_size;
  struct site *stop_site;
  struct vcpu_exit *exit; /* the current run's, or idle_exit between runs */
  struct vcpu_exit idle_exit;
  enum vcpu_exit_reason completed_exit; /* STOP_COMPLETED: REQUEST or SHUTDOWN, or QUANTUM to go on */
  bool completed_wants_exit;
  uint64_t target;
  bool want_window; /* an event waits for IF/NMI unblocking: window sites stop */

  /* architectural state kept here, not in Unicorn */
  uint64_t cr2;
  uint64_t guest_cr3;
  uint64_t efer;
  uint64_t star, lstar, cstar, sfmask, tsc_aux, pat, sysenter_cs, sysenter_esp, sysenter_eip;
  bool nmi_blocked, nmi_pending, halted, shut_down;
  bool irq_line;
  bool exc_queued;
  struct event queued_exc;
  bool irq_vector_held; /* an acknowledged vector whose delivery hit a host fault */
  uint8_t held_vector;
  uint64_t iret_site, iret_retired; /* an IRETQ that unblocked NMIs, until it completes */
  bool iret_pending;
  uint64_t sti_retired; /* count right after the last STI (its shadow does not block NMI) */
  int cr3_reg;          /* GPR holding the shadow root during a guest MOV to CR3, or -1 */
  uint64_t window_pass; /* a window site the run loop steps natively (its hook stays quiet once) */
  bool iret_step;       /* stepping an IRETQ that will unblock a latched NMI */
  uint64_t iret_step_before;
  bool resume_valid;    /* after STOP_EXIT: set RIP to resume_rip */
  char triple_msg[256];

  /* cycles: instructions x cpi plus extra, in milli-cycles */
  uint64_t extra_mcycles;
  bool cycle_bound;       /* vcpu_run_cycles: target follows limit_mcycles */
  uint64_t limit_mcycles;

  struct site_table sites;
  struct site **pending_sites; /* recorded, to be hooked at the next stop */
  size_t n_pending, cap_pending;

  struct watch **watches; /* by id (hooks keep pointers: never moved) */
  size_t n_watches;
  int stop_watch;
};

/* vcpu.c helpers used by the other files */
bool vcpu_set_exit(struct vcpu *v, enum vcpu_exit_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vcpu_charge(struct vcpu *v, enum vcpu_cost_kind kind, uint64_t cycles);
/* The instruction at addr in the current block did not retire (fault, or
 * the simulator takes it over): drop it and the rest of the block. */
bool vcpu_abort_at(struct vcpu *v, uint64_t addr);
/* The count of instructions retired before the one at addr of the current
 * block (v->retired includes the whole block while it runs). */
uint64_t vcpu_count_before(const struct vcpu *v, uint64_t addr);
void vcpu_guest_paging(struct vcpu *v, struct paging_ctx *p);
/* Queues a shadow_flush on the vCPUs it names (this one included). */
void vcpu_queue_flush(struct vcpu *v, const struct shadow_flush *f);
bool vcpu_flush_pending(const struct vcpu *v);
uint64_t rd(struct vcpu *v, int reg);
void wr(struct vcpu *v, int reg, uint64_t value);

#endif
