/* vcpu.h — one simulated x86-64 CPU running real guest code in Unicorn 2.0.1.
 *
 * The vCPU executes guest instructions to an exact retired-instruction count,
 * plays the hardware Unicorn lacks (delivery of exceptions, NMIs and external
 * interrupts through the guest's IDT and TSS, NMI and interrupt blocking,
 * #DF and triple fault), and turns every instruction that would leak host
 * state or needs the platform (RDMSR/WRMSR, CPUID, port I/O, RDTSC, RDRAND,
 * HLT, CR3/CR2 moves, INVLPG) into a call the simulator answers.
 *
 * Guest memory is one host buffer shared by every vCPU; guest virtual =
 * guest physical = Unicorn address (DESIGN.md §7). Page tables are the
 * guest's own, or shadows owned by the MMU when one is given.
 *
 * Counting rule: one instruction per instruction executed, and one per
 * iteration of a REP string instruction (a REP with count 0 counts one) —
 * exactly the number of x86 single-step traps the code would raise.
 *
 * Not for: the local APIC, the APF policy, time keeping. Those live in other
 * modules and reach the vCPU through the callbacks and the injection API
 * below. Details: docs/vcpu.md; Unicorn facts: docs/unicorn-notes.md. */
#ifndef APFSIM_CPU_VCPU_H
#define APFSIM_CPU_VCPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "mmu/shadow.h"

struct vcpu;
struct vcpu_msr_table;

/* ---------- exits ---------- */

enum vcpu_exit_reason {
  VCPU_EXIT_QUANTUM,        /* max_instructions retired */
  VCPU_EXIT_HLT,            /* HLT retired and nothing to deliver; RIP after the HLT */
  VCPU_EXIT_EPT_VIOLATION,  /* a guest page is not resident: ept.* says which; retry by running again */
  VCPU_EXIT_REQUEST,        /* a callback returned VCPU_CB_EXIT; its instruction has completed */
  VCPU_EXIT_TRIPLE_FAULT,   /* the vCPU shut down; message names the events */
  VCPU_EXIT_SHUTDOWN,       /* a callback asked for it, or the vCPU had shut down before */
  VCPU_EXIT_INTERNAL_ERROR, /* the simulator cannot go on; message says why */
  VCPU_EXIT_WATCH,          /* a watched address on its n-th execution: RIP on it, not run; exit.watch says which */
};

enum vcpu_access { VCPU_ACCESS_READ, VCPU_ACCESS_WRITE, VCPU_ACCESS_FETCH };

struct vcpu_exit {
  enum vcpu_exit_reason reason;
  uint64_t instructions; /* retired during this run */
  uint64_t cycles;       /* charged during this run (instructions and event costs) */
  uint64_t rip;          /* where the guest goes on */
  struct {
    uint64_t gpa, gva;
    enum vcpu_access access;
    bool during_delivery; /* an IDT/TSS/stack access of event delivery: resolve synchronously */
  } ept;
  int watch; /* VCPU_EXIT_WATCH: the id vcpu_watch returned */
  char message[256];
};

const char *vcpu_exit_reason_name(enum vcpu_exit_reason r);

/* ---------- costs (cycles; the config module supplies sourced defaults) ---------- */

struct vcpu_costs {
  uint32_t cpi_milli;              /* cycles per guest instruction x 1000 */
  uint64_t vm_exit_cycles;         /* each exit to the host: CPUID, exiting MSRs, port I/O, HLT, EPT */
  uint64_t vm_entry_cycles;        /* each entry back */
  uint64_t event_injection_cycles; /* each event injected by the platform (queued exception, NMI, IRQ) */
  uint64_t msr_access_cycles;      /* host work of an exiting RDMSR/WRMSR */
  uint64_t apic_access_cycles;     /* host work of an x2APIC MSR access (0x800-0x8ff) */
  uint64_t cpuid_cycles;           /* host work of CPUID */
  uint64_t io_access_cycles;       /* host work of IN/OUT */
  uint64_t ept_violation_cycles;   /* host work of an EPT violation exit (before the platform's I/O) */
};

enum vcpu_cost_kind {
  VCPU_COST_EXIT_ENTRY, /* vm_exit + vm_entry */
  VCPU_COST_INJECTION,
  VCPU_COST_MSR,
  VCPU_COST_APIC,
  VCPU_COST_CPUID,
  VCPU_COST_IO,
  VCPU_COST_EPT,
};

/* ---------- platform callbacks (any may be NULL) ---------- */

enum vcpu_cb {
  VCPU_CB_OK,
  VCPU_CB_EXIT,     /* complete the instruction, then end the run with VCPU_EXIT_REQUEST */
  VCPU_CB_SHUTDOWN, /* complete the instruction, then end the run with VCPU_EXIT_SHUTDOWN */
};

struct vcpu_platform {
  void *ctx;
  /* RDTSC/RDTSCP/IA32_TSC at the current instruction. NULL: the TSC counts
   * this vCPU's cycles (vcpu_cycles). */
  uint64_t (*tsc)(void *ctx, struct vcpu *v);
  /* RDRAND (seed false) / RDSEED (true): 64 bits from the seeded stream.
   * false or NULL: the instruction reports no entropy (CF = 0). */
  bool (*random)(void *ctx, struct vcpu *v, bool seed, uint64_t *value);
  /* Port I/O. NULL in: all ones; NULL out: ignored. */
  enum vcpu_cb (*port_in)(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t *value);
  enum vcpu_cb (*port_out)(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t value);
  /* CPUID override: true when regs (eax ebx ecx edx) hold the answer. */
  bool (*cpuid)(void *ctx, struct vcpu *v, uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
  /* Interrupt acknowledge: the vector of the interrupt being taken now (the
   * APIC moves it from IRR to ISR), or -1 if none is pending any more. */
  int (*irq_ack)(void *ctx, struct vcpu *v);
  /* Every non-instruction cost as it is charged (for statistics). */
  void (*account)(void *ctx, struct vcpu *v, enum vcpu_cost_kind kind, uint64_t cycles);
};

/* ---------- MSR dispatch ---------- */

enum vcpu_msr_result {
  VCPU_MSR_OK,
  VCPU_MSR_GP,       /* #GP(0) to the guest */
  VCPU_MSR_EXIT,     /* OK, then end the run (VCPU_EXIT_REQUEST) */
  VCPU_MSR_SHUTDOWN, /* OK, then end the run (VCPU_EXIT_SHUTDOWN) */
};

struct vcpu_msr_handler {
  const char *name;
  uint32_t first, last;    /* MSR indexes [first, last] */
  uint64_t write_reserved; /* WRMSR setting any of these bits is #GP (checked before write) */
  uint32_t pv_feature;     /* CPUID 0x40000001 EAX bit(s) the MSR belongs to; 0 = none */
  bool no_exit;            /* accessed without a VM exit (no exit/entry cost) */
  enum vcpu_msr_result (*read)(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value); /* NULL: #GP */
  enum vcpu_msr_result (*write)(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value); /* NULL: #GP */
  void *ctx;
};

/* One table per machine, shared by its vCPUs. The vCPU itself owns EFER,
 * STAR/LSTAR/CSTAR/SFMASK, FS/GS/KERNEL_GS base, TSC_AUX, IA32_TSC, PAT and
 * the SYSENTER MSRs; registering any of those, or overlapping ranges, fails. */
struct vcpu_msr_table *vcpu_msr_table_new(void);
void vcpu_msr_table_free(struct vcpu_msr_table *t);
bool vcpu_msr_register(struct vcpu_msr_table *t, const struct vcpu_msr_handler *h, struct diag *err);

/* ---------- memory virtualization (optional) ---------- */

/* With a shadow MMU (sim/mmu/shadow.h), Unicorn's CR3 holds the vCPU's
 * shadow root and every Unicorn #PF goes to shadow_fault(): filled (the
 * instruction retries; the guest's CR2 is put back), guest fault (#PF with
 * the walker's error code), host fault (VCPU_EXIT_EPT_VIOLATION, RIP on the
 * instruction) or bad mapping (internal error). Guest MOV to/from CR3,
 * INVLPG and MOV to/from CR0/CR4 are intercepted. Without one, the guest's
 * own tables are loaded into Unicorn and every #PF is the guest's. */

/* Once per machine, before any vCPU runs: pins the page holding the vCPUs'
 * TLB-flush stub (VCPU_STUB_VA, just below 64 GiB: below 2^MAXPHYADDR for
 * any MAXPHYADDR >= 36, so guest RAM and the pool must end below it) in
 * every shadow. */
#define VCPU_STUB_VA UINT64_C(0xffffff000)
bool vcpu_shadow_setup(struct shadow_mmu *m, struct diag *err);

/* Carries out a shadow_flush (from shadow_fault on another vCPU,
 * shadow_zap_gfn, shadow_host_write ...) on the vCPUs it names; each does its
 * part before it next runs guest code. */
void vcpu_apply_shadow_flush(struct vcpu *const *peers, unsigned n_peers, const struct shadow_flush *f);

/* ---------- creation ---------- */

struct vcpu_text_range {
  uint64_t start, end; /* guest addresses [start, end) holding code */
};

struct vcpu_config {
  unsigned id;
  uint8_t *mem;       /* guest RAM at offset 0 (shared by all vCPUs); page aligned */
  uint64_t mem_bytes; /* guest RAM, multiple of 4 KiB */
  unsigned maxphyaddr; /* 0: 46 */
  /* Guest code scanned at creation for the instructions the vCPU
   * intercepts; code found later (not in these ranges) is scanned when first
   * executed. A range holding an instruction apfsim cannot emulate fails. */
  const struct vcpu_text_range *text;
  size_t n_text;
  const struct vcpu_platform *platform;
  struct vcpu_msr_table *msrs;
  /* NULL: the guest's own page tables. Else mem must also hold the shadow
   * pool at [shadow_base, shadow_base + shadow_bytes) (the same buffer). */
  struct shadow_mmu *shadow;
  uint64_t shadow_base, shadow_bytes;
  /* The machine's vCPUs by id, shared (vcpu_create stores itself at
   * peers[id]): flushes a vCPU's faults ask of others are queued on them. */
  struct vcpu **peers;
  unsigned n_peers;
  struct vcpu_costs costs;
  uint32_t kvm_features;  /* CPUID 0x40000001 EAX */
  bool enforce_pv_cpuid;  /* KVM_CAP_ENFORCE_PV_FEATURE_CPUID: #GP on MSRs whose feature is not offered */
  bool cpuid_x2apic;      /* advertise x2APIC (CPUID 1 ECX bit 21) */
  /* 0: none. An OUT to this port costs no exit, entry or I/O cycles: the simulator's own
   * observation channel (the guest reporting its context switches), which a real guest
   * would not have, so it must not slow the guest down. The callback still runs. */
  uint16_t uncosted_out_port;
};

/* Runs every probe of Unicorn behaviour apfsim relies on. Call once at
 * start-up; false with a message naming the behaviour that differs. */
bool vcpu_backend_selfcheck(struct diag *err);

struct vcpu *vcpu_create(const struct vcpu_config *cfg, struct diag *err);
void vcpu_destroy(struct vcpu *v);

/* Long mode, set up directly. The GDT (and TSS, if tr != 0) must already be
 * in guest memory: descriptor caches are loaded from it. */
struct vcpu_boot {
  uint64_t rip, rsp, rflags;
  uint64_t cr0, cr3, cr4, efer; /* cr3: the guest's; efer must have LME|LMA */
  uint64_t gdt_base, idt_base;
  uint16_t gdt_limit, idt_limit;
  uint16_t cs, ss, ds, tr; /* tr 0: no TSS yet */
};
bool vcpu_boot(struct vcpu *v, const struct vcpu_boot *b, struct diag *err);

/* A flat GDT at gdt_gpa: 0x10 kernel code, 0x18 kernel data, 0x2b user data,
 * 0x33 user code (all 64-bit), 0x40 a 64-bit TSS at tss_gpa (limit 0x67).
 * Returns the limit for GDTR. */
#define VCPU_SEL_KERNEL_CS 0x10
#define VCPU_SEL_KERNEL_DS 0x18
#define VCPU_SEL_USER_DS 0x2b
#define VCPU_SEL_USER_CS 0x33
#define VCPU_SEL_TSS 0x40
uint16_t vcpu_write_flat_gdt(uint8_t *mem, uint64_t gdt_gpa, uint64_t tss_gpa);

/* ---------- running ---------- */

/* Delivers what is pending and deliverable, then runs until exactly
 * max_instructions more instructions have retired or an exit happens first.
 * Always fills *exit; returns false only for VCPU_EXIT_INTERNAL_ERROR. */
bool vcpu_run(struct vcpu *v, uint64_t max_instructions, struct vcpu_exit *exit);

/* The same, bounded by simulated time: an instruction starts only if, at
 * cpi_milli per instruction, it completes within max_cycles of now; costs
 * charged on the way (exits, injections) shrink what is left, so the vCPU
 * stops at the instruction where its local time reaches the next event. An
 * exit's own cost may end past the bound. Needs cpi_milli > 0. */
bool vcpu_run_cycles(struct vcpu *v, uint64_t max_cycles, struct vcpu_exit *exit);

/* ---------- injection (delivered at the next instruction boundary) ---------- */

#define VCPU_NO_ERROR_CODE UINT32_MAX
/* An exception from the platform (e.g. an APF #PF with error code 0 and
 * CR2 = token). cr2 is used for vector 14 only. Replaces a queued one. */
void vcpu_queue_exception(struct vcpu *v, uint8_t vector, uint32_t error_code, uint64_t cr2);
/* An NMI; while NMIs are blocked one is latched, more are dropped. */
void vcpu_queue_nmi(struct vcpu *v);
/* The APIC's INTR line. When it is high, IF = 1 and no shadow blocks, the
 * vCPU calls platform->irq_ack and delivers the vector it returns. */
void vcpu_set_irq_line(struct vcpu *v, bool pending);

/* ---------- watched addresses ---------- */

/* Counts the executions of the instruction at guest address addr (an
 * instruction boundary; the caller knows the code) and ends the run right
 * before its nth execution (nth 0: count only): VCPU_EXIT_WATCH with RIP ==
 * addr, the instruction neither run nor counted in vcpu_retired, exit.watch
 * the id returned here. Each watch stops once; running again executes the
 * instruction. An execution is an arrival at addr at a new retired count: a
 * retry of the same instruction (after a shadow fill, a host fault or a stop)
 * counts once, a return to it after an exception or interrupt handler counts
 * again. Costs nothing until addr runs (one Unicorn code hook on that
 * address); code already translated around addr is dropped for that range
 * only, never the whole translation cache. Returns the id (>= 0), or -1 with
 * err set. */
int vcpu_watch(struct vcpu *v, uint64_t addr, uint64_t nth, struct diag *err);
uint64_t vcpu_watch_count(const struct vcpu *v, int id); /* executions so far */

/* ---------- state ---------- */

struct vcpu_regs {
  uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rip, rflags;
};

struct vcpu_sregs {
  uint16_t cs, ss, ds, es, fs, gs, tr;
  unsigned cpl;
  uint64_t fs_base, gs_base, kernel_gs_base;
  uint64_t cr0, cr2, cr3, cr4, efer; /* the guest's view */
  uint64_t gdt_base, idt_base;
  uint16_t gdt_limit, idt_limit;
};

void vcpu_get_regs(struct vcpu *v, struct vcpu_regs *r);
void vcpu_set_regs(struct vcpu *v, const struct vcpu_regs *r); /* also ends a HLT */
void vcpu_get_sregs(struct vcpu *v, struct vcpu_sregs *s);
uint64_t vcpu_cr2(const struct vcpu *v);
void vcpu_set_cr2(struct vcpu *v, uint64_t cr2);

unsigned vcpu_id(const struct vcpu *v);
uint64_t vcpu_retired(const struct vcpu *v); /* since creation */
uint64_t vcpu_cycles(const struct vcpu *v);  /* since creation, at the current instruction */
bool vcpu_halted(const struct vcpu *v);
bool vcpu_nmi_blocked(const struct vcpu *v);
bool vcpu_nmi_pending(const struct vcpu *v);

/* What the host's APF decision asks between runs (DESIGN.md §2: a fault is
 * handled synchronously when guest interrupts are disabled or shadowed, or
 * an event is pending or being re-injected). */
bool vcpu_interrupts_blocked(struct vcpu *v); /* RFLAGS.IF = 0, or an STI / MOV SS shadow */
bool vcpu_exception_pending(const struct vcpu *v); /* queued by the platform, not yet delivered */
bool vcpu_event_reinjecting(const struct vcpu *v); /* an acknowledged interrupt whose delivery hit a host fault */

/* Guest code at [gpa, gpa+bytes) changed (written by the host, another vCPU
 * or a DMA): drop what was translated from it. */
void vcpu_code_changed(struct vcpu *v, uint64_t gpa, uint64_t bytes);

#endif
