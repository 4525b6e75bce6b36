/* cpu.c — per-vCPU descriptor tables (GDT, TSS with IST stacks), GS base, and the IDT.
 *
 * Every vCPU has its own GDT because its TSS descriptor (busy bit, base) is its own; the
 * IDT is one table shared by all vCPUs. All gates are interrupt gates (IF cleared on
 * entry), as in Linux; handlers re-enable interrupts where the interrupted context had
 * them. NMI, #DF and #MC run on IST stacks so that they work whatever the stack they
 * interrupted (SDM vol. 3A §6.14.5).
 */
#include "traps.h"

#include "mm.h"
#include "percpu.h"
#include "x86.h"

struct percpu percpu_area[APFSIM_MAX_VCPUS];

struct idt_gate {
  uint16_t offset0;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset1;
  uint32_t offset2;
  uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate is 16 bytes");

static struct idt_gate idt[256] __attribute__((aligned(4096)));

struct desc_ptr {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed));

#define GATE_INTERRUPT 0x8E /* P=1, DPL=0, type 0xE */
#define GATE_USER 0x60      /* DPL=3: reachable by `int` from CPL3 */

/* GDT descriptors (SDM vol. 3A §3.4.5): flat, G=1; code has L=1 (64-bit) and D=0. */
#define GDT_KERNEL_CODE 0x00af9a000000ffffull
#define GDT_KERNEL_DATA 0x00cf92000000ffffull
#define GDT_USER_DATA 0x00cff2000000ffffull
#define GDT_USER_CODE 0x00affa000000ffffull

static void set_tss_descriptor(uint64_t *gdt, struct tss64 *tss) {
  uint64_t base = (uint64_t)tss, limit = sizeof(*tss) - 1;
  gdt[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) /* P, 64-bit TSS available */ |
           (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  gdt[1] = base >> 32;
}

void cpu_early_init(unsigned cpu) {
  struct percpu *pc = &percpu_area[cpu];
  pc->self = pc;
  pc->cpu = cpu;
  pc->gdt[0] = 0;
  pc->gdt[KERNEL_CS >> 3] = GDT_KERNEL_CODE;
  pc->gdt[KERNEL_DS >> 3] = GDT_KERNEL_DATA;
  pc->gdt[USER_DS >> 3] = GDT_USER_DATA;
  pc->gdt[USER_CS >> 3] = GDT_USER_CODE;
  set_tss_descriptor(&pc->gdt[GDT_TSS >> 3], &pc->tss);
  pc->tss.iomap_base = sizeof(pc->tss); /* no I/O bitmap: CPL3 `out` faults */

  struct desc_ptr gdtr = {sizeof(pc->gdt) - 1, (uint64_t)pc->gdt};
  /* Reload CS with a far return, the data segments, then the task register. GS is
   * loaded with the null selector before its base is written: loading a selector
   * would reset the base. */
  __asm__ volatile(
      "lgdt %0\n\t"
      "pushq %1\n\t"
      "leaq 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "lretq\n"
      "1:\n\t"
      "movl %2, %%eax\n\t"
      "movw %%ax, %%ds\n\t"
      "movw %%ax, %%es\n\t"
      "movw %%ax, %%ss\n\t"
      "xorl %%eax, %%eax\n\t"
      "movw %%ax, %%fs\n\t"
      "movw %%ax, %%gs\n\t"
      "movw %3, %%ax\n\t"
      "ltr %%ax"
      :
      : "m"(gdtr), "i"(KERNEL_CS), "i"(KERNEL_DS), "i"(GDT_TSS)
      : "rax", "memory");
  wrmsr(MSR_GS_BASE, (uint64_t)pc);
  /* The simulator must honour the GS base write (boot contract); without it every
   * per-CPU access would silently hit address 0. */
  if (this_cpu() != pc) panic("IA32_GS_BASE write on vCPU %u not honoured", cpu);
  pc->stats = &apfsim_vcpu_stats[cpu];
  pc->stats->apic_id = cpu;
}

void cpu_init_ist(unsigned cpu) {
  struct percpu *pc = &percpu_area[cpu];
  for (int ist = IST_NMI; ist <= IST_MC; ist++) {
    uint8_t *stack = alloc_pages(APFSIM_IST_BYTES / PAGE_SIZE);
    pc->tss.ist[ist - 1] = (uint64_t)stack + APFSIM_IST_BYTES;
  }
  pc->nmi_stack_top = pc->tss.ist[IST_NMI - 1];
}

static void set_gate(unsigned vec, const void *handler, unsigned ist, uint8_t type_attr) {
  uint64_t a = (uint64_t)handler;
  idt[vec] = (struct idt_gate){
      .offset0 = (uint16_t)a,
      .selector = KERNEL_CS,
      .ist = (uint8_t)ist,
      .type_attr = type_attr,
      .offset1 = (uint16_t)(a >> 16),
      .offset2 = (uint32_t)(a >> 32),
  };
}

/* Each generic stub is 16 bytes (entry.S asserts it): stub v is at idt_stubs + 16 v. */
#define IDT_STUB_SIZE 16

void trap_init(void) {
  for (unsigned v = 0; v < 256; v++) set_gate(v, idt_stubs + IDT_STUB_SIZE * v, 0, GATE_INTERRUPT);
  /* The #PF entry is the guest variant under study (DESIGN.md §2 "The race"): both
   * orders are real code in the text; boot info picks the one the IDT points at. */
  set_gate(X86_TRAP_PF,
           boot_info.pf_entry_order == APFSIM_PF_REASON_FIRST ? asm_exc_page_fault_reason_first : asm_exc_page_fault,
           0, GATE_INTERRUPT);
  set_gate(X86_TRAP_NMI, asm_exc_nmi, IST_NMI, GATE_INTERRUPT);
  set_gate(X86_TRAP_DF, idt_stubs + IDT_STUB_SIZE * X86_TRAP_DF, IST_DF, GATE_INTERRUPT);
  set_gate(X86_TRAP_MC, idt_stubs + IDT_STUB_SIZE * X86_TRAP_MC, IST_MC, GATE_INTERRUPT);
  set_gate(APFSIM_VEC_SYSCALL, idt_stubs + IDT_STUB_SIZE * APFSIM_VEC_SYSCALL, 0, GATE_INTERRUPT | GATE_USER);
}

void load_idt(void) {
  struct desc_ptr idtr = {sizeof(idt) - 1, (uint64_t)idt};
  __asm__ volatile("lidt %0" ::"m"(idtr));
}

const char *trap_name(uint64_t v) {
  static const char *const names[] = {
      "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "coprocessor segment overrun",
      "#TS", "#NP", "#SS", "#GP", "#PF", "reserved 15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
  };
  if (v < ARRAY_SIZE(names)) return names[v];
  if (v < 32) return "reserved exception";
  if (v == APFSIM_VEC_SYSCALL) return "int 0x80";
  return "interrupt";
}
