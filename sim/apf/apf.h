/* apf.h — the host (KVM) side of asynchronous page faults: the policy that decides what a
 * guest access to a non-resident page becomes, and the mechanism that queues the host's
 * work, hands out tokens and delivers "page not present" and "page ready" to the guest.
 * Both ABIs: the 2010 one (pre-5.8 host: reason word, page-ready as #PF with the token in
 * CR2) and the 2020 one (5.8+ host: flags word, page-ready as an interrupt, token slot,
 * ACK MSR). Facts and the Linux versions followed: docs/apf.md.
 *
 * The engine never touches Unicorn, SystemC or a device. It talks to the platform only
 * through struct apf_host_ops (guest memory, the vCPU's state, #PF injection, the APIC,
 * page reads, halting and kicking vCPUs, time, trace), so tests drive it with a fake
 * vCPU and the binding wires the real ones. It decides; sim/cpu delivers.
 *
 * Not for: classifying EPT violations (sim/mmu/ept.h), timing or issuing I/O
 * (sim/storage), the guest's side of the protocol (guest/), race injection plans.
 * One thread; no global state; every decision depends only on the call sequence. */
#ifndef APFSIM_APF_H
#define APFSIM_APF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h" /* enum apf_error_reporting, struct apf_config (header only) */
#include "core/diag.h"

/* ---- ABI constants (Linux arch/x86/include/uapi/asm/kvm_para.h, Documentation/virt/kvm/msr.rst,
 *      cpuid.rst; the ERROR ones from the unmerged June 2020 series, see docs/apf.md) ---- */
#define APF_MSR_EN 0x4b564d02u  /* MSR_KVM_ASYNC_PF_EN */
#define APF_MSR_INT 0x4b564d06u /* MSR_KVM_ASYNC_PF_INT (5.8+) */
#define APF_MSR_ACK 0x4b564d07u /* MSR_KVM_ASYNC_PF_ACK (5.8+) */

#define APF_EN_ENABLED (UINT64_C(1) << 0)            /* KVM_ASYNC_PF_ENABLED */
#define APF_EN_SEND_ALWAYS (UINT64_C(1) << 1)        /* KVM_ASYNC_PF_SEND_ALWAYS: also at CPL0 */
#define APF_EN_DELIVERY_AS_PF_VMEXIT (UINT64_C(1) << 2) /* nested: stored, not modelled */
#define APF_EN_DELIVERY_AS_INT (UINT64_C(1) << 3)    /* 2020 ABI (5.8+) */
#define APF_EN_SEND_ERROR (UINT64_C(1) << 4)         /* unmerged 2020 series: ready_flags */
#define APF_EN_RESERVED_5_8 UINT64_C(0x30)           /* bits 5:4 (5.8+: "if (data & 0x30)") */
#define APF_EN_RESERVED_PRE_5_8 UINT64_C(0x38)       /* bits 5:3 (5.4: "if (data & 0x38)") */
#define APF_EN_GPA_MASK (~UINT64_C(0x3f))            /* bits 63:6: the shared area */
#define APF_INT_VECTOR_MASK UINT64_C(0xff)           /* KVM_ASYNC_PF_VEC_MASK; bits 63:8 reserved */

/* CPUID 0x40000001 EAX bit numbers (KVM_FEATURE_*). */
#define APF_FEATURE_ASYNC_PF 4
#define APF_FEATURE_ASYNC_PF_VMEXIT 10
#define APF_FEATURE_ASYNC_PF_INT 14
#define APF_FEATURE_ASYNC_PF_ERROR 15 /* unmerged series; mainline later gave bit 15 away */

/* struct kvm_vcpu_pv_apf_data: the 64-byte shared area at the EN gpa. */
#define APF_AREA_FLAGS 0       /* u32: 2020 "flags" / 2010 "reason" */
#define APF_AREA_TOKEN 4       /* u32: 2020 page-ready token slot (0 = free) */
#define APF_AREA_READY_FLAGS 8 /* u32: unmerged series' ready_flags */
#define APF_AREA_BYTES 64
#define APF_REASON_PAGE_NOT_PRESENT 1u /* KVM_PV_REASON_PAGE_NOT_PRESENT */
#define APF_REASON_PAGE_READY 2u       /* KVM_PV_REASON_PAGE_READY (2010 only) */
#define APF_READY_FLAG_PAGE_ERROR 1u   /* unmerged series' KVM_PV_REASON_PAGE_ERROR */

/* apfsim's own #VE delivery ABI (docs/guest.md §1.10; guest/include/apfsim_boot.h has the
 * guest's copy, the machine checks they agree). No KVM counterpart: a model of the 2020
 * proposal to deliver "page not present" (and host page errors) as a virtualization
 * exception with its own per-vCPU information area. */
#define APF_MSR_VE_INFO 0x4b564df0u          /* MSR_APFSIM_VE_INFO: not a KVM MSR */
#define APF_VE_INFO_ENABLE (UINT64_C(1) << 0)      /* the area is valid */
#define APF_VE_INFO_NOT_PRESENT (UINT64_C(1) << 1) /* APF not-present as #VE, not #PF */
#define APF_VE_INFO_PAGE_ERROR (UINT64_C(1) << 2)  /* host page errors as a synchronous #VE */
#define APF_VE_INFO_RESERVED UINT64_C(0x38)        /* bits 5:3; bits 63:6 = the area's GPA */
#define APF_VE_VECTOR 20u                          /* #VE (SDM vol. 3A table 6-1) */
#define APF_VE_AREA_REASON 0x00 /* u32 */
#define APF_VE_AREA_BUSY 0x04   /* u32: APF_VE_BUSY while the guest owns the area, 0 = free */
#define APF_VE_AREA_TOKEN 0x08  /* u64 */
#define APF_VE_AREA_GVA 0x10    /* u64 */
#define APF_VE_AREA_GPA 0x18    /* u64 */
#define APF_VE_AREA_ACCESS 0x20 /* u32 */
#define APF_VE_AREA_BYTES 64
#define APF_VE_BUSY UINT32_C(0xffffffff)
#define APF_VE_REASON_NOT_PRESENT 1u
#define APF_VE_REASON_PAGE_ERROR 2u
#define APF_VE_ACCESS_WRITE (1u << 0)
#define APF_VE_ACCESS_FETCH (1u << 1)
#define APF_VE_ACCESS_USER (1u << 2)

#define APF_TOKEN_WAKE_ALL UINT32_C(0xffffffff) /* "broadcast wakeup" (~0) */
#define APF_PER_VCPU_DEFAULT 64u                /* ASYNC_PF_PER_VCPU */
#define APF_MAX_OUTSTANDING 4096u
#define APF_MAX_VCPUS 4096u /* a token keeps the vCPU id in bits 11:0 */

/* ---- configuration ---- */

struct apf_engine_config {
  unsigned n_vcpus;          /* 1..APF_MAX_VCPUS; vCPU ids are 0..n_vcpus-1 */
  bool async_pf;             /* false: the host handles every fault synchronously (APF_OFF) */
  bool host_pre_5_8;         /* 2010 host rules (Linux 5.4); else 2020 rules (Linux 5.10) */
  uint32_t max_outstanding;  /* per vCPU; 0 = APF_PER_VCPU_DEFAULT */
  enum apf_error_reporting error_reporting;
  bool enforce_pv_cpuid;     /* KVM_CAP_ENFORCE_PV_FEATURE_CPUID (ignored for pre-5.8 hosts) */
  uint32_t kvm_features;     /* CPUID 0x40000001 EAX the guest is offered */
};

/* The engine's config from the scenario: protocol OFF = async handling disabled in the
 * host; HALT = an ordinary host with a guest that never enables APF; 2010 = a pre-5.8
 * host (whatever host.host_pre_5_8 says); 2020 = host.host_pre_5_8 decides.
 * kvm_features gets apf_cpuid_features(); the platform may OR in other PV bits. */
void apf_engine_config_from(struct apf_engine_config *out, const struct apf_config *apf,
                            const struct host_config *host, unsigned n_vcpus);

/* The APF bits of CPUID 0x40000001 EAX a host of this kind offers: ASYNC_PF, ASYNC_PF_VMEXIT
 * and (5.8+ only) ASYNC_PF_INT as apf says, and ASYNC_PF_ERROR with the opt-in variant. */
uint32_t apf_cpuid_features(const struct apf_config *apf, bool host_pre_5_8);

/* ---- what the engine needs from the platform ---- */

/* The vCPU's state at the instruction boundary where the host looks at it. */
struct apf_vcpu_state {
  bool interrupts_allowed; /* RFLAGS.IF = 1 and no STI / MOV SS interrupt shadow */
  bool exception_pending;  /* an exception is queued and not yet delivered */
  bool event_reinjecting;  /* an event whose delivery was cut short will be re-injected */
  unsigned cpl;
};

/* Every effect goes through these. All are required except those marked optional. Each is
 * called at the simulated time now_ns() returns, for vCPU `vcpu` (an id). */
struct apf_host_ops {
  void *ctx;
  uint64_t (*now_ns)(void *ctx);
  /* Guest-physical memory, little-endian. false: not guest RAM (the access fails). */
  bool (*read_u32)(void *ctx, uint64_t gpa, uint32_t *value);
  bool (*write_u32)(void *ctx, uint64_t gpa, uint32_t value);
  void (*vcpu_state)(void *ctx, unsigned vcpu, struct apf_vcpu_state *out);
  /* Queue #PF(error_code) with CR2 = cr2 on the vCPU (vcpu_queue_exception). */
  void (*inject_pf)(void *ctx, unsigned vcpu, uint32_t error_code, uint64_t cr2);
  /* A fixed interrupt on the vCPU's local APIC (lapic_accept). */
  void (*raise_irq)(void *ctx, unsigned vcpu, uint8_t vector);
  /* Make sure gfn is being read in: start the read or join the one in flight. The read
   * must end with apf_fetch_done(gfn, failed) (a page that cannot be brought in fails).
   * vcpu_blocks: a synchronous fault — the vCPU runs no guest code until the page is in. */
  void (*fetch)(void *ctx, unsigned vcpu, uint64_t gfn, bool vcpu_blocks);
  /* Synthetic halt: the vCPU runs no guest code until an interrupt it can take, an NMI,
   * or kick(). */
  void (*halt)(void *ctx, unsigned vcpu);
  /* The vCPU has completed APF work: end a synthetic halt or a guest HLT (KVM's
   * kvm_vcpu_has_events sees the done list); if interrupt_running, also make a running
   * vCPU exit soon so the platform calls apf_vcpu_service (KVM's kick). */
  void (*kick)(void *ctx, unsigned vcpu, bool interrupt_running);
  /* Optional: map the completed page for the vCPU now (KVM's prefault), gfn was read. */
  void (*prefault)(void *ctx, unsigned vcpu, uint64_t gfn);
  /* Optional: the vCPU's shared area starts (in_use) or stops being written by the host:
   * pin / unpin its page so reclaim never evicts it. */
  void (*shared_area)(void *ctx, unsigned vcpu, uint64_t gpa, bool in_use);
  /* Optional: deliver #VE (vector 20, no error code, a fault) on the vCPU. NULL: the host
   * has no #VE delivery and MSR_APFSIM_VE_INFO is #GP. */
  void (*inject_ve)(void *ctx, unsigned vcpu);
  /* Optional: one trace event (name [a-z0-9_]+, fields without control characters). */
  void (*trace)(void *ctx, uint64_t time_ns, int cpu, const char *name, const char *fields);
};

/* ---- the engine ---- */

struct apf_engine;

/* NULL + message on a bad config or missing op. */
struct apf_engine *apf_engine_create(const struct apf_engine_config *cfg, const struct apf_host_ops *ops,
                                     struct diag *err);
void apf_engine_destroy(struct apf_engine *e);

/* ---- MSRs (the guest's RDMSR/WRMSR of the three APF MSRs) ---- */

enum apf_msr_result { APF_MSR_OK, APF_MSR_GP };

enum apf_msr_result apf_msr_write(struct apf_engine *e, unsigned vcpu, uint32_t msr, uint64_t value);
enum apf_msr_result apf_msr_read(struct apf_engine *e, unsigned vcpu, uint32_t msr, uint64_t *value);

/* What the vCPU's MSR table needs to know of each APF MSR this host has (pre-5.8: EN
 * only). write_reserved and pv_feature repeat checks apf_msr_write also makes. */
struct apf_msr_spec {
  const char *name;
  uint32_t msr;
  uint64_t write_reserved;
  uint32_t pv_feature; /* CPUID 0x40000001 EAX mask; 0 = none */
};
#define APF_N_MSRS 3
size_t apf_msr_specs(const struct apf_engine *e, struct apf_msr_spec out[APF_N_MSRS]);

/* ---- EPT violations ---- */

/* A guest access to a page the host must read in (ept_classify: SWAP_IN, DAX needing a
 * read, IN_FLIGHT, or UNRESOLVABLE). */
struct apf_fault {
  uint64_t gpa, gva;
  bool during_delivery; /* host fault while delivering an event (IDT, TSS, stack) */
  bool unresolvable;    /* the page can never be brought in (truncated, I/O error) */
  bool write, fetch;    /* the access (for the #VE information area only) */
};

enum apf_outcome {
  APF_OUTCOME_SYNC,            /* the vCPU blocks until the page is in (fetch, vcpu_blocks) */
  APF_OUTCOME_HALT,            /* async read + synthetic halt (halt op) */
  APF_OUTCOME_ASYNC,           /* "page not present" #PF injected; the guest goes on */
  APF_OUTCOME_EFAULT,          /* synchronous fault on a page that cannot come in: exit
                                  to the VMM with EFAULT ("kvm run failed Bad address") */
  APF_OUTCOME_ERROR_EXCEPTION, /* APF_ERR_SYNC_EXCEPTION: the platform injects its
                                  synchronous error exception instead of the EFAULT exit */
};
#define APF_N_OUTCOMES 5

/* Why: each sync, halt, efault decision names the rule that made it. */
enum apf_why {
  APF_WHY_NONE,               /* an APF */
  APF_WHY_ASYNC_DISABLED,     /* sync: the host does no async handling (APF_OFF) */
  APF_WHY_REINJECTION,        /* sync: fault during event delivery / event re-injected */
  APF_WHY_EXCEPTION_PENDING,  /* sync: an exception is queued */
  APF_WHY_INTERRUPTS_BLOCKED, /* sync: IF = 0 or interrupt shadow (cannot even halt) */
  APF_WHY_QUEUE_FULL,         /* sync: max_outstanding works already queued */
  APF_WHY_FORCED_SYNC,        /* sync: the gfn failed before (error variants) */
  APF_WHY_NOT_ENABLED,        /* halt: the guest has not enabled APF (for this ABI) */
  APF_WHY_CPL0,               /* halt: CPL 0 without send-always */
  APF_WHY_AREA_WRITE_FAILED,  /* halt: the shared area could not be written */
  APF_WHY_REPEATED_FAULT,     /* halt: the gfn is already in this vCPU's async work */
  APF_WHY_VE_BUSY,            /* sync: not-present goes by #VE and the guest still owns
                                 the #VE information area (its busy word is set) */
};
#define APF_N_WHY 12

struct apf_decision {
  enum apf_outcome outcome;
  enum apf_why why;
  bool new_work;  /* an async work was queued (ASYNC, or HALT with a not-present withheld) */
  uint32_t token; /* its token (0 if none) */
};

/* The decision on a fault of vCPU `vcpu`. Every effect (fetch, #PF, shared-area write,
 * halt) has already gone through the ops when it returns; EFAULT / ERROR_EXCEPTION are
 * the caller's to carry out. */
void apf_fault(struct apf_engine *e, unsigned vcpu, const struct apf_fault *f, struct apf_decision *out);

/* ---- completions ---- */

/* A read of gfn finished (failed: the page could not be brought in). Every vCPU's async
 * work on gfn completes, in vCPU id order: it joins that vCPU's ready queue and the vCPU
 * is kicked. Reads no work waits for are ignored. */
void apf_fetch_done(struct apf_engine *e, uint64_t gfn, bool failed);

/* ERROR_EXCEPTION as a #VE (docs/guest.md §1.10): when the guest registered its #VE
 * area with PAGE_ERROR and the area's busy word reads 0, fills it (reason PAGE_ERROR,
 * gva, gpa, access), sets busy and injects #VE; returns true. Otherwise (not registered,
 * busy, no inject_ve op) nothing reaches the guest and the caller takes the EFAULT exit. */
bool apf_ve_page_error(struct apf_engine *e, unsigned vcpu, const struct apf_fault *f);

/* The #VE information MSR as the vCPU's MSR table needs it (false: this host has no #VE
 * delivery, the inject_ve op is NULL). Reads and writes go through apf_msr_read/write. */
bool apf_ve_msr_spec(const struct apf_engine *e, struct apf_msr_spec *out);

/* Call before each guest entry of the vCPU (KVM: the KVM_REQ_APF_READY request, 5.8+, or
 * the run loop's completion check, pre-5.8): delivers queued page-readies as the ABI
 * allows. Cheap when there is nothing to do. */
void apf_vcpu_service(struct apf_engine *e, unsigned vcpu);

/* Completed work not yet delivered (KVM's done list is non-empty): a halted vCPU must not
 * stay halted. */
bool apf_vcpu_has_events(const struct apf_engine *e, unsigned vcpu);

/* Whether a page-ready for `token` can still come: some vCPU holds an async work with that
 * token (queued, or completed and not yet presented), or a wake-all that is still to be
 * presented (it wakes every sleeper of its vCPU). The race lab's lost-token check. */
bool apf_token_pending(const struct apf_engine *e, uint32_t token);

/* Whether the host ever gave out `token`: its vCPU id (bits 11:0) exists and its id (bits
 * 31:12) is below the vCPU's next one (after 2^20 tokens the ids restart: older tokens then
 * read as not issued; no run of apfsim gets near that). A guest waiting on a token never issued waits on something else (a CR2 value). */
bool apf_token_issued(const struct apf_engine *e, uint32_t token);

/* vCPU reset (INIT): drops its queued work, clears the gfn hash and the MSRs. */
void apf_vcpu_reset(struct apf_engine *e, unsigned vcpu);

/* ---- state and statistics ---- */

struct apf_stats {
  uint64_t faults;                /* apf_fault calls */
  uint64_t sync_faults;           /* SYNC, EFAULT and ERROR_EXCEPTION outcomes */
  uint64_t efaults;               /* EFAULT and ERROR_EXCEPTION outcomes */
  uint64_t try_async;             /* passed kvm_can_do_async_pf (kvm_try_async_get_page) */
  uint64_t repeated_faults;       /* kvm_async_pf_repeated_fault */
  uint64_t works;                 /* async works queued (kvm_async_pf_not_present) */
  uint64_t not_present;           /* ... whose "page not present" #PF was injected */
  uint64_t synthetic_halts;       /* HALT outcomes */
  uint64_t completed;             /* works whose read finished */
  uint64_t failed;                /* ... with an error */
  uint64_t page_ready;            /* page-ready delivered (not counting wake-alls) */
  uint64_t page_ready_suppressed; /* dequeued without a page-ready (5.8+: not-present was
                                     never delivered, or APF is off) */
  uint64_t orphan_page_ready;     /* pre-5.8: page-ready for a not-present never delivered */
  uint64_t wake_all;              /* wake-alls queued on enable */
  uint64_t wake_all_skipped;      /* ... not queued: completions already pending */
  uint64_t wake_all_delivered;
  uint64_t page_ready_deferred;   /* page-readies that had to wait: 5.8+ the guest's token
                                     slot was not 0, pre-5.8 the vCPU could not take a #PF */
  uint64_t acks;                  /* MSR_KVM_ASYNC_PF_ACK writes with bit 0 */
  uint64_t error_reports;         /* page-readies with ready_flags PAGE_ERROR */
  uint64_t forced_sync;           /* syncs forced by a gfn that failed before */
  uint64_t prefaults;
  uint64_t cancelled;             /* works dropped (APF disabled, vCPU reset) */
  uint64_t msr_gp;                /* APF MSR accesses answered with #GP */
  uint64_t ve_not_present;        /* not-presents delivered as #VE (counted in not_present too) */
  uint64_t ve_page_errors;        /* page errors delivered as #VE */
  uint64_t ve_refused;            /* #VEs not delivered: area busy or not registered */
  uint64_t sync_why[APF_N_WHY];
  uint64_t halt_why[APF_N_WHY];
  uint32_t outstanding;           /* works queued now (KVM's async_pf.queued) */
  uint32_t outstanding_peak;
};

const struct apf_stats *apf_vcpu_stats(const struct apf_engine *e, unsigned vcpu);
/* Sum over vCPUs (outstanding and outstanding_peak: sums of the per-vCPU values). */
void apf_total_stats(const struct apf_engine *e, struct apf_stats *out);

/* Whether the vCPU's EN value counts as "APF enabled" for this host's ABI. */
bool apf_vcpu_enabled(const struct apf_engine *e, unsigned vcpu);

const char *apf_outcome_name(enum apf_outcome o);
const char *apf_why_name(enum apf_why w);

#endif
