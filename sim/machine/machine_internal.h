/* machine_internal.h — the machine's state, shared by its files:
 *   machine.c   creation: memory, kernel, MMU/EPT/reclaim, MSR table, APICs, vCPUs
 *   run.c       slices, local time, the vCPU callbacks (TSC, RDRAND, interrupts, x2APIC)
 *   guest_io.c  what the guest tells the host through ports; outcomes and verdicts
 *   host.c      EPT violations, reclaim, host I/O, scripted evictions
 *   dax.c       the virtiofs DAX window: page-cache reads, the host truncate, EFAULT
 *   apf_glue.c  the host APF engine (sim/apf) wired to vCPUs, APICs, EPT and host reads
 *   fetches.c   host page reads in flight and their completion times
 *   nmi_plan.c  the configuration's NMI injection plans (race/nmi)
 *   race_watch.c the NMI/CR2 race as the host sees it; waits no page-ready can end (hung_*)
 *   summary.c   the run summary
 *   measure.c   the summary's measurement window (limits/measure-from)
 * Not for: anything outside sim/machine. */
#ifndef APFSIM_MACHINE_INTERNAL_H
#define APFSIM_MACHINE_INTERNAL_H

#include "cpu/lapic.h"
#include "loader/boot_info.h"
#include "machine/machine.h"
#include "mmu/reclaim.h"
#include "rng/rng.h"
#include "storage/latency_hist.h"

#define PS_PER_NS UINT64_C(1000)
#define PS_PER_US UINT64_C(1000000) /* also: cycles x 10^6 / MHz = ps */
#define PAGE_BYTES UINT64_C(4096)
#define MACHINE_MAX_TEXT_RANGES 16
#define MACHINE_MAX_PENDING_IPIS 64
#define MACHINE_CONSOLE_LINE 512
/* EPT violations in a row on one vCPU without a retired instruction before the run is
 * declared a livelock: far above what one instruction can need (its code, data and
 * page-table pages, each at most once per attempt), far below a useful run. */
#define MACHINE_LIVELOCK_FAULTS 4096u

/* MV_APF_HALTED: KVM's synthetic halt (an async read the guest cannot be told about):
 * no guest code runs until an interrupt, an NMI or completed APF work (apf_glue.c). */
enum mv_state { MV_RUNNING, MV_HALTED, MV_BLOCKED, MV_APF_HALTED };

/* What the trace last said the vCPU was doing (`vcpu_state`, docs/trace-format.md). */
enum mv_shown { SHOWN_NONE, SHOWN_USER, SHOWN_KERNEL, SHOWN_HALTED, SHOWN_BLOCKED, SHOWN_APF_HALTED };

/* An interrupt another vCPU sent: it lands at the target's first slice starting at or
 * after at_ps (docs/platform.md, "IPIs"). */
struct pending_ipi {
  uint64_t at_ps;
  uint8_t vector;
  bool nmi;
};

struct mvcpu {
  unsigned id;
  struct vcpu *v;
  struct lapic apic;
  struct rng rdrand; /* stream "vcpuN-rdrand" */
  enum mv_state state;
  /* Local time = base_ps + (vcpu_cycles - base_cycles) x 10^6 / MHz: rebased only when
   * the vCPU resumes after waiting, so slices never accumulate rounding. */
  uint64_t base_ps, base_cycles;
  uint64_t since_ps;         /* HALTED/BLOCKED: when it started waiting */
  uint64_t slice_horizon_ps; /* the running slice's bound (an earlier timer ends the run) */
  bool irq_line;
  struct pending_ipi ipis[MACHINE_MAX_PENDING_IPIS];
  unsigned n_ipis;
  /* BLOCKED on a synchronous host fault */
  uint64_t fault_gpa, fault_rip;
  bool fault_during_delivery;
  bool io_ready;
  uint64_t timer_due_ns; /* the LAPIC expiry being delivered (for the trace) */
  enum mv_shown shown;
  char line[MACHINE_CONSOLE_LINE];
  size_t line_len;
  unsigned faults_without_progress;
  bool apf_kicked; /* the APF engine has completed work for it: a halt ends (apf_glue.c) */
  /* statistics */
  uint64_t instructions, vm_exits, ept_violations, zero_fills, sync_faults, interrupts;
  uint64_t timer_interrupts, ipis_received, nmis_injected;
  uint64_t run_ps, halted_ps, blocked_ps;
  uint64_t apf_halted_ps; /* in synthetic halts (not in halted_ps) */
  struct latency_hist sync_latency;
  uint64_t sync_latency_sum_ns;
};

struct machine {
  const struct sim_config *cfg;
  const struct guest_image *img;
  struct trace_writer *trace;
  struct machine_io_ops io;
  FILE *console;
  struct machine_fault_hooks hooks;

  uint8_t *mem;           /* RAM, then the shadow pool (one mapping) */
  uint64_t map_bytes;
  uint64_t ram_bytes, pool_base, pool_bytes;
  struct shadow_mmu *shadow;
  struct ept *ept;
  struct reclaim *reclaim; /* NULL: no host memory limit */
  struct machine_dax *dax; /* NULL: no DAX window (dax.c) */
  struct machine_apf *apf; /* the host APF engine (apf_glue.c) */
  struct machine_fetches *reads; /* host page reads in flight (fetches.c) */
  struct machine_nmi *nmi;       /* NULL: no race/nmi plans (nmi_plan.c) */
  struct machine_race *race;     /* the race's facts and the lost-wait judge (race_watch.c) */
  struct machine_measure *measure; /* the summary's measurement window (measure.c) */
  struct machine_window {       /* the explorer's hook and run end (window.c) */
    struct machine_window_hook hook;
    bool armed;
    uint32_t seen;
    uint64_t end_ps; /* 0: none */
  } window;
  struct vcpu_msr_table *msrs;
  struct vcpu_platform plat;
  struct vcpu_text_range text[MACHINE_MAX_TEXT_RANGES];
  size_t n_text;
  struct apfsim_boot_info bi;
  struct apfsim_guest_layout layout;

  unsigned n;
  struct mvcpu *cpu;
  struct vcpu **peers;

  uint32_t mhz, cpi_milli;
  uint64_t tsc_khz;
  uint64_t quantum_ps;
  uint64_t limit_ps;         /* limits/max-sim-time */
  uint64_t max_instructions; /* 0 = none */
  uint64_t instructions;
  uint64_t host_now_ps;      /* the time host actions (evictions, write-backs) happen at */
  bool started;              /* machine_deliver_due ran once (the time-0 reclaim is done) */

  /* outcome */
  bool ended;
  enum run_outcome outcome;
  char verdict[REPORT_VERDICT_MAX];
  uint64_t end_ps;
  bool failed;
  char failure[512];

  /* host I/O statistics */
  uint64_t fetches, fetches_done, writebacks, writebacks_done, evictions, evictions_dirty;
  uint64_t scripted_runs;

  /* summary storage */
  struct vcpu_summary *vsum;
  uint64_t *proc_rows, *vtime_rows, *hist_rows, host_row[12];
  size_t n_proc_rows, n_hist_rows;
  struct report_section sections[12]; /* room for the optional ones (dax, window, ...) */
};

/* run.c */
uint64_t mv_local_ps(const struct machine *m, const struct mvcpu *c);
void mv_rebase(struct machine *m, struct mvcpu *c, uint64_t now_ps);
struct mvcpu *mv_of(void *machine, struct vcpu *v);
void machine_install_callbacks(struct machine *m);
bool machine_register_apic_msrs(struct machine *m, struct diag *err);
void mv_update_irq_line(struct mvcpu *c);
/* Traces a change of what the vCPU does: user/kernel (sampled from its CPL now), or
 * halted/blocked; gpa: the page a blocked vCPU waits for. */
void mv_show_state(struct machine *m, struct mvcpu *c, uint64_t t_ps, uint64_t gpa);

/* guest_io.c */
enum vcpu_cb machine_port_out(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t value);
/* Ends the run at at_ps with an outcome and a verdict (the first end wins). */
void machine_end(struct machine *m, uint64_t at_ps, enum run_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An internal error: the run stops and the platform reports a failure, not an outcome. */
void machine_fail(struct machine *m, uint64_t at_ps, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "12.345 ms" (integer arithmetic). */
void format_ms(uint64_t ps, char *buf, size_t len);
/* Appends printf output at buf[at] (len: buf's size); returns the new end, which may pass
 * len when the text was cut (then every later append is a no-op). */
size_t machine_appendf(char *buf, size_t len, size_t at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *workload_kind_word(uint32_t kind);

/* host.c */
bool machine_host_setup(struct machine *m, struct diag *err);
/* An EPT_VIOLATION exit of vCPU c at its local time: true if the vCPU may run on,
 * false if it is now BLOCKED or the run ended. */
bool machine_ept_violation(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex);
void machine_apply_flush(struct machine *m, const struct shadow_flush *f);
/* The synchronous fault: start or join the read of f->gfn, c BLOCKED on it (false). */
bool machine_block_on_fetch(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                            uint64_t now_ps);
/* Outcome efault_exit ("kvm run failed: Bad address") for the access in ex. */
void machine_efault_exit(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                         uint64_t now_ps);

/* dax.c */
/* Where the guest-physical space the vCPUs and the shadow see ends: the DAX window's end
 * (0 without a window); the shadow pool starts above max(RAM, this). */
uint64_t machine_dax_span_end(const struct sim_config *cfg);
bool machine_dax_setup(struct machine *m, struct diag *err); /* after the EPT exists */
void machine_dax_destroy(struct machine *m);
/* Page-cache read completions and the host truncate: the next one's time, and running
 * those due at or before now_ps (from machine_deliver_due). */
uint64_t machine_dax_next_event_ps(const struct machine *m);
void machine_dax_deliver_due(struct machine *m, uint64_t now_ps);
/* When a vCPU blocked on window page gfn can go on (its read's completion), or NEVER. */
uint64_t machine_dax_wake_ps(const struct machine *m, uint64_t gfn);
/* EPT_FAULT_DAX: map a cached page (true: run on) or start a read and block the vCPU. */
bool machine_dax_fault(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                       uint64_t now_ps);
/* Starts the page-cache read of the miss machine_dax_fault just met (f: EPT_FAULT_DAX)
 * for vCPU c's fault: c waits for it (vcpu_blocks: the synchronous fault, c BLOCKED), or
 * nobody does (an async fault; the read ends with machine_apf_fetch_done). False:
 * machine_fail was called. */
bool machine_dax_start_read(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                            uint64_t now_ps, bool vcpu_blocks);
/* The async get-page of unresolvable window page f (an async fault asked for it): it
 * fails at now_ps, a timed event like a read's completion (machine_apf_fetch_done). */
bool machine_dax_fail_read(struct machine *m, const struct ept_fault *f, uint64_t now_ps);
/* Why window page f cannot be brought in, for a verdict: "the host truncated the file at
 * 2.000 ms from 262144 to 65536 bytes, so the page is gone from its page cache". */
void machine_dax_why_lost(const struct machine *m, const struct ept_fault *f, uint64_t now_ps, char *why,
                          size_t len);
/* A synchronous fault on an unresolvable window page: outcome efault_exit. */
void machine_dax_efault(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                        uint64_t now_ps);
/* The summary's "dax" section (false without a window). */
bool machine_dax_section(struct machine *m, struct report_section *out);

/* fetches.c: every page read of the swap device goes through here, so that the machine
 * knows when each completes (when the device says so at submission) and can complete it
 * itself once a vCPU or the host thread reaches that time — page-ready interrupts then
 * land at their time, bounding running vCPUs' horizons like any timed event. */
bool machine_fetches_setup(struct machine *m, struct diag *err);
void machine_fetches_destroy(struct machine *m);
/* Submits the read of gfn (a swap-in) at at_ps and starts it in the EPT with `waiter`
 * (a vCPU id, or EPT_NO_VCPU for a read nobody blocks on). False: machine_fail was called. */
bool machine_fetch_start(struct machine *m, uint64_t gfn, unsigned waiter, uint64_t at_ps);
/* A read that can never complete successfully (an unresolvable page an async fault
 * asked for): it fails at at_ps, without the device. */
void machine_fetch_fail(struct machine *m, uint64_t gfn, uint64_t at_ps);
/* The earliest completion the machine knows of and has not run (NEVER if none), when
 * reads bound horizons (APF on); machine-wide timed events include it. */
uint64_t machine_fetches_next_ps(const struct machine *m);
/* Runs every known completion at or before now_ps. */
void machine_fetches_due(struct machine *m, uint64_t now_ps);
/* The device reported a read of gfn done at now_ps: runs it unless it already ran. */
void machine_fetch_reported(struct machine *m, uint64_t gfn, uint64_t now_ps);
/* host.c: a read of gfn completed at now_ps (success: resident; waiters woken). */
void machine_page_in(struct machine *m, uint64_t gfn, uint64_t now_ps);
/* Every vCPU in the `waiters` mask (blocked on a host read: swap-in or DAX page cache)
 * runs again from at_ps, its synchronous-fault latency counted and traced. */
void machine_wake_io_waiters(struct machine *m, uint64_t waiters, uint64_t at_ps);

/* apf_glue.c */
bool machine_apf_setup(struct machine *m, struct diag *err); /* before the vCPUs exist */
void machine_apf_destroy(struct machine *m);
uint32_t machine_apf_kvm_features(const struct machine *m);
/* An EPT violation needing a read (SWAP_IN, IN_FLIGHT) or on an unresolvable page:
 * the engine decides. True if the vCPU may run on. */
bool machine_apf_fault(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                       uint64_t now_ps);
/* Before every guest entry of c at now_ps: present completed work (page-ready). */
void machine_apf_service(struct machine *m, struct mvcpu *c, uint64_t now_ps);
/* A read finished (failed: the page cannot come in): the engine completes its works. */
void machine_apf_fetch_done(struct machine *m, uint64_t gfn, bool failed, uint64_t now_ps);
/* Whether async reads are on (protocol other than off): reads then bound horizons. */
bool machine_apf_async(const struct machine *m);
/* A synthetic-halted vCPU at now_ps (after its IPIs and timer were brought up to date):
 * true if something ends the halt. */
bool machine_apf_halt_ends(struct machine *m, struct mvcpu *c);
/* After each slice of c, at its local time t_ps: traces what the guest's process
 * statistics show of APF waits since the last look — apf_wait (a task started sleeping
 * on a token), apf_wake (its token was cleared: woken), apf_resume (it has been
 * scheduled in since). Sampled, so stamped at slice ends: the order of a
 * task's events is exact, their times are within a slice of the truth. */
void machine_apf_observe(struct machine *m, struct mvcpu *c, uint64_t t_ps);
/* The summary's apf counts and its per-vCPU section. */
void machine_apf_summary(struct machine *m, struct run_summary *s);
/* The engine, for the race lab's questions about tokens (race_watch.c). */
struct apf_engine *machine_apf_engine(const struct machine *m);
/* Not-present events and page-ready notifications delivered so far (0 without APF). */
void machine_apf_totals(const struct machine *m, uint64_t *not_present, uint64_t *page_ready);

/* measure.c: the measurement window (limits/measure-from) */
bool machine_measure_setup(struct machine *m, struct diag *err);
void machine_measure_destroy(struct machine *m);
/* Takes the window's start counts at the first vCPU slice starting at or after
 * limits/measure-from (machine_vcpu_run). */
void machine_measure_due(struct machine *m, uint64_t now_ps);
/* The summary's "window" section (false if the run ended before the window began). */
bool machine_measure_section(struct machine *m, struct report_section *out);

/* nmi_plan.c */
bool machine_nmi_setup(struct machine *m, struct diag *err); /* a plan the machine cannot carry out: false */
void machine_nmi_destroy(struct machine *m);
/* Once the vCPUs exist: watches the addresses of the at-symbol plans (vcpu_watch). */
bool machine_nmi_arm(struct machine *m, struct diag *err);
/* The vCPU stopped at a watched address (VCPU_EXIT_WATCH): its plan's NMI, at that boundary. */
void machine_nmi_watch_hit(struct machine *m, struct mvcpu *c, int watch, uint64_t t_ps);
/* Queues the NMIs of c's plans due at its retired count or by local time t_ps. */
void machine_nmi_due(struct machine *m, struct mvcpu *c, uint64_t t_ps);
/* Instructions c may retire before its next planned count (UINT64_MAX: none). */
uint64_t machine_nmi_cap(const struct machine *m, const struct mvcpu *c);
/* The next periodic NMI's time on c (a horizon, a halted vCPU's wake), or NEVER. */
uint64_t machine_nmi_next_ps(const struct machine *m, const struct mvcpu *c);
/* A plan of c is due at its current count (e.g. reached before it halted). */
bool machine_nmi_due_now(const struct machine *m, const struct mvcpu *c);
/* A trace event named `name` on vCPU `cpu` (after-event plans count them). */
void machine_nmi_event(struct machine *m, int cpu, const char *name);
uint64_t machine_nmi_injected(const struct machine *m);

/* window.c */
/* A trace event named `name` on vCPU `cpu` (machine_nmi_event passes every one on). */
void machine_window_event(struct machine *m, int cpu, const char *name);
/* A plan's NMI was queued on vCPU `vcpu` at rip with `retired` instructions retired. */
void machine_window_nmi(struct machine *m, unsigned vcpu, uint64_t rip, uint64_t retired);
/* machine_set_run_end's time, or NEVER. */
uint64_t machine_window_end_ps(const struct machine *m);
/* At or past that end (and not ended yet): ends the run there; true. */
bool machine_window_end_due(struct machine *m, uint64_t now_ps);

/* race_watch.c (docs/race-lab.md) */
bool machine_race_setup(struct machine *m, struct diag *err); /* after the boot layout */
void machine_race_destroy(struct machine *m);
/* The host delivered a "page not present" (token, the faulting gva; by #VE or #PF) to c,
 * which is still at the faulting instruction: traces apf_user_not_present or
 * apf_kernel_not_present (which after-event NMI plans count) and remembers it. */
void machine_race_not_present(struct machine *m, struct mvcpu *c, uint32_t token, uint64_t gva, bool by_ve,
                              uint64_t now_ps);
/* An NMI plan queued an NMI on c at rip (nmi_plan.c). */
void machine_race_nmi(struct machine *m, struct mvcpu *c, uint64_t rip, uint64_t t_ps);
/* After each guest run of c: was the open not-present's CR2 clobbered? */
void machine_race_look(struct machine *m, struct mvcpu *c, uint64_t t_ps);
/* After each slice: judges the guest's APF waits (may end the run hung_task / hung_vcpu). */
void machine_race_watch(struct machine *m, uint64_t t_ps);
/* At the time limit, before it decides: true if a lost wait ended the run. */
bool machine_race_judge_end(struct machine *m, uint64_t end_ps);
/* A panic of c that a reproduced race explains: the race's sentence to put first. */
bool machine_race_panic_prefix(struct machine *m, struct mvcpu *c, const struct apfsim_panic_record *r, char *buf,
                               size_t len);
void machine_race_summary(const struct machine *m, struct run_summary *s);
/* For a verdict of a run the race did not harm: "; on vCPU 0 an NMI was injected ..." or "". */
void machine_race_note(const struct machine *m, char *buf, size_t len);

/* summary.c */
bool machine_read_proc(const struct machine *m, unsigned k, struct apfsim_proc_stats *ps);

#endif
