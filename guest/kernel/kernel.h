/* kernel.h — what every kernel file needs: the register frame of an entry, console and
 * panic, string helpers, the boot info the kernel runs from, spinlocks.
 * Not for: per-subsystem interfaces (mm.h, sched.h, traps.h, percpu.h).
 */
#ifndef GUEST_KERNEL_H
#define GUEST_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apfsim_boot.h"
#include "asm_offsets.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() __asm__ volatile("" ::: "memory")
#define __noreturn __attribute__((noreturn))

/* Segment selectors of the kernel GDT (cpu.c). User selectors carry RPL 3. */
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS (0x18 | 3)
#define USER_CS (0x20 | 3)
#define GDT_TSS 0x28

/* Saved state of an interrupted context, as the entry code leaves it on the stack
 * (entry.S pushes in reverse order). The layout follows Linux's struct pt_regs, except
 * that the vector and the error code are two words (Linux folds them into orig_ax). */
struct pt_regs {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi;
  uint64_t vector;     /* pushed by the entry stub */
  uint64_t error_code; /* pushed by the CPU, or 0 by the stub */
  uint64_t rip, cs, rflags, rsp, ss; /* the hardware frame */
};
_Static_assert(offsetof(struct pt_regs, vector) == PTREGS_VECTOR, "asm_offsets.h");
_Static_assert(offsetof(struct pt_regs, error_code) == PTREGS_ERROR_CODE, "asm_offsets.h");
_Static_assert(offsetof(struct pt_regs, rip) == PTREGS_RIP, "asm_offsets.h");
_Static_assert(sizeof(struct pt_regs) == PTREGS_SIZE, "asm_offsets.h");

static inline bool user_mode(const struct pt_regs *regs) { return (regs->cs & 3) == 3; }

/* Statistics the simulator reads (addresses in the contract section). */
extern struct apfsim_proc_stats apfsim_proc_stats[APFSIM_MAX_PROCESSES];
extern struct apfsim_vcpu_stats apfsim_vcpu_stats[APFSIM_MAX_VCPUS];

/* The boot info, copied out of the simulator's page once at boot (main.c). */
extern struct apfsim_boot_info boot_info;

/* console.c */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_write(const char *s, size_t n);

/* panic.c — both end the run: the simulator sees APFSIM_PORT_PANIC */
__noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__noreturn void die(const struct pt_regs *regs, uint64_t cr2, const char *what);

/* string.c (gcc may also emit calls to these) */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
void clear_page(void *page); /* 4 KiB, page aligned */

/* Spinlocks. Interrupt handlers take some locks (run queue, console), so these are
 * taken with interrupts off: spin_lock_irqsave. NMI code only ever try-locks. */
typedef struct {
  volatile uint32_t locked;
} spinlock_t;

void spin_lock(spinlock_t *l);
bool spin_trylock(spinlock_t *l);
void spin_unlock(spinlock_t *l);
uint64_t spin_lock_irqsave(spinlock_t *l);
void spin_unlock_irqrestore(spinlock_t *l, uint64_t flags);

/* time.c: nanoseconds since simulated time 0, from rdtsc */
uint64_t tsc_to_ns(uint64_t tsc);
uint64_t ns_to_tsc(uint64_t ns);
uint64_t ktime_ns(void);

#endif
