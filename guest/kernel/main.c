/* main.c — boot: the contract section, boot-info validation, and bring-up of the BSP and
 * the APs.
 *
 * All vCPUs enter kernel_entry (head.S) together. vCPU 0 (BSP) validates the boot info,
 * builds the shared state (IDT, page tables, processes) and then sets smp_go; the APs spin
 * on smp_go with `pause` (they touch nothing shared before it), then set up their own
 * descriptor tables, APIC timer and idle task. Every vCPU ends in cpu_idle().
 */
#include "apic.h"
#include "kvm.h"
#include "mm.h"
#include "percpu.h"
#include "process.h"
#include "sched.h"
#include "traps.h"
#include "x86.h"

_Static_assert(BOOT_MAP_LARGE_PAGES * 0x200000ull == APFSIM_BOOT_MAP_BYTES, "head.S boot map size");

struct apfsim_boot_info boot_info;
struct apfsim_proc_stats apfsim_proc_stats[APFSIM_MAX_PROCESSES];
struct apfsim_vcpu_stats apfsim_vcpu_stats[APFSIM_MAX_VCPUS];

/* Boot stacks: vCPU i starts on boot_stacks[i] and keeps it as its idle task's stack. */
#define BOOT_STACK_BYTES 16384
static uint8_t boot_stacks[APFSIM_MAX_VCPUS][BOOT_STACK_BYTES] __attribute__((aligned(16), used));

extern char boot_pml4[], boot_gdt[], boot_gdt_end[];

/* What the simulator reads before it starts any vCPU (struct apfsim_contract). */
__attribute__((section(APFSIM_CONTRACT_SECTION), used)) const struct apfsim_contract apfsim_contract = {
    .magic = APFSIM_CONTRACT_MAGIC,
    .version = APFSIM_BOOT_VERSION,
    .size = sizeof(struct apfsim_contract),
    .boot_info_gpa = APFSIM_BOOT_INFO_GPA,
    .boot_info_bytes = APFSIM_BOOT_INFO_BYTES,
    .boot_cr3 = (uint64_t)boot_pml4,
    .boot_map_bytes = APFSIM_BOOT_MAP_BYTES,
    .boot_gdt_gpa = (uint64_t)boot_gdt,
    .boot_gdt_limit = 3 * 8 - 1,
    .boot_cs = KERNEL_CS,
    .boot_ds = KERNEL_DS,
    .boot_stacks_gpa = (uint64_t)boot_stacks,
    .boot_stack_bytes = BOOT_STACK_BYTES,
    .max_vcpus = APFSIM_MAX_VCPUS,
    .max_processes = APFSIM_MAX_PROCESSES,
    .image_start = (uint64_t)__image_start,
    .image_end = (uint64_t)__image_end,
    .user_text_start = (uint64_t)__user_text_start,
    .user_text_end = (uint64_t)__user_text_end,
    .proc_stats_gpa = (uint64_t)apfsim_proc_stats,
    .vcpu_stats_gpa = (uint64_t)apfsim_vcpu_stats,
    .cr0 = APFSIM_ENTRY_CR0,
    .cr4 = APFSIM_ENTRY_CR4,
    .efer = APFSIM_ENTRY_EFER,
};

static volatile uint32_t smp_go;

static bool own_vector(uint32_t v) {
  return v == APFSIM_VEC_SYSCALL || v == APFSIM_VEC_TIMER || v == APFSIM_VEC_RESCHEDULE || v == APFSIM_VEC_SPURIOUS;
}

/* Copies and checks the simulator's boot info; any violation is a panic naming the field. */
static void boot_info_init(const struct apfsim_boot_info *bi) {
  if ((uint64_t)bi != APFSIM_BOOT_INFO_GPA) panic("boot info at %p, expected %#llx", (const void *)bi, APFSIM_BOOT_INFO_GPA);
  if (bi->magic != APFSIM_BOOT_MAGIC) panic("boot info: bad magic %#llx", (unsigned long long)bi->magic);
  if (bi->version != APFSIM_BOOT_VERSION)
    panic("boot info: version %u, this kernel speaks version %u", bi->version, APFSIM_BOOT_VERSION);
  if (bi->size != sizeof(struct apfsim_boot_info))
    panic("boot info: size %u, expected %u", bi->size, (unsigned)sizeof(struct apfsim_boot_info));
  boot_info = *bi;
  struct apfsim_boot_info *b = &boot_info;
  if (b->n_vcpus < 1 || b->n_vcpus > APFSIM_MAX_VCPUS) panic("boot info: n_vcpus %u out of 1..%u", b->n_vcpus, APFSIM_MAX_VCPUS);
  if (b->ram_bytes < APFSIM_MIN_RAM_BYTES || b->ram_bytes % APFSIM_LARGE_PAGE_SIZE)
    panic("boot info: ram_bytes %#llx (needs a multiple of 2 MiB, at least %llu MiB)", (unsigned long long)b->ram_bytes,
          APFSIM_MIN_RAM_BYTES >> 20);
  if (!b->tsc_khz || !b->apic_timer_khz) panic("boot info: tsc_khz and apic_timer_khz must be non-zero");
  if (!b->timer_period_ns) panic("boot info: timer_period_ns is 0");
  if (b->apf_protocol > APFSIM_APF_2020) panic("boot info: apf_protocol %u unknown", b->apf_protocol);
  if (b->pf_entry_order > APFSIM_PF_REASON_FIRST) panic("boot info: pf_entry_order %u unknown", b->pf_entry_order);
  if (b->nmi_cr2_policy > APFSIM_NMI_CR2_STASH_REASON) panic("boot info: nmi_cr2_policy %u unknown", b->nmi_cr2_policy);
  if (b->not_present_delivery > APFSIM_NP_VE) panic("boot info: not_present_delivery %u unknown", b->not_present_delivery);
  if (b->not_present_delivery == APFSIM_NP_VE && b->apf_protocol != APFSIM_APF_2020)
    panic("boot info: not-present delivery by #VE needs apf_protocol 2020");
  if (b->flags & ~APFSIM_BOOT_F_KNOWN) panic("boot info: unknown flags %#x", b->flags & ~APFSIM_BOOT_F_KNOWN);
  if ((b->flags & APFSIM_BOOT_F_APF_PAGE_ERROR) && b->apf_protocol != APFSIM_APF_2020)
    panic("boot info: APF page-error reporting is an extension of apf_protocol 2020");
  if (b->page_ready_vector < 32 || b->page_ready_vector > 255 || own_vector(b->page_ready_vector))
    panic("boot info: page_ready_vector %#x is not a free vector", b->page_ready_vector);
  for (uint32_t i = 0; i < b->n_classes && i < APFSIM_MAX_WORKLOAD_CLASSES; i++) {
    const struct apfsim_workload_class *c = &b->classes[i];
    if (c->kind > APFSIM_WORK_DAX_COPY) panic("boot info: class %u: workload kind %u unknown", i, c->kind);
    if (c->pattern > APFSIM_ACCESS_ZIPF) panic("boot info: class %u: access pattern %u unknown", i, c->pattern);
    if (apfsim_kind_uses_dax(c->kind) && c->pattern == APFSIM_ACCESS_ZIPF)
      panic("boot info: class %u: DAX workloads read sequential or random lines, not zipf", i);
    if (apfsim_kind_uses_ws(c->kind) && c->working_set_bytes < APFSIM_PAGE_SIZE)
      panic("boot info: class %u: a memory workload needs a working set of at least one page", i);
  }
}

static void cpu_bringup(unsigned cpu) {
  load_idt();
  if (cpu != 0) {
    write_cr3(kernel_cr3);
  }
  this_cpu()->loaded_cr3 = kernel_cr3;
  cpu_init_ist(cpu);
  apic_init(cpu);
  kvm_guest_cpu_init();
  sched_init_cpu(cpu);
  this_cpu()->stats->online = 1;
}

__noreturn void start_kernel(uint64_t cpu, const struct apfsim_boot_info *bi) {
  cpu_early_init((unsigned)cpu);
  boot_info_init(bi);
  printk("apfsim guest kernel, boot contract v%u: %u vCPUs, %llu MiB RAM, TSC %llu kHz, tick %llu us\n",
         APFSIM_BOOT_VERSION, boot_info.n_vcpus, (unsigned long long)(boot_info.ram_bytes >> 20),
         (unsigned long long)boot_info.tsc_khz, (unsigned long long)(boot_info.timer_period_ns / 1000));
  trap_init();
  mm_init();
  cpu_bringup(0);
  processes_create();
  __atomic_store_n(&smp_go, 1, __ATOMIC_RELEASE);
  cpu_idle();
}

__noreturn void start_secondary(uint64_t cpu, const struct apfsim_boot_info *bi) {
  (void)bi; /* the BSP copied and checked it */
  if (cpu >= APFSIM_MAX_VCPUS)
    for (;;) __asm__ volatile("cli; hlt"); /* no per-CPU area: the BSP reports n_vcpus */
  cpu_early_init((unsigned)cpu);
  while (!__atomic_load_n(&smp_go, __ATOMIC_ACQUIRE)) cpu_relax();
  if (cpu >= boot_info.n_vcpus) panic("vCPU %llu started but boot info says %u vCPUs", (unsigned long long)cpu, boot_info.n_vcpus);
  cpu_bringup((unsigned)cpu);
  cpu_idle();
}
