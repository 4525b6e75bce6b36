/* sched.c — round-robin scheduling over a global run queue (see sched.h).
 *
 * Preemption: the timer tick sets need_resched when another task is waiting; the kernel
 * is not preemptible (like Linux without CONFIG_PREEMPT), so the switch happens on the
 * way back to user mode (do_idt_entry) or when a task blocks, yields or exits.
 * Idle vCPUs halt (`sti; hlt`); a wake-up sends the lowest-numbered idle vCPU a
 * RESCHEDULE IPI so that a runnable task does not wait for the next tick.
 */
#include "sched.h"

#include "apic.h"
#include "mm.h"
#include "percpu.h"
#include "traps.h"
#include "x86.h"

struct task *all_tasks[APFSIM_MAX_PROCESSES];
uint32_t nr_tasks;

static spinlock_t rq_lock;
static struct task *rq_head, *rq_tail;
static uint32_t tasks_alive;
static struct task idle_tasks[APFSIM_MAX_VCPUS];

static void rq_push(struct task *t) {
  t->rq_next = 0;
  t->queued = 1;
  if (rq_tail)
    rq_tail->rq_next = t;
  else
    rq_head = t;
  rq_tail = t;
}

static struct task *rq_pop(void) {
  struct task *t = rq_head;
  if (t) {
    rq_head = t->rq_next;
    if (!rq_head) rq_tail = 0;
    t->queued = 0;
    t->rq_next = 0;
  }
  return t;
}

void sched_init_cpu(unsigned cpu) {
  struct percpu *pc = this_cpu();
  struct task *idle = &idle_tasks[cpu];
  idle->state = TASK_RUNNING;
  idle->on_cpu = 1;
  idle->cpu = cpu;
  snprintf(idle->comm, sizeof idle->comm, "idle/%u", cpu);
  pc->idle = pc->current = idle;
  pc->last_switch_tsc = rdtsc();
}

/* Called with rq_lock held, after a task was queued. Claims the idle vCPU it kicks so that
 * the next wake-up kicks another one. */
static void kick_idle_cpu(void) {
  struct percpu *self = this_cpu();
  __atomic_thread_fence(__ATOMIC_SEQ_CST); /* the queued task is visible before idle_now is read */
  for (uint32_t i = 0; i < boot_info.n_vcpus; i++) {
    struct percpu *pc = &percpu_area[i];
    if (pc == self || !__atomic_exchange_n(&pc->idle_now, 0, __ATOMIC_SEQ_CST)) continue;
    apic_send_ipi(i, APFSIM_VEC_RESCHEDULE);
    self->stats->ipis_sent++;
    return;
  }
}

static struct task *context_switch(struct task *prev, struct task *next) {
  struct percpu *pc = this_cpu();
  uint64_t now = rdtsc();
  if (prev->stats) {
    prev->stats->run_tsc += now - pc->last_switch_tsc;
    if (prev->state == TASK_RUNNING) prev->stats->state = APFSIM_PROC_RUNNABLE;
  }
  pc->last_switch_tsc = now;
  /* Idle tasks keep whatever address space is loaded (Linux's lazy TLB): fewer CR3
   * loads, and every CR3 load costs the simulator a shadow-table reset. */
  if (next->cr3 && next->cr3 != pc->loaded_cr3) {
    write_cr3(next->cr3);
    pc->loaded_cr3 = next->cr3;
  }
  if (next->kstack_top) pc->tss.rsp[0] = next->kstack_top;
  next->on_cpu = 1;
  next->cpu = pc->cpu;
  pc->current = next;
  pc->stats->context_switches++;
  /* One port write per switch (next's pid, 0 for idle): the host traces task_switch from
   * it, for per-task timelines; counting it here keeps it equal to context_switches. */
  outl(APFSIM_PORT_TASK_SWITCH, next->pid);
  if (next->stats) {
    next->stats->state = APFSIM_PROC_RUNNING;
    next->stats->switches_in++;
    next->stats->last_vcpu = pc->cpu;
    if (!next->stats->start_tsc) next->stats->start_tsc = now;
  }
  return __switch_to_asm(prev, next);
}

static void finish_task_switch(struct task *prev) { prev->on_cpu = 0; }

void schedule_tail(struct task *prev) {
  finish_task_switch(prev);
  spin_unlock(&rq_lock);
}

void schedule(void) {
  uint64_t flags = spin_lock_irqsave(&rq_lock);
  struct percpu *pc = this_cpu();
  struct task *prev = pc->current, *next;
  pc->need_resched = 0;
  if (prev != pc->idle && prev->state == TASK_RUNNING) rq_push(prev);
  next = rq_pop();
  if (!next) next = pc->idle;
  if (next != prev) {
    /* Returns in the context of a task that called schedule() earlier — possibly on
     * another vCPU: nothing from before the switch but locals may be reused. */
    prev = context_switch(prev, next);
    finish_task_switch(prev);
  }
  spin_unlock_irqrestore(&rq_lock, flags);
}

void set_current_sleeping(void) {
  struct task *t = current_task();
  t->sleep_start_ns = ktime_ns();
  t->hung_reported = 0;
  if (t->stats) t->stats->state = APFSIM_PROC_SLEEPING;
  WRITE_ONCE(t->state, TASK_SLEEPING);
}

void set_current_running(void) {
  struct task *t = current_task();
  WRITE_ONCE(t->state, TASK_RUNNING);
  if (t->stats) t->stats->state = APFSIM_PROC_RUNNING;
}

void wake_up_process(struct task *t) {
  uint64_t flags = spin_lock_irqsave(&rq_lock);
  if (t->state == TASK_SLEEPING) {
    t->state = TASK_RUNNING;
    if (t->stats) t->stats->state = APFSIM_PROC_RUNNABLE;
    /* Still on a vCPU (it has not reached its schedule() yet): it will see TASK_RUNNING
     * there and stay runnable. Otherwise its registers are saved: queue it. */
    if (!t->on_cpu && !t->queued) {
      rq_push(t);
      kick_idle_cpu();
    }
  }
  spin_unlock_irqrestore(&rq_lock, flags);
}

void enqueue_new_task(struct task *t) {
  uint64_t flags = spin_lock_irqsave(&rq_lock);
  t->state = TASK_RUNNING;
  if (t->stats) t->stats->state = APFSIM_PROC_RUNNABLE;
  tasks_alive++;
  rq_push(t);
  spin_unlock_irqrestore(&rq_lock, flags);
}

void sched_tick(void) {
  struct percpu *pc = this_cpu();
  if (pc->current != pc->idle && READ_ONCE(rq_head)) pc->need_resched = 1;
}

void sched_resched_ipi(void) { this_cpu()->need_resched = 1; }

__noreturn void cpu_idle(void) {
  struct percpu *pc = this_cpu(); /* the idle task never migrates */
  for (;;) {
    local_irq_disable();
    /* Announce idleness before the last look at the queue: a waker that queues after
     * this look sees idle_now and sends the IPI that ends the hlt. */
    __atomic_store_n(&pc->idle_now, 1, __ATOMIC_SEQ_CST);
    if (READ_ONCE(rq_head) || pc->need_resched) {
      pc->idle_now = 0;
      schedule();
      continue;
    }
    uint64_t t0 = rdtsc();
    pc->stats->idle_halts++;
    safe_halt();
    pc->idle_now = 0;
    pc->stats->idle_tsc += rdtsc() - t0;
  }
}

__noreturn void do_exit(int64_t code) {
  local_irq_disable();
  struct percpu *pc = this_cpu();
  struct task *t = pc->current;
  if (!t->stats) panic("do_exit from %s", t->comm);
  t->stats->exit_code = code;
  t->stats->exit_tsc = rdtsc();
  t->stats->state = APFSIM_PROC_EXITED;
  printk("pid %u (%s) exited with %lld after %llu ops\n", t->pid, t->comm, (long long)code,
         (unsigned long long)t->stats->ops_done);
  outl(APFSIM_PORT_PROC_EXIT, t->pid);

  uint64_t flags = spin_lock_irqsave(&rq_lock);
  t->state = TASK_DEAD;
  bool last = --tasks_alive == 0;
  spin_unlock_irqrestore(&rq_lock, flags);
  if (last) {
    printk("all processes exited\n");
    outl(APFSIM_PORT_SHUTDOWN, APFSIM_SHUTDOWN_ALL_EXITED);
  }
  schedule();
  panic("dead task %s was scheduled again", t->comm);
}

void force_sig_bus(struct task *t, uint32_t code, uint64_t addr, uint64_t token, uint64_t rip) {
  if (!t->stats) panic("SIGBUS for %s (code %u, addr %#llx, token %#llx)", t->comm, code, (unsigned long long)addr,
                       (unsigned long long)token);
  if (t->sig_pending) return; /* the first reason is the one reported */
  t->sig_pending = APFSIM_SIGBUS;
  t->stats->sig_code = code;
  t->stats->sig_addr = addr;
  t->stats->sig_token = token;
  t->stats->sig_rip = rip;
}

__noreturn void do_exit_by_signal(void) {
  local_irq_disable();
  struct percpu *pc = this_cpu();
  struct task *t = pc->current;
  uint32_t sig = t->sig_pending;
  t->stats->term_signal = sig;
  pc->stats->sigbus_kills++;
  printk("pid %u (%s) killed by SIGBUS (%s, addr %#llx, token %#llx, rip %#llx)\n", t->pid, t->comm,
         t->stats->sig_code == APFSIM_SIGBUS_APF_PAGE_ERROR ? "APF page error" : "#VE page error",
         (unsigned long long)t->stats->sig_addr, (unsigned long long)t->stats->sig_token,
         (unsigned long long)t->stats->sig_rip);
  outl(APFSIM_PORT_SIGBUS, t->pid);
  do_exit(128 + (int64_t)sig);
}

void hung_task_check(uint64_t now_ns) {
  uint64_t timeout = boot_info.hung_task_timeout_ns;
  if (!timeout) return;
  for (uint32_t i = 0; i < nr_tasks; i++) {
    struct task *t = all_tasks[i];
    if (READ_ONCE(t->state) != TASK_SLEEPING || t->hung_reported) continue;
    /* Each vCPU's clock is its own TSC, which may run up to a quantum ahead of
     * another's: a task put to sleep on a vCPU that is ahead can look as if it
     * slept "in the future" here. Compare signed so that reads as not hung
     * instead of wrapping to an enormous sleep. */
    if ((int64_t)(now_ns - t->sleep_start_ns) <= (int64_t)timeout) continue;
    t->hung_reported = 1;
    printk("INFO: task %s:%u blocked for more than %llu ms\n", t->comm, t->pid,
           (unsigned long long)(timeout / 1000000));
    outl(APFSIM_PORT_HUNG_TASK, t->pid);
  }
}
