/* kvm.c — guest side of KVM asynchronous page faults, after Linux's arch/x86/kernel/kvm.c
 * (5.9+ for the 2020 protocol, 4.19-5.7 for the 2010 one), plus apfsim's #VE delivery.
 *
 * Protocols (boot_info.apf_protocol):
 *   off, halt  MSR_KVM_ASYNC_PF_EN is never written: the host faults synchronously or
 *              halts the vCPU (its choice, DESIGN.md §2).
 *   2010       EN = area | ENABLED [| SEND_ALWAYS]. #PF with reason 1 (not present): the
 *              task sleeps on the token (CR2) — or, when it cannot schedule (kernel mode,
 *              the idle task, NMI context), the vCPU halts with interrupts on until the
 *              token is woken (kvm_async_pf_task_wait). #PF with reason 2 (page ready):
 *              wake the token; a token nobody waits for leaves a dummy node.
 *   2020       INT = vector, then EN = area | ENABLED | DELIVERY_AS_INT [| SEND_ALWAYS]
 *              [| SEND_ERROR]. #PF with flags 1: panic if the interrupted context had
 *              IF = 0 or was kernel mode (Linux's two checks, in that order), else the
 *              task sleeps on the token (kvm_async_pf_task_wait_schedule). Page ready is
 *              an interrupt: EOI, read the token from the area, wake it, zero the token,
 *              write MSR_KVM_ASYNC_PF_ACK.
 * Sleepers and dummies live in a 256-bucket hash of the token (async_pf_sleepers), as in
 * Linux: a wake that finds no sleeper leaves a dummy node, which the not-present event for
 * that token then consumes instead of sleeping. Token 0xffffffff wakes every node of this
 * vCPU. Dummies come from a fixed pool (Linux kmallocs them): exhausting it panics.
 *
 * #VE (apfsim_boot.h "#VE information area"): not-present events by #VE carry the token
 * in the information area, never in CR2 or the APF word, so no #PF nested in an NMI can
 * consume them; page errors by #VE kill a user task with SIGBUS or resume a kernel access
 * at its exception-table fixup (copy_to_user -> -EFAULT).
 *
 * Not for: the NMI's CR2 policies (nmi.c), the entry orders (entry.S, fault.c).
 */
#include "kvm.h"

#include "apic.h"
#include "percpu.h"
#include "process.h"
#include "sched.h"
#include "traps.h"
#include "x86.h"

static const char *const protocol_names[] = {"off", "halt", "2010", "2020"};

static inline struct kvm_vcpu_pv_apf_data *apf_data(struct percpu *pc) {
  return (struct kvm_vcpu_pv_apf_data *)pc->apf_area;
}

/* ---- the sleeper hash (Linux: async_pf_sleepers) ---------------------------------- */

#define KVM_TASK_SLEEP_HASHBITS 8
#define KVM_TASK_SLEEP_HASHSIZE (1u << KVM_TASK_SLEEP_HASHBITS)
#define GOLDEN_RATIO_32 0x61C88647u /* Linux include/linux/hash.h */

/* A task (or a halted vCPU) waiting for a token, on its own stack; or a dummy left by a
 * wake that came first, from the pool. Linked like an hlist: pprev == NULL means
 * unhashed, which is how a sleeper learns it was woken. */
struct kvm_task_sleep_node {
  struct kvm_task_sleep_node *next, **pprev;
  struct task *task; /* the sleeper; NULL for a dummy */
  uint32_t token;
  uint32_t cpu;
  bool halted;       /* the vCPU halts instead of scheduling: wake it with an IPI */
  bool dummy;
  bool is_err;       /* the page-ready said PAGE_ERROR */
};

static struct kvm_task_sleep_head {
  spinlock_t lock;
  struct kvm_task_sleep_node *first;
} async_pf_sleepers[KVM_TASK_SLEEP_HASHSIZE];

static inline uint32_t hash_32(uint32_t val) { return (val * GOLDEN_RATIO_32) >> (32 - KVM_TASK_SLEEP_HASHBITS); }

static void hlist_add_head(struct kvm_task_sleep_node *n, struct kvm_task_sleep_head *b) {
  n->next = b->first;
  if (b->first) b->first->pprev = &n->next;
  b->first = n;
  __atomic_store_n(&n->pprev, &b->first, __ATOMIC_RELAXED);
}

/* Unlinks n; after the release store the sleeper may return and its node vanish. */
static void hlist_del_init(struct kvm_task_sleep_node *n) {
  *n->pprev = n->next;
  if (n->next) n->next->pprev = n->pprev;
  n->next = 0;
  __atomic_store_n(&n->pprev, (struct kvm_task_sleep_node **)0, __ATOMIC_RELEASE);
}

static bool hlist_unhashed(struct kvm_task_sleep_node *n) {
  return __atomic_load_n(&n->pprev, __ATOMIC_ACQUIRE) == 0;
}

static struct kvm_task_sleep_node *_find_apf_task(struct kvm_task_sleep_head *b, uint32_t token) {
  for (struct kvm_task_sleep_node *n = b->first; n; n = n->next)
    if (n->token == token) return n;
  return 0;
}

/* Dummy nodes: a fixed pool with a free list (taken under a bucket lock, then this one). */
#define APF_DUMMY_NODES 4096u
static struct kvm_task_sleep_node dummy_pool[APF_DUMMY_NODES];
static struct kvm_task_sleep_node *dummy_free_list;
static uint32_t dummy_pool_used, dummies_live;
static spinlock_t dummy_lock;

static struct kvm_task_sleep_node *dummy_alloc(uint32_t token) {
  spin_lock(&dummy_lock);
  struct kvm_task_sleep_node *n = dummy_free_list;
  if (n)
    dummy_free_list = n->next;
  else if (dummy_pool_used < APF_DUMMY_NODES)
    n = &dummy_pool[dummy_pool_used++];
  if (n) dummies_live++;
  spin_unlock(&dummy_lock);
  if (!n) panic("kvm: %u APF dummy nodes outstanding, the pool is exhausted (wake of token %#x)", dummies_live, token);
  *n = (struct kvm_task_sleep_node){.dummy = true};
  return n;
}

static void dummy_put(struct kvm_task_sleep_node *n) {
  spin_lock(&dummy_lock);
  n->next = dummy_free_list;
  dummy_free_list = n;
  dummies_live--;
  spin_unlock(&dummy_lock);
}

/* Linux apf_task_wake_one(): unhash, then wake whoever waits. The node must not be
 * touched after hlist_del_init (a sleeper's node lives on its stack). A dummy has no one
 * to wake: it goes back to the pool (Linux leaks it here). Called with the bucket lock. */
static void apf_task_wake_one(struct kvm_task_sleep_node *n) {
  struct task *t = n->task;
  bool halted = n->halted, dummy = n->dummy;
  uint32_t cpu = n->cpu;
  hlist_del_init(n);
  if (dummy) {
    this_cpu()->stats->apf_dummy_dropped++;
    dummy_put(n);
  } else if (halted) {
    /* smp_send_reschedule(): the IPI ends the hlt of the waiting vCPU (itself included) */
    apic_send_ipi(cpu, APFSIM_VEC_RESCHEDULE);
    this_cpu()->stats->ipis_sent++;
  } else {
    if (t->stats) t->stats->apf_token = 0;
    wake_up_process(t);
  }
}

/* Linux apf_task_wake_all(): every node of this vCPU, sleepers and dummies. */
static void apf_task_wake_all(void) {
  uint32_t cpu = this_cpu()->cpu;
  for (uint32_t i = 0; i < KVM_TASK_SLEEP_HASHSIZE; i++) {
    struct kvm_task_sleep_head *b = &async_pf_sleepers[i];
    spin_lock(&b->lock);
    for (struct kvm_task_sleep_node *n = b->first, *next; n; n = next) {
      next = n->next;
      if (n->cpu == cpu) apf_task_wake_one(n);
    }
    spin_unlock(&b->lock);
  }
}

/* Linux kvm_async_pf_task_wake(): wake the token's sleeper, or leave a dummy for the
 * not-present event still to come. IRQs are off (interrupt or exception context). */
static void kvm_async_pf_task_wake(uint32_t token, bool is_err) {
  struct percpu *pc = this_cpu();
  if (token == KVM_APF_WAKE_ALL) {
    pc->stats->apf_wake_all++;
    apf_task_wake_all();
    return;
  }
  struct kvm_task_sleep_head *b = &async_pf_sleepers[hash_32(token)];
  spin_lock(&b->lock);
  struct kvm_task_sleep_node *n = _find_apf_task(b, token);
  if (!n) {
    n = dummy_alloc(token);
    n->token = token;
    n->cpu = pc->cpu;
    n->is_err = is_err;
    hlist_add_head(n, b);
    pc->stats->apf_dummy_created++;
  } else {
    n->is_err = is_err;
    apf_task_wake_one(n);
  }
  spin_unlock(&b->lock);
}

/* Linux kvm_async_pf_queue_task(): hash the sleeper in, unless a node with the token is
 * there already — the wake came first. Then that node is taken out instead (a dummy goes
 * back to the pool; were it another sleeper on the same token, it is woken) and false is
 * returned: no sleep. *dummy_err: the early wake reported PAGE_ERROR. */
static bool kvm_async_pf_queue_task(uint32_t token, struct kvm_task_sleep_node *n, bool *dummy_err) {
  struct percpu *pc = this_cpu();
  struct kvm_task_sleep_head *b = &async_pf_sleepers[hash_32(token)];
  spin_lock(&b->lock);
  struct kvm_task_sleep_node *e = _find_apf_task(b, token);
  if (e) {
    *dummy_err = e->is_err;
    if (e->dummy) {
      hlist_del_init(e);
      dummy_put(e);
      pc->stats->apf_dummy_consumed++;
    } else {
      apf_task_wake_one(e);
    }
    spin_unlock(&b->lock);
    return false;
  }
  n->token = token;
  n->cpu = pc->cpu;
  hlist_add_head(n, b);
  spin_unlock(&b->lock);
  return true;
}

/* The 2020 error-reporting series' handle_async_pf_error(): SIGBUS for a user task. */
static void handle_async_pf_error(struct pt_regs *regs, uint32_t token) {
  struct percpu *pc = this_cpu();
  pc->stats->apf_page_errors++;
  if (user_mode(regs)) force_sig_bus(pc->current, APFSIM_SIGBUS_APF_PAGE_ERROR, 0, token, regs->rip);
}

/* Linux 5.9+ kvm_async_pf_task_wait_schedule(): sleep until the token is woken, letting
 * other tasks run. Called with IRQs off from a user-mode #PF or #VE; returns with them off. */
static void kvm_async_pf_task_wait_schedule(uint32_t token, struct pt_regs *regs) {
  struct percpu *pc = this_cpu();
  struct task *t = pc->current;
  struct kvm_task_sleep_node n = {.task = t};
  bool dummy_err = false;

  if (t->stats) t->stats->apf_waits++;
  if (!kvm_async_pf_queue_task(token, &n, &dummy_err)) {
    if (dummy_err) handle_async_pf_error(regs, token);
    return;
  }
  pc->stats->apf_sleeps++;
  uint64_t t0 = rdtsc();
  if (t->stats) t->stats->apf_token = token;
  for (;;) {
    set_current_sleeping(); /* prepare_to_swait_exclusive() */
    if (hlist_unhashed(&n)) break;
    local_irq_enable();
    schedule();
    local_irq_disable();
  }
  set_current_running(); /* finish_swait() */
  if (t->stats) {
    t->stats->apf_token = 0;
    t->stats->apf_wait_tsc += rdtsc() - t0;
  }
  if (n.is_err) handle_async_pf_error(regs, token);
}

/* Linux 4.19-5.7 kvm_async_pf_task_wait(token, interrupt_kernel): sleep like the above if
 * the task can schedule; otherwise — the idle task, or a fault that interrupted the kernel
 * (this kernel is not preemptible, so Linux's !CONFIG_PREEMPT_COUNT rule applies; an NMI
 * is kernel mode too) — halt with interrupts enabled until the token is woken. */
static void kvm_async_pf_task_wait(uint32_t token, bool interrupt_kernel, struct pt_regs *regs) {
  struct percpu *pc = this_cpu();
  struct task *t = pc->current;
  bool halted = t == pc->idle || interrupt_kernel;
  struct kvm_task_sleep_node n = {.task = t, .halted = halted};
  bool dummy_err = false;

  if (!halted) {
    kvm_async_pf_task_wait_schedule(token, regs);
    return;
  }
  if (!kvm_async_pf_queue_task(token, &n, &dummy_err)) return;
  pc->stats->apf_halt_waits++;
  uint32_t outer_token = pc->stats->apf_halt_token;
  uint64_t outer_since = pc->stats->apf_halt_since_tsc;
  pc->stats->apf_halt_token = token;
  pc->stats->apf_halt_since_tsc = rdtsc();
  while (!hlist_unhashed(&n)) {
    safe_halt(); /* native_safe_halt(): sti; hlt */
    local_irq_disable();
  }
  pc->stats->apf_halt_token = outer_token;
  pc->stats->apf_halt_since_tsc = outer_since;
}

/* ---- #PF delivery ----------------------------------------------------------------- */

uint32_t kvm_read_and_reset_apf_flags(void) {
  struct percpu *pc = this_cpu();
  uint32_t flags = 0;
  if (pc->apf_enabled) {
    volatile uint32_t *word = &apf_data(pc)->flags;
    flags = *word;
    *word = 0;
  }
  return flags;
}

/* Linux 5.9+ __kvm_handle_async_pf(), after the flags were read: the IF check applies to
 * any flags value and comes first, then the kernel-mode check of a not-present event. */
static bool kvm_handle_async_pf_2020(struct pt_regs *regs, uint32_t token, uint32_t flags) {
  if (unlikely(!(regs->rflags & X86_RFLAGS_IF))) die(regs, token, "Host injected async #PF in interrupt disabled region");
  if (flags & KVM_PV_REASON_PAGE_NOT_PRESENT) {
    if (unlikely(!user_mode(regs))) die(regs, token, "Host injected async #PF in kernel mode");
    this_cpu()->stats->apf_not_present++;
    kvm_async_pf_task_wait_schedule(token, regs);
  } else {
    static bool warned;
    if (!warned) printk("WARNING: Unexpected async PF flags: %x\n", flags);
    warned = true;
  }
  return true;
}

/* Linux 4.19-5.7 do_async_page_fault(), after the reason was read. Anything but 1 or 2
 * is an ordinary fault. */
static bool do_async_page_fault(struct pt_regs *regs, uint32_t token, uint32_t reason) {
  struct percpu *pc = this_cpu();
  switch (reason) {
  case KVM_PV_REASON_PAGE_NOT_PRESENT:
    pc->stats->apf_not_present++;
    kvm_async_pf_task_wait(token, !user_mode(regs), regs);
    return true;
  case KVM_PV_REASON_PAGE_READY:
    pc->stats->apf_page_ready++;
    kvm_async_pf_task_wake(token, false);
    return true;
  default:
    return false;
  }
}

bool kvm_handle_async_pf(struct pt_regs *regs, uint64_t address, uint32_t flags) {
  /* Linux passes (u32)address: the token is 32 bits, and a clobbered CR2 is truncated */
  if (this_cpu()->apf_enabled == APFSIM_APF_2010) return do_async_page_fault(regs, (uint32_t)address, flags);
  return kvm_handle_async_pf_2020(regs, (uint32_t)address, flags);
}

/* ---- page ready by interrupt (2020) ----------------------------------------------- */

void sysvec_kvm_asyncpf_interrupt(struct pt_regs *regs) {
  (void)regs;
  struct percpu *pc = this_cpu();
  apic_eoi();
  if (pc->apf_enabled != APFSIM_APF_2020) {
    pc->stats->spurious_page_ready++;
    return;
  }
  volatile struct kvm_vcpu_pv_apf_data *a = apf_data(pc);
  uint32_t token = a->token;
  bool is_err = pc->apf_send_error && (a->ready_flags & KVM_PV_REASON_PAGE_ERROR);
  pc->stats->apf_page_ready++;
  kvm_async_pf_task_wake(token, is_err);
  /* free the slot, then tell the host it may deliver the next page-ready */
  a->ready_flags = 0;
  a->token = 0;
  wrmsr(MSR_KVM_ASYNC_PF_ACK, 1);
}

/* ---- NMI stash-reason policy (the 2020 proposal) ---------------------------------- */

void kvm_nmi_stash_apf_reason(void) {
  struct percpu *pc = this_cpu();
  uint32_t f = __atomic_exchange_n(&apf_data(pc)->flags, 0, __ATOMIC_RELAXED);
  pc->nmi_apf_stash = f;
  if (f) pc->stats->nmi_apf_stashed++;
}

void kvm_nmi_restore_apf_reason(void) {
  struct percpu *pc = this_cpu();
  if (pc->nmi_apf_stash) WRITE_ONCE(apf_data(pc)->flags, pc->nmi_apf_stash);
  pc->nmi_apf_stash = 0;
}

/* ---- #VE ---------------------------------------------------------------------------- */

/* A host page error on the access at regs->rip: SIGBUS for user mode (as for a #MC on
 * poisoned memory); in the kernel, the exception-table fixup (copy_to_user returns the
 * bytes not copied: -EFAULT); anything else is fatal. */
static void kvm_handle_page_error(struct pt_regs *regs, uint64_t gva) {
  struct percpu *pc = this_cpu();
  if (user_mode(regs)) {
    force_sig_bus(pc->current, APFSIM_SIGBUS_VE_PAGE_ERROR, gva, 0, regs->rip);
    return;
  }
  if (fixup_exception(regs)) {
    pc->stats->efault_fixups++;
    return;
  }
  die(regs, gva, "host page error in kernel mode, no exception-table fixup");
}

void exc_virtualization_exception(struct pt_regs *regs) {
  struct percpu *pc = this_cpu();
  volatile struct apfsim_ve_info *ve = (volatile struct apfsim_ve_info *)pc->ve_info;
  pc->stats->ve_exceptions++;
  if (!(pc->ve_enabled & APFSIM_VE_INFO_ENABLE) || ve->busy != APFSIM_VE_BUSY)
    die(regs, 0, "#VE, but no #VE information was delivered");
  uint32_t reason = ve->reason;
  uint64_t token = ve->token, gva = ve->gva;
  barrier();
  ve->busy = 0; /* release: the host may deliver the next #VE */

  switch (reason) {
  case APFSIM_VE_REASON_NOT_PRESENT:
    if (!(pc->ve_enabled & APFSIM_VE_INFO_NOT_PRESENT)) die(regs, gva, "#VE not-present event, but not opted in");
    if (unlikely(!(regs->rflags & X86_RFLAGS_IF))) die(regs, gva, "Host injected async #VE in interrupt disabled region");
    if (unlikely(!user_mode(regs))) die(regs, gva, "Host injected async #VE in kernel mode");
    pc->stats->apf_not_present++;
    kvm_async_pf_task_wait_schedule((uint32_t)token, regs);
    break;
  case APFSIM_VE_REASON_PAGE_ERROR:
    if (!(pc->ve_enabled & APFSIM_VE_INFO_PAGE_ERROR)) die(regs, gva, "#VE page error, but not opted in");
    kvm_handle_page_error(regs, gva);
    break;
  default:
    die(regs, gva, "#VE with an unknown reason");
  }
}

/* ---- per-vCPU set-up ------------------------------------------------------------- */

static bool kvm_para_available(void) {
  uint32_t r[4];
  cpuid(KVM_CPUID_SIGNATURE, r);
  return r[0] >= KVM_CPUID_FEATURES && r[1] == 0x4b4d564bu /* "KVMK" */ && r[2] == 0x564b4d56u /* "VMKV" */ &&
         r[3] == 0x4du /* "M\0\0\0" */;
}

static void kvm_register_ve_info(struct percpu *pc) {
  uint64_t bits = APFSIM_VE_INFO_ENABLE;
  if (boot_info.not_present_delivery == APFSIM_NP_VE) bits |= APFSIM_VE_INFO_NOT_PRESENT;
  if (boot_info.flags & APFSIM_BOOT_F_VE_PAGE_ERROR) bits |= APFSIM_VE_INFO_PAGE_ERROR;
  struct apfsim_ve_info *ve = (struct apfsim_ve_info *)pc->ve_info;
  memset(ve, 0, sizeof *ve);
  if (wrmsr_safe(MSR_APFSIM_VE_INFO, (uint64_t)ve | bits))
    panic("kvm: the host refused the #VE information area (MSR %#x raised #GP)", MSR_APFSIM_VE_INFO);
  pc->ve_enabled = (uint32_t)bits;
  pc->stats->ve_info_gpa = (uint64_t)ve;
}

void kvm_guest_cpu_init(void) {
  struct percpu *pc = this_cpu();
  uint32_t p = boot_info.apf_protocol;
  bool want_ve = boot_info.not_present_delivery == APFSIM_NP_VE || (boot_info.flags & APFSIM_BOOT_F_VE_PAGE_ERROR);

  if (p == APFSIM_APF_2010 || p == APFSIM_APF_2020) {
    uint32_t r[4] = {0};
    bool kvm = kvm_para_available();
    if (kvm) cpuid(KVM_CPUID_FEATURES, r);
    uint32_t need = 1u << KVM_FEATURE_ASYNC_PF;
    if (p == APFSIM_APF_2020) need |= 1u << KVM_FEATURE_ASYNC_PF_INT;
    if (!kvm || (r[0] & need) != need) {
      if (pc->cpu == 0)
        printk("kvm: APF protocol %s asked for, but the host %s: APF stays off\n", protocol_names[p],
               kvm ? "does not offer the CPUID feature" : "is not KVM");
    } else {
      uint64_t pa = (uint64_t)pc->apf_area | KVM_ASYNC_PF_ENABLED;
      memset(pc->apf_area, 0, sizeof pc->apf_area);
      if (boot_info.flags & APFSIM_BOOT_F_APF_SEND_ALWAYS) pa |= KVM_ASYNC_PF_SEND_ALWAYS;
      if (p == APFSIM_APF_2020) {
        pa |= KVM_ASYNC_PF_DELIVERY_AS_INT;
        if (boot_info.flags & APFSIM_BOOT_F_APF_PAGE_ERROR) {
          if (r[0] & (1u << KVM_FEATURE_ASYNC_PF_ERROR))
            pa |= KVM_ASYNC_PF_SEND_ERROR;
          else if (pc->cpu == 0)
            printk("kvm: APF page-error reporting asked for, but the host does not offer it\n");
        }
        wrmsr(MSR_KVM_ASYNC_PF_INT, boot_info.page_ready_vector);
      }
      wrmsr(MSR_KVM_ASYNC_PF_EN, pa);
      pc->apf_send_error = (pa & KVM_ASYNC_PF_SEND_ERROR) != 0;
      pc->apf_enabled = p;
      pc->stats->apf_enabled = p;
      pc->stats->apf_area_gpa = pa & KVM_ASYNC_PF_ADDR_MASK;
      if (pc->cpu == 0) printk("kvm: APF protocol %s enabled (MSR_KVM_ASYNC_PF_EN %#llx on vCPU 0)\n", protocol_names[p],
                               (unsigned long long)pa);
    }
  }
  if (want_ve) {
    if (boot_info.not_present_delivery == APFSIM_NP_VE && pc->apf_enabled != APFSIM_APF_2020)
      panic("kvm: not-present delivery by #VE needs the 2020 APF protocol enabled");
    kvm_register_ve_info(pc);
  }
}
