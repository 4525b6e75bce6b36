/* machine.h — the simulated machine without SystemC: guest memory, the guest kernel
 * loaded and booted, the shadow MMU and EPT (with reclaim under a host memory limit),
 * one x2APIC and one vCPU per configured CPU, and everything a vCPU exit or a guest
 * port write asks of the platform (console, panic, verdicts, host faults).
 *
 * Time: the caller (the SystemC binding, or a test's own loop) owns simulated time
 * and hands each vCPU a slice [now, horizon) in picoseconds; the machine runs the vCPU
 * until its local time reaches the horizon, it halts, blocks on a host fault, or the
 * run ends, and says how much time it consumed. docs/platform.md has the timing rules.
 *
 * Not for: SystemC (binding/), devices with their own timing (the swap device is the
 * binding's, reached through machine_io_ops), the APF policy (sim/apf plugs in through
 * machine_set_fault_hooks and machine_register_msr). One thread; no global state. */
#ifndef APFSIM_MACHINE_H
#define APFSIM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "core/diag.h"
#include "cpu/vcpu.h"
#include "loader/elf_loader.h"
#include "mmu/ept.h"
#include "report/report.h"
#include "trace/trace.h"

#define MACHINE_NEVER UINT64_MAX /* a time (ps) that never comes */

struct machine;

/* ---------- what the caller provides ---------- */

enum machine_io_kind {
  MACHINE_IO_FETCH,     /* a 4 KiB page read from the swap device: a host fault waits for it */
  MACHINE_IO_WRITEBACK, /* a dirty page written to the swap device on eviction: nobody waits */
};

struct machine_io_ops {
  void *ctx;
  /* Submits one request that reaches the device at at_ps (>= the caller's current
   * time). The caller calls machine_io_done when it completes. Returns its completion
   * time if the device knows it at submission, else MACHINE_NEVER. */
  uint64_t (*submit)(void *ctx, enum machine_io_kind kind, uint64_t gpa, uint32_t bytes, uint64_t at_ps);
  /* Something may let vCPU `vcpu` run again at at_ps (an IPI, an I/O completion): a
   * caller waiting for it should ask machine_vcpu_wake_ps again at that time. */
  void (*kick)(void *ctx, unsigned vcpu, uint64_t at_ps);
  /* The run has its outcome (machine_ended): stop the simulation. */
  void (*stop)(void *ctx);
};

enum machine_console { MACHINE_CONSOLE_NONE, MACHINE_CONSOLE_STDOUT, MACHINE_CONSOLE_STDERR };

struct machine_params {
  const struct sim_config *cfg;      /* must outlive the machine */
  const struct guest_image *image;   /* machine_open_kernel(cfg); must outlive the machine */
  struct trace_writer *trace;        /* required: every event goes here */
  struct machine_io_ops io;          /* submit may be NULL only if no host fault ever needs I/O */
  FILE *console;                     /* complete console lines also go here; NULL: trace only */
  bool *config_error;                /* optional: set when machine_create fails because of the
                                        configuration (a field names it), not the simulator */
};

/* The kernel the configuration names (guest/kernel relative to the config file's
 * directory), or the one built with apfsim when it is empty. */
struct guest_image *machine_open_kernel(const struct sim_config *cfg, struct diag *err);

/* Builds and boots the machine at simulated time 0. Runs the vCPU back end's self-check
 * first. NULL + message (naming the config field where one is at fault). */
struct machine *machine_create(const struct machine_params *p, struct diag *err);
void machine_destroy(struct machine *m);

unsigned machine_n_vcpus(const struct machine *m);

/* ---------- running ---------- */

enum machine_vcpu_next {
  MACHINE_VCPU_RUNNABLE, /* call machine_vcpu_run again once `consumed_ps` has passed */
  MACHINE_VCPU_HALTED,   /* HLT: waits for machine_vcpu_wake_ps (a timer, an IPI) */
  MACHINE_VCPU_BLOCKED,  /* waits for host I/O (a synchronous fault): until machine_io_done */
  MACHINE_VCPU_STOPPED,  /* the run has ended (machine_ended) */
};

struct machine_step {
  uint64_t consumed_ps;  /* simulated time used, from now_ps */
  uint64_t instructions; /* retired */
  enum machine_vcpu_next next;
  struct {               /* BLOCKED: the host fault it waits for */
    uint64_t gpa;
    bool during_delivery; /* the access was event delivery's (IDT, TSS, stack) */
  } blocked_on;
};

/* Runs vCPU i from now_ps (the caller's current time) up to at most horizon_ps (the
 * vCPU stops at the first instruction boundary at or after it; at least one instruction
 * runs). The caller computes the horizon with machine_horizon_ps. Returns false only
 * for an internal error (machine_failed has the message); the step then says STOPPED. */
bool machine_vcpu_run(struct machine *m, unsigned i, uint64_t now_ps, uint64_t horizon_ps, struct machine_step *step);

/* min(now + quantum, vCPU i's next LAPIC timer expiry, the next machine-wide timed event,
 * the end of the run): where its next slice must stop so events land at their time. */
uint64_t machine_horizon_ps(const struct machine *m, unsigned i, uint64_t now_ps);

/* When a HALTED or BLOCKED vCPU can next make progress: now or earlier means call
 * machine_vcpu_run; MACHINE_NEVER means only a kick can change that. */
uint64_t machine_vcpu_wake_ps(const struct machine *m, unsigned i);

/* Machine-wide timed events (scripted evictions): the next one's time, and running
 * every one due at or before now_ps. machine_vcpu_run also runs them first. */
uint64_t machine_next_timed_event_ps(const struct machine *m);
void machine_deliver_due(struct machine *m, uint64_t now_ps);

/* A request submitted through machine_io_ops completed at now_ps. */
void machine_io_done(struct machine *m, enum machine_io_kind kind, uint64_t gpa, uint64_t now_ps);

/* ---------- end of the run ---------- */

bool machine_ended(const struct machine *m);
/* Non-NULL after an internal error (the simulator, not the guest, failed). */
const char *machine_failed(const struct machine *m);
/* The caller's time limit (limits/max-sim-time) was reached at end_ps, or the host time
 * limit (host_limit true): decides the outcome if the guest has not. */
void machine_time_limit(struct machine *m, uint64_t end_ps, bool host_limit);
/* The trace buffer holds trace_bytes, more than the share of limits/max-host-memory
 * left after guest RAM and the DAX window: ends the run (outcome timeout) at end_ps. */
void machine_memory_limit(struct machine *m, uint64_t end_ps, uint64_t trace_bytes, uint64_t share);

/* Outcome, verdict, counts. The vcpus and sections arrays point into the machine:
 * valid until machine_destroy or the next call. */
void machine_summary(struct machine *m, struct run_summary *s);

/* ---------- hook points for the host's APF engine (sim/apf) ---------- */

enum machine_fault_action {
  MACHINE_FAULT_SYNC,  /* the vCPU blocks until the page is in (KVM's synchronous fault) */
  MACHINE_FAULT_ASYNC, /* the hook took it (e.g. queued an APF #PF): the page is read in
                          the background (no vCPU waits) and the vCPU runs on */
};

struct machine_host_fault {
  unsigned vcpu;
  uint64_t gpa, gva, rip;
  enum vcpu_access access;
  bool during_delivery; /* always handled synchronously: the hook is not asked */
  struct ept_fault ept; /* EPT_FAULT_SWAP_IN or EPT_FAULT_IN_FLIGHT */
  uint64_t now_ps;      /* the vCPU's local time at the fault */
};

struct machine_fault_hooks {
  void *ctx;
  /* An EPT violation that needs I/O. NULL: every such fault is synchronous. */
  enum machine_fault_action (*decide)(void *ctx, struct machine *m, const struct machine_host_fault *f);
  /* A page read completed (after the machine made it resident and woke its waiters). */
  void (*page_in)(void *ctx, struct machine *m, uint64_t gfn, uint64_t now_ps);
};
void machine_set_fault_hooks(struct machine *m, const struct machine_fault_hooks *h);

/* More MSRs (e.g. the KVM APF MSRs) in the table every vCPU dispatches to. */
bool machine_register_msr(struct machine *m, const struct vcpu_msr_handler *h, struct diag *err);

/* The vCPU itself (injection, registers) and its local time now. */
struct vcpu *machine_vcpu(struct machine *m, unsigned i);
uint64_t machine_vcpu_local_ps(const struct machine *m, unsigned i);

/* ---------- the injection-window explorer (docs/explorer.md; window.c) ---------- */

struct machine_window_hook {
  unsigned vcpu;
  char event[64]; /* any trace event name that after-event NMI plans can count */
  uint32_t nth;   /* 1-based */
  void *ctx;
  /* The nth `event` on `vcpu`, at its local time t_ps with `retired` instructions retired,
   * inside that vCPU's run (the explorer forks here). True: end the run now. */
  bool (*at_anchor)(void *ctx, struct machine *m, uint64_t t_ps, uint64_t retired);
  /* Optional: every NMI a plan injects, where it lands (rip, the vCPU's retired count). */
  void (*nmi_landed)(void *ctx, struct machine *m, unsigned vcpu, uint64_t rip, uint64_t retired);
};
/* Installs (NULL: removes) the hook; it fires once. */
void machine_set_window_hook(struct machine *m, const struct machine_window_hook *h);
/* A run-time NMI plan: vCPU `vcpu` takes an NMI once it has retired `retired` instructions
 * (exactly, as an at-instruction plan). False only when out of memory. */
bool machine_nmi_add_at(struct machine *m, unsigned vcpu, uint64_t retired);
/* The run ends at end_ps (if earlier than its end so far), judged as at limits/max-sim-time. */
void machine_set_run_end(struct machine *m, uint64_t end_ps);

/* ---------- for tests and debugging ---------- */

/* Guest memory as the host sees it ([0, RAM), and the DAX window's page-cache pages at the
 * window's gpa when there is one); writes must go through machine_poke. */
const uint8_t *machine_guest_memory(const struct machine *m, uint64_t *ram_bytes);
/* The host writes guest memory (e.g. a test corrupting a user page): every vCPU drops
 * translated code of those pages and the host counts them dirty. */
bool machine_poke(struct machine *m, uint64_t gpa, const void *data, uint64_t len, struct diag *err);

#endif
