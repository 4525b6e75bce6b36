/* internal.h — the APF engine's state, shared by its files (one concept each):
 *   engine.c   creation, configuration, statistics, names, tracing helper
 *   msr.c      the three MSRs: bits, #GPs, enabling and the wake-all
 *   token.c    token allocation (never 0)
 *   gfn_hash.c the per-vCPU gfn hash (KVM's apf.gfns) and the error-gfn cache
 *   queue.c    the per-vCPU work pool, the done (ready) FIFO, clearing
 *   decide.c   an EPT violation: sync, halt or APF (KVM's try_async_pf + x86.c policy)
 *   complete.c completions and page-ready delivery for both ABIs
 *   ve.c       apfsim's #VE information MSR and #VE delivery (not-present, page errors)
 * Not a public header: tests include it to pin down pure helpers (hash, tokens). */
#ifndef APFSIM_APF_INTERNAL_H
#define APFSIM_APF_INTERNAL_H

#include <stdarg.h>

#include "apf/apf.h"

#define APF_NO_WORK UINT32_MAX
#define APF_GFN_EMPTY UINT64_MAX /* KVM's ~0 sentinel in apf.gfns */
#define APF_ERROR_GFNS 64        /* the 2020 series' ERROR_GFN_PER_VCPU */

enum apf_work_state { APF_WORK_FREE, APF_WORK_QUEUED, APF_WORK_DONE };

/* One queued async page fault (KVM's struct kvm_async_pf). */
struct apf_work {
  uint8_t state;
  bool wakeup_all;
  bool notpresent_injected; /* 5.8+ sends page-ready only for these (and wake-alls) */
  bool failed;              /* the read could not bring the page in */
  bool deferred;            /* its page-ready already waited once (counted and traced) */
  uint32_t token;
  uint64_t gfn, gva;        /* gva: KVM's cr2_or_gpa (apfsim is identity mapped) */
  uint32_t next_done;
};

struct apf_vcpu {
  unsigned id;
  uint64_t msr_en, msr_int;
  uint8_t vec;
  bool send_always, delivery_as_pf_vmexit, send_pf_error;
  bool area_valid;          /* KVM's apf.data cache was set up by an enabling write */
  uint64_t area_gpa;
  bool area_announced;      /* shared_area(gpa, true) was reported */
  uint32_t token_id;        /* KVM's apf.id */
  uint32_t queued;          /* KVM's async_pf.queued */
  bool pageready_pending;   /* a 2020 page-ready is in the guest's hands */
  bool ready_request;       /* KVM_REQ_APF_READY */
  struct apf_work *works;   /* capacity max_outstanding + 1 (a wake-all is never refused) */
  uint32_t done_head, done_tail;
  uint64_t *gfns;           /* 1 << hash_bits entries */
  uint64_t error_gfns[APF_ERROR_GFNS];
  uint64_t msr_ve;          /* MSR_APFSIM_VE_INFO as last written */
  bool ve_announced;        /* shared_area(#VE area, true) was reported */
  struct apf_stats stats;
};

struct apf_engine {
  struct apf_engine_config cfg;
  struct apf_host_ops ops;
  uint32_t capacity;        /* works per vCPU */
  unsigned hash_bits;       /* log2 of the gfn hash size: 6 (64 entries) by default */
  struct apf_vcpu *vcpus;
};

/* engine.c */
void apf_trace(struct apf_engine *e, unsigned vcpu, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void apf_vcpu_state(struct apf_engine *e, unsigned vcpu, struct apf_vcpu_state *s);
bool apf_enabled(const struct apf_engine *e, const struct apf_vcpu *v);

/* token.c: the next token of vCPU `vcpu`: (id++ << 12) | vcpu, with id skipping the values
 * whose low 20 bits are 0 so no token is ever 0 (Linux 5.17 alloc_apf_token). */
uint32_t apf_token_next(uint32_t *id, unsigned vcpu);

/* gfn_hash.c: Linux's hash_32(val, bits) = (val * GOLDEN_RATIO_32) >> (32 - bits). */
uint32_t apf_hash_32(uint32_t val, unsigned bits);
void apf_gfn_hash_reset(struct apf_engine *e, struct apf_vcpu *v);
void apf_gfn_hash_add(struct apf_engine *e, struct apf_vcpu *v, uint64_t gfn);
bool apf_gfn_hash_find(const struct apf_engine *e, const struct apf_vcpu *v, uint64_t gfn);
void apf_gfn_hash_del(struct apf_engine *e, struct apf_vcpu *v, uint64_t gfn);
uint32_t apf_gfn_hash_slot(const struct apf_engine *e, const struct apf_vcpu *v, uint64_t gfn);
void apf_error_gfn_reset(struct apf_vcpu *v);
void apf_error_gfn_add(struct apf_vcpu *v, uint64_t gfn);
bool apf_error_gfn_take(struct apf_vcpu *v, uint64_t gfn);

/* queue.c */
uint32_t apf_work_alloc(struct apf_engine *e, struct apf_vcpu *v); /* APF_NO_WORK if full */
void apf_work_free(struct apf_vcpu *v, uint32_t w);
bool apf_done_empty(const struct apf_vcpu *v);
void apf_done_push(struct apf_vcpu *v, uint32_t w);
uint32_t apf_done_pop(struct apf_vcpu *v);
void apf_queue_clear(struct apf_engine *e, struct apf_vcpu *v); /* kvm_clear_async_pf_completion_queue */

/* complete.c */
void apf_check_completion(struct apf_engine *e, struct apf_vcpu *v); /* kvm_check_async_pf_completion */
void apf_present_queued(struct apf_engine *e, struct apf_vcpu *v, bool first);

/* ve.c */
enum apf_msr_result apf_ve_msr_write(struct apf_engine *e, struct apf_vcpu *v, uint64_t value, const char **why);
/* Not-present goes to this vCPU by #VE (registered with NOT_PRESENT on a 5.8+ host). */
bool apf_ve_not_present(const struct apf_engine *e, const struct apf_vcpu *v);
/* The guest still owns the #VE area (busy word set, or unreadable). */
bool apf_ve_busy(struct apf_engine *e, const struct apf_vcpu *v);
/* Fills the area for `reason` and injects #VE; false if the area could not be written. */
bool apf_ve_deliver(struct apf_engine *e, struct apf_vcpu *v, uint32_t reason, uint64_t token,
                    const struct apf_fault *f, unsigned cpl);
void apf_ve_release(struct apf_engine *e, struct apf_vcpu *v);

/* msr.c */
void apf_wakeup_all(struct apf_engine *e, struct apf_vcpu *v);

#endif
