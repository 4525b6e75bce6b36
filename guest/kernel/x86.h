/* x86.h — the privileged instructions the kernel uses, one inline wrapper each.
 *
 * The simulator finds MSR accesses, control-register moves, invlpg, rdtsc, hlt and iretq
 * by disassembling the kernel's text and hooks each site (Unicorn 2.0.1 has no hook for
 * them), so these are plain instructions, never generated or patched at run time.
 * Not for: anything the build-time instruction check forbids (syscall, rdrand, xsave...).
 */
#ifndef GUEST_X86_H
#define GUEST_X86_H

#include <stdint.h>

/* Architectural MSRs (Intel SDM vol. 4) */
#define MSR_GS_BASE 0xC0000101u
/* x2APIC registers (SDM vol. 3A §11.12.1.2: MSR 0x800 + xAPIC offset >> 4) */
#define MSR_X2APIC_ID 0x802u
#define MSR_X2APIC_TPR 0x808u
#define MSR_X2APIC_EOI 0x80Bu
#define MSR_X2APIC_SVR 0x80Fu
#define MSR_X2APIC_ICR 0x830u
#define MSR_X2APIC_LVT_TIMER 0x832u
#define MSR_X2APIC_TIMER_ICR 0x838u
#define MSR_X2APIC_TIMER_DCR 0x83Eu

#define X86_RFLAGS_IF (1ull << 9)

static inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v) {
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/* wrmsr that returns -1 instead of dying when the MSR raises #GP: the #GP handler
 * resumes at the fixup through the exception table (Linux's wrmsr_safe). */
static inline int wrmsr_safe(uint32_t msr, uint64_t v) {
  int err = 0;
  __asm__ volatile("1: wrmsr\n"
                   "2:\n"
                   ".pushsection __ex_table, \"a\"\n"
                   ".p2align 3\n"
                   ".quad 1b, 3f\n"
                   ".popsection\n"
                   ".pushsection .text.fixup, \"ax\"\n"
                   "3: movl $-1, %0\n"
                   "jmp 2b\n"
                   ".popsection"
                   : "+r"(err)
                   : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
                   : "memory");
  return err;
}

static inline void cpuid(uint32_t leaf, uint32_t r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

static inline uint64_t read_cr2(void) {
  uint64_t v;
  __asm__ volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}

static inline void write_cr2(uint64_t v) { __asm__ volatile("mov %0, %%cr2" ::"r"(v) : "memory"); }

static inline uint64_t read_cr3(void) {
  uint64_t v;
  __asm__ volatile("mov %%cr3, %0" : "=r"(v));
  return v;
}

static inline void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }

static inline void invlpg(uint64_t va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }

/* The only clock the guest has: the simulator answers rdtsc from simulated time. */
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void local_irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void local_irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }

/* sti's one-instruction interrupt shadow covers the hlt: an interrupt that became
 * pending after the caller's last check wakes the hlt instead of being lost. */
static inline void safe_halt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

static inline uint64_t read_rflags(void) {
  uint64_t f;
  __asm__ volatile("pushfq; popq %0" : "=r"(f)::"memory");
  return f;
}

static inline uint64_t local_irq_save(void) {
  uint64_t f = read_rflags();
  local_irq_disable();
  return f;
}

static inline void local_irq_restore(uint64_t flags) {
  if (flags & X86_RFLAGS_IF) local_irq_enable();
}

#endif
