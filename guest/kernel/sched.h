/* sched.h — tasks and the scheduler.
 *
 * One task per user process (single-threaded) plus one idle task per vCPU, which runs on
 * the vCPU's boot stack. A global FIFO run queue under one spinlock gives round-robin
 * across all vCPUs; the lock is held across the stack switch and released by the task
 * switched to (Linux's finish_task_switch), so a task is never picked by a second vCPU
 * before its registers are saved.
 * Not for: address spaces and process creation (process.c).
 */
#ifndef GUEST_SCHED_H
#define GUEST_SCHED_H

#include "kernel.h"

enum task_state {
  TASK_RUNNING,  /* on a vCPU, or queued to run (`queued` says which) */
  TASK_SLEEPING, /* waiting for wake_up_process() (e.g. an APF token, issue 6) */
  TASK_DEAD,
};

struct task {
  uint64_t thread_sp;        /* TASK_THREAD_SP: kernel RSP while switched out */
  uint64_t kstack_top;
  uint64_t cr3;              /* 0 for idle tasks: they borrow whatever is loaded (lazy TLB) */
  volatile int state;        /* enum task_state */
  volatile int on_cpu;       /* registers live on a vCPU (not yet saved by a switch) */
  int queued;                /* in the run queue */
  uint32_t pid;              /* 0 for idle tasks */
  uint32_t cpu;              /* vCPU it last ran on */
  struct task *rq_next;
  uint64_t sleep_start_ns;   /* hung-task watchdog */
  int hung_reported;
  uint32_t sig_pending;      /* a fatal signal to act on at the return to user mode (APFSIM_SIGBUS) */
  struct apfsim_proc_stats *stats; /* NULL for idle */
  /* the process (NULL fields for idle) */
  uint64_t range_base, range_bytes;
  struct apfsim_proc_layout layout;
  char comm[16];
};
_Static_assert(__builtin_offsetof(struct task, thread_sp) == TASK_THREAD_SP, "asm_offsets.h");

/* task_pt_regs: the user-mode frame at the top of a user task's kernel stack. */
static inline struct pt_regs *task_pt_regs(const struct task *t) {
  return (struct pt_regs *)(uintptr_t)(t->kstack_top - sizeof(struct pt_regs));
}

extern struct task *all_tasks[APFSIM_MAX_PROCESSES];
extern uint32_t nr_tasks;

void sched_init_cpu(unsigned cpu);      /* makes the running boot context this vCPU's idle task */
/* Marks the current task asleep; the caller then re-checks its condition and calls
 * schedule() (wake_up_process() in between makes that schedule() return at once). */
void set_current_sleeping(void);
/* Undoes set_current_sleeping() when the condition turned out true before schedule()
 * (Linux finish_swait()'s __set_current_state(TASK_RUNNING)). */
void set_current_running(void);
void schedule(void);                    /* any IRQ state; returns with the caller's restored */
void wake_up_process(struct task *t);
void enqueue_new_task(struct task *t);
void sched_tick(void);                  /* timer interrupt */
void sched_resched_ipi(void);           /* RESCHEDULE vector */
__noreturn void cpu_idle(void);
__noreturn void do_exit(int64_t code);
/* Records a fatal SIGBUS for t (its statistics say why); the task dies at its return to
 * user mode (exit_to_user_mode), as Linux's force_sig() + default action. */
void force_sig_bus(struct task *t, uint32_t code, uint64_t addr, uint64_t token, uint64_t rip);
/* The current task dies of its pending signal: reported on APFSIM_PORT_SIGBUS. */
__noreturn void do_exit_by_signal(void);
void schedule_tail(struct task *prev);  /* called by ret_from_fork */
void hung_task_check(uint64_t now_ns);

#endif
