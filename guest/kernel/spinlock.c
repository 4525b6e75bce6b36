/* spinlock.c — test-and-test-and-set spinlocks. `lock xchg` is a full barrier; `pause`
 * while waiting. With several vCPUs a holder may be descheduled by the simulator's
 * quantum like a preempted vCPU on a real host: the waiter spins, deterministically. */
#include "kernel.h"
#include "x86.h"

bool spin_trylock(spinlock_t *l) { return __atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE) == 0; }

void spin_lock(spinlock_t *l) {
  while (!spin_trylock(l))
    while (l->locked) cpu_relax();
}

void spin_unlock(spinlock_t *l) { __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE); }

uint64_t spin_lock_irqsave(spinlock_t *l) {
  uint64_t flags = local_irq_save();
  spin_lock(l);
  return flags;
}

void spin_unlock_irqrestore(spinlock_t *l, uint64_t flags) {
  spin_unlock(l);
  local_irq_restore(flags);
}
