/* process.h — user processes: creation from the boot info's workload, their memory ranges,
 * and the address checks the fault and uaccess paths use.
 * Not for: scheduling (sched.h), page-table mechanics (mm.h).
 */
#ifndef GUEST_PROCESS_H
#define GUEST_PROCESS_H

#include "sched.h"

/* Creates every process of the workload and queues it (BSP, before the APs start). */
void processes_create(void);

/* Linux's access_ok(): [addr, addr + len) lies in the user part of the address space —
 * the shared user text or [user_start, 2^47). It says nothing about what is mapped;
 * a fault on such an address is resolved or fixed up by the #PF handler. */
bool access_ok(uint64_t addr, uint64_t len);

/* addr is in one of t's demand-zero areas (working set, zipf table, stack). */
bool in_demand_area(const struct task *t, uint64_t addr);

/* Maps and zeroes the page of addr in the current task (not-present fault on a demand
 * area). */
void handle_demand_fault(struct task *t, uint64_t addr);

/* addr is in the boot info's DAX window and t is a DAX process of this kind. */
bool in_dax_area(const struct task *t, uint64_t addr, uint32_t kind);
/* Maps the DAX page of addr read-only in t's table, user-accessible or supervisor-only;
 * its content is the host file's, so it is not zeroed. */
void handle_dax_fault(struct task *t, uint64_t addr, bool user);

#endif
