/* apfsim_boot.h — the boot contract between the apfsim simulator and its guest kernel.
 *
 * This one header is compiled twice: into the freestanding guest kernel (guest/) and into
 * the hosted simulator (sim/loader, the platform). Everything in it is plain fixed-width
 * data with static_asserts on sizes and offsets, so both sides agree byte for byte. The
 * prose version of the contract, with the reasons, is docs/guest.md ("Boot contract").
 *
 * What travels where:
 *   image -> simulator   struct apfsim_contract, in the ELF section ".apfsim_contract":
 *                        where the boot GDT, boot page tables, boot stacks, statistics
 *                        arrays are, and the control-register values the kernel expects.
 *   simulator -> guest   struct apfsim_boot_info, written at APFSIM_BOOT_INFO_GPA before
 *                        any vCPU starts (RSI points at it): machine, timer, workload,
 *                        guest variant.
 *   guest -> simulator   I/O port writes (APFSIM_PORT_*) and the statistics arrays
 *                        (struct apfsim_proc_stats / apfsim_vcpu_stats) the simulator reads
 *                        from guest memory at any time.
 *
 * Also here: apfsim's own #VE delivery ABI (MSR_APFSIM_VE_INFO, struct apfsim_ve_info),
 * which both sides implement and no KVM header defines.
 *
 * Not for: the kernel <-> user-process ABI (guest/include/apfsim_uapi.h), the KVM APF ABI
 * (DESIGN.md §2: MSR numbers belong to the code that implements them — guest/kernel/kvm.h,
 * sim/apf/apf.h).
 */
#ifndef APFSIM_BOOT_H
#define APFSIM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define APFSIM_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define APFSIM_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* Bumped on any change of a struct or rule below. The kernel stamps it into its contract
 * section and checks the boot info's; the loader refuses an image built for another. */
#define APFSIM_BOOT_VERSION 2u

/* ---- limits ---------------------------------------------------------------------- */
#define APFSIM_MAX_VCPUS 64u           /* vCPU sets travel as 64-bit masks (sim/mmu) */
#define APFSIM_MAX_PROCESSES 256u      /* user processes the kernel can run */
#define APFSIM_MAX_WORKLOAD_CLASSES 64u/* = CONFIG_MAX_PROCESSES: one per <process> element */

/* ---- guest-physical layout (guest VA == guest PA: DESIGN.md §7) --------------------- */
#define APFSIM_PAGE_SIZE 0x1000ull
#define APFSIM_LARGE_PAGE_SIZE 0x200000ull  /* per-process ranges are 2 MiB aligned */
/* Page 0 is never mapped by the kernel (NULL dereferences fault). */
#define APFSIM_BOOT_INFO_GPA 0x1000ull      /* one page, written by the simulator */
#define APFSIM_BOOT_INFO_BYTES 0x1000ull
#define APFSIM_KERNEL_LINK_GPA 0x100000ull  /* first byte of the kernel image (1 MiB) */
/* The boot page tables identity-map [0, APFSIM_BOOT_MAP_BYTES) with 2 MiB pages; the
 * image must end below it (a linker-script assert) and guest RAM must cover it. */
#define APFSIM_BOOT_MAP_BYTES 0x1000000ull  /* 16 MiB */
#define APFSIM_MIN_RAM_BYTES APFSIM_BOOT_MAP_BYTES
/* The guest maps nothing at or above ram_bytes except the DAX window of the boot info:
 * everything else above guest RAM (shadow page tables, simulator stubs) is the
 * simulator's. Guest addresses stay below 2^47 (canonical, 4-level paging). */

/* ---- I/O ports (guest `out`; 8-bit immediate port numbers) ------------------------ */
#define APFSIM_PORT_CONSOLE 0xE9   /* out %al: one console byte (Bochs/QEMU debugcon) */
#define APFSIM_PORT_PANIC 0xEA     /* out %eax: GPA of a struct apfsim_panic_record; the
                                      kernel then spins in cli;hlt. The run ends: guest_panic */
#define APFSIM_PORT_SHUTDOWN 0xEB  /* out %eax: APFSIM_SHUTDOWN_*; every process has exited */
#define APFSIM_PORT_PROC_EXIT 0xEC /* out %eax: pid of a process that just exited (informational) */
#define APFSIM_PORT_HUNG_TASK 0xED /* out %eax: pid the hung-task watchdog found blocked longer
                                      than hung_task_timeout_ns (once per blocked episode) */
#define APFSIM_PORT_SIGBUS 0xEE    /* out %eax: pid of a process the kernel is killing with SIGBUS
                                      (a host page error it cannot recover from): its
                                      apfsim_proc_stats already hold term_signal, sig_code,
                                      sig_addr, sig_token and sig_rip. PROC_EXIT follows. */
#define APFSIM_PORT_TASK_SWITCH 0xEF /* out %eax: pid this vCPU switches to, 0 for its idle task
                                        (informational: the trace's task_switch) */
#define APFSIM_SHUTDOWN_ALL_EXITED 0u

/* ---- interrupt vectors the kernel programs (x2APIC) ------------------------------- */
#define APFSIM_VEC_SYSCALL 0x80u        /* int 0x80, DPL 3 (Unicorn's `syscall` keeps CPL) */
#define APFSIM_VEC_TIMER 0xECu          /* APIC timer, periodic (Linux LOCAL_TIMER_VECTOR) */
#define APFSIM_VEC_PAGE_READY_DEFAULT 0xF3u /* boot_info.page_ready_vector; Linux's value */
#define APFSIM_VEC_RESCHEDULE 0xFDu     /* IPI: a task was queued while this vCPU idles */
#define APFSIM_VEC_SPURIOUS 0xFFu       /* x2APIC SVR spurious vector */

/* ---- boot info: simulator -> guest ------------------------------------------------ */
#define APFSIM_BOOT_MAGIC 0x4f464e49544f4f42ull /* "BOOTINFO" little-endian */

enum apfsim_workload_kind {
  APFSIM_WORK_COMPUTE = 0,  /* ops of compute_per_op counter increments */
  APFSIM_WORK_MEMORY = 1,   /* ops of one read-modify-write of a 64-bit word in the working set */
  APFSIM_WORK_MIXED = 2,    /* a memory touch and compute_per_op increments per op */
  APFSIM_WORK_DAX_READ = 3, /* ops of one 8-byte user load from a 64-byte line of the DAX window */
  APFSIM_WORK_DAX_COPY = 4, /* ops of one system call copying a 64-byte line of the DAX window
                               into a user buffer (copy_to_user; -EFAULT on a page error) */
};
enum apfsim_access_pattern {
  APFSIM_ACCESS_SEQUENTIAL = 0, /* next 64-byte line, wrapping */
  APFSIM_ACCESS_RANDOM = 1,     /* uniform line */
  APFSIM_ACCESS_ZIPF = 2,       /* page by zipf(s) rank (rank r = r-th page), uniform line in it */
};
enum apfsim_apf_protocol {
  APFSIM_APF_OFF = 0,  /* guest never enables APF */
  APFSIM_APF_HALT = 1, /* guest does not enable APF (host uses async I/O + synthetic halt) */
  APFSIM_APF_2010 = 2, /* pre-5.8 guest: reason word, page-ready as #PF */
  APFSIM_APF_2020 = 3, /* 5.9+ guest: flags/token, page-ready interrupt, ACK */
};
enum apfsim_pf_entry_order {
  APFSIM_PF_CR2_FIRST = 0,    /* Linux 5.3+: the entry code reads CR2 before anything else */
  APFSIM_PF_REASON_FIRST = 1, /* 2.6.38-5.2: read-and-clear the APF reason, then CR2 */
};
enum apfsim_nmi_cr2_policy {
  APFSIM_NMI_CR2_NONE = 0,         /* NMI does not save CR2 */
  APFSIM_NMI_CR2_SAVE_RESTORE = 1, /* Linux since ~2012 */
  APFSIM_NMI_CR2_STASH_REASON = 2, /* also stash and clear the APF reason (2020 proposal) */
};
enum apfsim_not_present_delivery {
  APFSIM_NP_PF = 0, /* APF not-present as #PF (error code 0, CR2 = token) */
  APFSIM_NP_VE = 1, /* as #VE (vector 20) with its own info area (struct apfsim_ve_info);
                       needs apf_protocol 2020 (page-ready stays the interrupt) */
};

/* boot_info.flags */
#define APFSIM_BOOT_F_NMI_READS_USER_STACK (1u << 0) /* perf-like user call chain in the NMI */
#define APFSIM_BOOT_F_APF_SEND_ALWAYS (1u << 1)      /* guest sets MSR_KVM_ASYNC_PF_EN bit 1 */
#define APFSIM_BOOT_F_APF_PAGE_ERROR (1u << 2)       /* guest opts in to ready_flags (EN bit 4; 2020 only) */
#define APFSIM_BOOT_F_VE_PAGE_ERROR (1u << 3)        /* guest opts in to synchronous page errors
                                                        by #VE (MSR_APFSIM_VE_INFO bit 2) */
#define APFSIM_BOOT_F_KNOWN 0xfu

/* One <process> element of the configuration: `count` identical processes. */
struct apfsim_workload_class {
  uint32_t kind;             /* enum apfsim_workload_kind */
  uint32_t pattern;          /* enum apfsim_access_pattern */
  uint32_t count;            /* processes of this class, >= 1 */
  uint32_t compute_per_op;   /* counter increments per op (compute, mixed) */
  uint64_t working_set_bytes;/* multiple of 4 KiB; memory and mixed kinds (0 for compute) */
  uint64_t ops;              /* ops per process; 0 = until the run ends */
  uint32_t zipf_s_milli;     /* zipf exponent x1000 (zipf pattern) */
  uint32_t reserved0;
  uint64_t reserved1;
};
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_workload_class) == 48, "workload class is 48 bytes");

struct apfsim_boot_info {
  uint64_t magic;                /* 0x00 APFSIM_BOOT_MAGIC */
  uint32_t version;              /* 0x08 APFSIM_BOOT_VERSION */
  uint32_t size;                 /* 0x0c sizeof(struct apfsim_boot_info) */
  uint32_t n_vcpus;              /* 0x10 1..APFSIM_MAX_VCPUS; vCPU i has x2APIC ID i */
  uint32_t n_classes;            /* 0x14 0..APFSIM_MAX_WORKLOAD_CLASSES */
  uint64_t ram_bytes;            /* 0x18 guest RAM [0, ram_bytes), 2 MiB multiple, >= MIN_RAM */
  uint64_t tsc_khz;              /* 0x20 rdtsc rate; TSC is 0 at simulated time 0 on every vCPU */
  uint64_t apic_timer_khz;       /* 0x28 x2APIC timer count rate with divide-by-1 */
  uint64_t timer_period_ns;      /* 0x30 scheduler tick */
  uint64_t hung_task_timeout_ns; /* 0x38 0 = watchdog off */
  uint64_t seed;                 /* 0x40 run seed; process i's PRNG seed: apfsim_process_seed() */
  uint32_t apf_protocol;         /* 0x48 enum apfsim_apf_protocol */
  uint32_t pf_entry_order;       /* 0x4c enum apfsim_pf_entry_order */
  uint32_t nmi_cr2_policy;       /* 0x50 enum apfsim_nmi_cr2_policy */
  uint32_t not_present_delivery; /* 0x54 enum apfsim_not_present_delivery */
  uint32_t flags;                /* 0x58 APFSIM_BOOT_F_* */
  uint32_t page_ready_vector;    /* 0x5c 32..255, != the kernel's own vectors */
  uint64_t dax_gpa;              /* 0x60 DAX window (0 bytes = none): 4 KiB aligned, at or
                                          above ram_bytes, below 2^47 (apfsim_guest_layout) */
  uint64_t dax_bytes;            /* 0x68 4 KiB multiple */
  uint64_t reserved[18];         /* 0x70 zero */
  struct apfsim_workload_class classes[APFSIM_MAX_WORKLOAD_CLASSES]; /* 0x100 */
};
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_boot_info, apf_protocol) == 0x48, "boot info layout");
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_boot_info, dax_bytes) == 0x68, "boot info layout");
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_boot_info, classes) == 0x100, "boot info layout");
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_boot_info) == 0x100 + 64 * 48, "boot info size");
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_boot_info) <= APFSIM_BOOT_INFO_BYTES, "boot info fits its page");

/* ---- contract: image -> simulator (ELF section ".apfsim_contract") ----------------- */
#define APFSIM_CONTRACT_MAGIC 0x544341525443464bull /* "KFCTRACT" little-endian */
#define APFSIM_CONTRACT_SECTION ".apfsim_contract"

struct apfsim_contract {
  uint64_t magic;             /* 0x00 APFSIM_CONTRACT_MAGIC */
  uint32_t version;           /* 0x08 APFSIM_BOOT_VERSION the image was built for */
  uint32_t size;              /* 0x0c sizeof(struct apfsim_contract) */
  uint64_t boot_info_gpa;     /* 0x10 = APFSIM_BOOT_INFO_GPA */
  uint64_t boot_info_bytes;   /* 0x18 = APFSIM_BOOT_INFO_BYTES */
  uint64_t boot_cr3;          /* 0x20 guest CR3 at entry: identity map of [0, boot_map_bytes) */
  uint64_t boot_map_bytes;    /* 0x28 = APFSIM_BOOT_MAP_BYTES */
  uint64_t boot_gdt_gpa;      /* 0x30 GDTR base at entry */
  uint16_t boot_gdt_limit;    /* 0x38 GDTR limit at entry */
  uint16_t boot_cs;           /* 0x3a CS at entry (64-bit code, DPL 0) */
  uint16_t boot_ds;           /* 0x3c DS/ES/SS at entry (flat data, DPL 0); FS = GS = 0 */
  uint16_t reserved0;         /* 0x3e */
  uint64_t boot_stacks_gpa;   /* 0x40 vCPU i starts with RSP = boot_stacks_gpa + (i+1)*boot_stack_bytes */
  uint64_t boot_stack_bytes;  /* 0x48 */
  uint32_t max_vcpus;         /* 0x50 boot stacks / per-CPU areas the image has */
  uint32_t max_processes;     /* 0x54 entries of the process statistics array */
  uint64_t image_start;       /* 0x58 lowest byte of any PT_LOAD segment */
  uint64_t image_end;         /* 0x60 end of the highest segment (bss included), 4 KiB aligned */
  uint64_t user_text_start;   /* 0x68 shared user code, mapped user read-only in every process */
  uint64_t user_text_end;     /* 0x70 */
  uint64_t proc_stats_gpa;    /* 0x78 struct apfsim_proc_stats[max_processes] */
  uint64_t vcpu_stats_gpa;    /* 0x80 struct apfsim_vcpu_stats[max_vcpus] */
  uint64_t cr0;               /* 0x88 the simulator sets exactly these at entry */
  uint64_t cr4;               /* 0x90 */
  uint64_t efer;              /* 0x98 */
  uint64_t reserved[12];      /* 0xa0 zero */
};
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_contract, boot_gdt_limit) == 0x38, "contract layout");
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_contract, boot_stacks_gpa) == 0x40, "contract layout");
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_contract, efer) == 0x98, "contract layout");
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_contract) == 0x100, "contract size");

/* Control registers at entry (Intel SDM vol. 3A §2.5): paging in long mode, write protect
 * honoured in ring 0, x87 errors native. No SSE (the kernel is built -mgeneral-regs-only and
 * saves no FPU state), no NX (EFER.NXE stays 0: the kernel sets no XD bits), no SMEP/SMAP
 * (the NMI handler reads user memory, as perf does, with fixups). */
#define APFSIM_ENTRY_CR0 0x80010033ull /* PG | WP | NE | ET | MP | PE */
#define APFSIM_ENTRY_CR4 0x00000020ull /* PAE */
#define APFSIM_ENTRY_EFER 0x00000500ull /* LMA | LME */

/* ---- statistics the simulator reads from guest memory ----------------------------- */
enum apfsim_proc_state {
  APFSIM_PROC_UNUSED = 0,
  APFSIM_PROC_RUNNABLE = 1,
  APFSIM_PROC_RUNNING = 2,
  APFSIM_PROC_SLEEPING = 3, /* blocked in the kernel (an APF wait: apf_token says on what) */
  APFSIM_PROC_EXITED = 4,
};

/* Fatal signals the kernel sends (Linux numbers) and why (apfsim's own codes). */
#define APFSIM_SIGBUS 7u
#define APFSIM_SIGBUS_APF_PAGE_ERROR 1u /* page-ready with ready_flags PAGE_ERROR woke the task:
                                           sig_token is the token, sig_addr 0 (the guest never
                                           learns the address of a #PF-delivered APF) */
#define APFSIM_SIGBUS_VE_PAGE_ERROR 2u  /* synchronous #VE page error on a user access:
                                           sig_addr is the #VE's guest-linear address */

struct apfsim_proc_stats {
  uint32_t state;          /* 0x00 enum apfsim_proc_state */
  uint32_t pid;            /* 0x04 1-based; process i (0-based, boot order) has pid i+1 */
  uint32_t class_index;    /* 0x08 index into boot_info.classes */
  uint32_t kind;           /* 0x0c */
  uint32_t pattern;        /* 0x10 */
  uint32_t last_vcpu;      /* 0x14 */
  uint64_t range_base;     /* 0x18 the process's own guest range [base, base + bytes) */
  uint64_t range_bytes;    /* 0x20 */
  uint64_t ops_target;     /* 0x28 0 = unbounded */
  uint64_t ops_done;       /* 0x30 reported by the process (APFSIM_SYS_REPORT_OPS) */
  uint64_t demand_faults;  /* 0x38 pages mapped on first touch (DAX pages included) */
  uint64_t start_tsc;      /* 0x40 first time on a vCPU */
  uint64_t exit_tsc;       /* 0x48 */
  uint64_t run_tsc;        /* 0x50 TSC ticks spent on a vCPU */
  uint64_t switches_in;    /* 0x58 times scheduled in */
  int64_t exit_code;       /* 0x60 128 + signal when killed by one */
  uint64_t syscalls;       /* 0x68 */
  uint32_t term_signal;    /* 0x70 0, or the signal that killed it (APFSIM_SIGBUS) */
  uint32_t sig_code;       /* 0x74 APFSIM_SIGBUS_* */
  uint64_t sig_addr;       /* 0x78 faulting address when the guest knows it, else 0 */
  uint64_t sig_token;      /* 0x80 APF token of the failed page, else 0 */
  uint64_t sig_rip;        /* 0x88 user RIP of the instruction that could not complete */
  uint64_t apf_waits;      /* 0x90 APF not-present events taken by this task (a sleep or a dummy) */
  uint64_t apf_wait_tsc;   /* 0x98 TSC ticks asleep on APF tokens */
  uint64_t apf_token;      /* 0xa0 token this task sleeps on now, 0 if none */
  uint64_t efaults;        /* 0xa8 DAX copies that failed with -EFAULT (page error, fixed up) */
  uint64_t reserved[2];    /* 0xb0 */
};
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_proc_stats, term_signal) == 0x70, "proc stats layout");
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_proc_stats, efaults) == 0xa8, "proc stats layout");
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_proc_stats) == 192, "proc stats are 192 bytes");

struct apfsim_vcpu_stats {
  uint32_t online;          /* 0x00 1 once the vCPU finished its kernel init */
  uint32_t apic_id;         /* 0x04 */
  uint64_t ticks;           /* 0x08 timer interrupts */
  uint64_t context_switches;/* 0x10 */
  uint64_t idle_halts;      /* 0x18 hlt executed by the idle loop */
  uint64_t idle_tsc;        /* 0x20 TSC ticks in the idle loop's hlt */
  uint64_t syscalls;        /* 0x28 */
  uint64_t page_faults;     /* 0x30 #PF taken that were not APF events */
  uint64_t demand_faults;   /* 0x38 */
  uint64_t nmis;            /* 0x40 NMI handler runs (a latched repeat counts again) */
  uint64_t nmi_nested;      /* 0x48 NMIs that arrived while one was running */
  uint64_t nmi_user_reads;  /* 0x50 user stack reads by the NMI (stack dump and frames) */
  uint64_t nmi_user_faults; /* 0x58 NMI user reads that faulted (fixup) */
  uint64_t interrupts;      /* 0x60 external interrupts and IPIs */
  uint64_t ipis_sent;       /* 0x68 */
  /* APF guest side (issue 6/7) */
  uint64_t apf_not_present; /* 0x70 not-present events handled (#PF flags/reason 1, or #VE) */
  uint64_t apf_page_ready;  /* 0x78 page-ready events (interrupt, or #PF reason 2) */
  uint64_t apf_wake_all;    /* 0x80 of those, token 0xffffffff */
  uint64_t apf_dummy_created;  /* 0x88 a wake found no sleeper: dummy node left */
  uint64_t apf_dummy_consumed; /* 0x90 a not-present found its dummy: no sleep */
  uint64_t apf_dummy_dropped;  /* 0x98 dummies removed by a wake-all */
  uint64_t apf_sleeps;      /* 0xa0 waits that scheduled another task */
  uint64_t apf_halt_waits;  /* 0xa8 waits that halted the vCPU (2010: kernel mode, idle) */
  uint64_t apf_page_errors; /* 0xb0 page-ready events with ready_flags PAGE_ERROR */
  uint64_t ve_exceptions;   /* 0xb8 #VE taken */
  uint64_t efault_fixups;   /* 0xc0 kernel accesses hit by a page error, fixed up (-EFAULT) */
  uint64_t nmi_apf_stashed; /* 0xc8 NMIs that found the APF word set and stashed it */
  uint32_t apf_enabled;     /* 0xd0 enum apfsim_apf_protocol the guest enabled (2 or 3), 0 if none */
  uint32_t apf_halt_token;  /* 0xd4 token this vCPU halt-waits on now (2010), 0 if none */
  uint64_t apf_halt_since_tsc; /* 0xd8 TSC when that wait began */
  uint64_t apf_area_gpa;    /* 0xe0 shared area written to MSR_KVM_ASYNC_PF_EN, 0 if none */
  uint64_t ve_info_gpa;     /* 0xe8 #VE info area written to MSR_APFSIM_VE_INFO, 0 if none */
  uint64_t sigbus_kills;    /* 0xf0 processes this vCPU killed with SIGBUS */
  uint64_t spurious_page_ready; /* 0xf8 page-ready interrupts while APF was off */
};
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_vcpu_stats, apf_not_present) == 0x70, "vCPU stats layout");
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_vcpu_stats, apf_enabled) == 0xd0, "vCPU stats layout");
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_vcpu_stats) == 256, "vCPU stats are 256 bytes");

/* ---- #VE information area: apfsim's own ABI (guest <-> host) ------------------------
 * A per-vCPU 64-byte area the guest registers with MSR_APFSIM_VE_INFO. Its first fields
 * follow the SDM's virtualization-exception information area (vol. 3C §25.5.7.2: exit
 * reason at 0, busy word at 4, guest-linear address at 16, guest-physical at 24); apfsim
 * uses the exit-qualification slot (8) for the APF token and defines its own reasons.
 * Host: deliver #VE (vector 20, no error code, RIP = the faulting instruction, a fault)
 * only while `busy` is 0; fill the fields, set busy = APFSIM_VE_BUSY, then deliver.
 * Guest: read every field, then write busy = 0 (releases the area), then act. While busy,
 * further events that would be #VEs must be handled another way (host exit/sync fault).
 * The MSR number is in KVM's range 0x4b564dxx but not a KVM MSR (KVM uses 0x00-0x08): it
 * exists only in apfsim. */
#define MSR_APFSIM_VE_INFO 0x4b564df0u
#define APFSIM_VE_INFO_ENABLE (1ull << 0)      /* area valid; #VE may be delivered */
#define APFSIM_VE_INFO_NOT_PRESENT (1ull << 1) /* deliver APF not-present as #VE, not #PF */
#define APFSIM_VE_INFO_PAGE_ERROR (1ull << 2)  /* deliver host page errors as a synchronous #VE */
#define APFSIM_VE_INFO_RESERVED 0x38ull        /* bits 5:3: #GP; bits 63:6 = area GPA */

#define APFSIM_VE_BUSY 0xffffffffu
#define APFSIM_VE_REASON_NOT_PRESENT 1u /* APF page not present: sleep on `token` */
#define APFSIM_VE_REASON_PAGE_ERROR 2u  /* the host cannot provide the page at gva/gpa */

struct apfsim_ve_info {
  uint32_t reason; /* 0x00 APFSIM_VE_REASON_* */
  uint32_t busy;   /* 0x04 APFSIM_VE_BUSY while the guest has not released the area, else 0 */
  uint64_t token;  /* 0x08 APF token (NOT_PRESENT), 0 otherwise */
  uint64_t gva;    /* 0x10 guest-linear address of the access */
  uint64_t gpa;    /* 0x18 guest-physical address of the access */
  uint32_t access; /* 0x20 APFSIM_VE_ACCESS_* bits */
  uint32_t reserved0; /* 0x24 */
  uint64_t reserved[3]; /* 0x28 */
};
#define APFSIM_VE_ACCESS_WRITE (1u << 0)
#define APFSIM_VE_ACCESS_FETCH (1u << 1)
#define APFSIM_VE_ACCESS_USER (1u << 2)  /* CPL 3 */
APFSIM_STATIC_ASSERT(offsetof(struct apfsim_ve_info, gva) == 0x10, "#VE info layout");
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_ve_info) == 64, "#VE info area is 64 bytes");

/* ---- panic record: guest -> simulator (APFSIM_PORT_PANIC) ------------------------- */
#define APFSIM_PANIC_MAGIC 0x43494e4150ull /* "PANIC" */
#define APFSIM_PANIC_NO_VECTOR 0xffffffffu /* a software panic(), not an exception */
#define APFSIM_PANIC_NO_PID 0u             /* no process was current (idle or boot) */
#define APFSIM_PANIC_MSG_BYTES 256u

struct apfsim_panic_record {
  uint64_t magic;     /* 0x00 APFSIM_PANIC_MAGIC */
  uint32_t vcpu;      /* 0x08 */
  uint32_t pid;       /* 0x0c current process, APFSIM_PANIC_NO_PID if none */
  uint32_t vector;    /* 0x10 exception vector or APFSIM_PANIC_NO_VECTOR */
  uint32_t reserved0; /* 0x14 */
  uint64_t rip;       /* 0x18 interrupted RIP (exception) or panic()'s caller */
  uint64_t cs;        /* 0x20 */
  uint64_t rflags;    /* 0x28 */
  uint64_t rsp;       /* 0x30 */
  uint64_t error_code;/* 0x38 */
  uint64_t cr2;       /* 0x40 CR2 as read by the handler (for #PF: the entry's reading) */
  uint64_t reserved[7];/* 0x48 */
  char message[APFSIM_PANIC_MSG_BYTES]; /* 0x80 NUL-terminated, without the "PANIC: " prefix */
};
APFSIM_STATIC_ASSERT(sizeof(struct apfsim_panic_record) == 0x180, "panic record size");

/* ---- per-process layout, computed identically by guest and simulator --------------- */
#define APFSIM_USER_STACK_BYTES 0x10000ull /* 64 KiB, demand-zero */

/* Offsets from the process's range base. Unmapped guard pages separate the areas. */
struct apfsim_proc_layout {
  uint64_t params_off;   /* one page, user read-only: struct apfsim_user_params */
  uint64_t ws_off;       /* working set, demand-zero user read-write */
  uint64_t ws_bytes;
  uint64_t zipf_off;     /* zipf prefix-sum table (8 bytes per working-set page), demand-zero */
  uint64_t zipf_bytes;
  uint64_t stack_off;    /* user stack, demand-zero; RSP starts at stack_off + stack_bytes */
  uint64_t stack_bytes;
  uint64_t range_bytes;  /* whole range, 2 MiB multiple */
};

static inline uint64_t apfsim_align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static inline int apfsim_kind_uses_ws(uint32_t kind) {
  return kind == APFSIM_WORK_MEMORY || kind == APFSIM_WORK_MIXED;
}

/* DAX kinds have no working set: they use the boot info's DAX window (shared by every
 * process, as one file mapped by several), sequential or random lines of it. */
static inline int apfsim_kind_uses_dax(uint32_t kind) {
  return kind == APFSIM_WORK_DAX_READ || kind == APFSIM_WORK_DAX_COPY;
}

static inline void apfsim_proc_layout(const struct apfsim_workload_class *c, struct apfsim_proc_layout *l) {
  uint64_t ws = apfsim_kind_uses_ws(c->kind) ? apfsim_align_up(c->working_set_bytes, APFSIM_PAGE_SIZE) : 0;
  uint64_t zipf = (ws && c->pattern == APFSIM_ACCESS_ZIPF)
                      ? apfsim_align_up(ws / APFSIM_PAGE_SIZE * 8u, APFSIM_PAGE_SIZE) : 0;
  l->params_off = 0;
  l->ws_off = 2 * APFSIM_PAGE_SIZE;
  l->ws_bytes = ws;
  l->zipf_off = l->ws_off + ws + APFSIM_PAGE_SIZE;
  l->zipf_bytes = zipf;
  l->stack_off = l->zipf_off + zipf + APFSIM_PAGE_SIZE;
  l->stack_bytes = APFSIM_USER_STACK_BYTES;
  l->range_bytes = apfsim_align_up(l->stack_off + l->stack_bytes, APFSIM_LARGE_PAGE_SIZE);
}

/* Kernel page pool: page tables, task structures, kernel and IST stacks. An upper bound
 * the kernel checks itself against (it panics if it ever needs more). */
#define APFSIM_KSTACK_BYTES 0x4000ull /* per task */
#define APFSIM_IST_BYTES 0x2000ull    /* per IST stack; 3 per vCPU (NMI, #DF, #MC) */

static inline uint64_t apfsim_pt_pages_for(uint64_t bytes) {
  /* PTs (one per 2 MiB) + PDs (one per 1 GiB) + one more of each for a misaligned start */
  return bytes / APFSIM_LARGE_PAGE_SIZE + 1 + bytes / 0x40000000ull + 1;
}

struct apfsim_guest_layout {
  uint64_t n_processes;
  uint64_t pool_start;  /* = image_end (page aligned) */
  uint64_t user_start;  /* kernel region [0, user_start) ends here, 2 MiB aligned */
  uint64_t user_end;    /* last process range's end; must be <= ram_bytes */
};

/* Lays out the guest from the boot info; returns 0 on success, or a short reason.
 * image_end comes from the contract. Processes are laid out in class order, then
 * instance order; process i's range follows process i-1's. */
static inline const char *apfsim_guest_layout(const struct apfsim_boot_info *bi, uint64_t image_end,
                                              struct apfsim_guest_layout *out) {
  uint64_t n = 0, user = 0, pool = 0x100000; /* 1 MiB slack for small allocations */
  if (bi->n_vcpus == 0 || bi->n_vcpus > APFSIM_MAX_VCPUS) return "n_vcpus out of range";
  if (bi->n_classes > APFSIM_MAX_WORKLOAD_CLASSES) return "too many workload classes";
  if (bi->dax_bytes) {
    if ((bi->dax_gpa | bi->dax_bytes) & (APFSIM_PAGE_SIZE - 1)) return "DAX window not 4 KiB aligned";
    if (bi->dax_gpa < bi->ram_bytes) return "DAX window overlaps guest RAM";
    if (bi->dax_gpa >= (1ull << 47) || bi->dax_bytes > (1ull << 47) - bi->dax_gpa) return "DAX window beyond 2^47";
  }
  for (uint32_t i = 0; i < bi->n_classes; i++) {
    struct apfsim_proc_layout l;
    const struct apfsim_workload_class *c = &bi->classes[i];
    if (c->count == 0) return "workload class with count 0";
    if (c->working_set_bytes > (1ull << 40)) return "working set larger than 1 TiB";
    if (apfsim_kind_uses_dax(c->kind) && bi->dax_bytes == 0) return "a DAX workload needs a DAX window";
    apfsim_proc_layout(c, &l);
    n += c->count;
    if (n > APFSIM_MAX_PROCESSES) return "more processes than APFSIM_MAX_PROCESSES";
    user += (uint64_t)c->count * l.range_bytes;
    /* task page + kernel stack + PML4 + PDPT + the range's PDs/PTs */
    pool += (uint64_t)c->count * (APFSIM_PAGE_SIZE + APFSIM_KSTACK_BYTES +
                                  (2 + apfsim_pt_pages_for(l.range_bytes)) * APFSIM_PAGE_SIZE);
    /* a DAX process maps the window in its own tables: its PDs/PTs, and a PDPT if the
     * window lies beyond the first 512 GiB */
    if (apfsim_kind_uses_dax(c->kind))
      pool += (uint64_t)c->count * (1 + apfsim_pt_pages_for(bi->dax_bytes)) * APFSIM_PAGE_SIZE;
  }
  pool += (uint64_t)bi->n_vcpus * 3 * APFSIM_IST_BYTES;
  /* the kernel's own tables: shared PTs of the kernel region and PDs over all RAM */
  pool += (2 + apfsim_pt_pages_for(bi->ram_bytes)) * APFSIM_PAGE_SIZE;
  out->n_processes = n;
  out->pool_start = apfsim_align_up(image_end, APFSIM_PAGE_SIZE);
  out->user_start = apfsim_align_up(out->pool_start + pool, APFSIM_LARGE_PAGE_SIZE);
  out->user_end = out->user_start + user;
  if (out->user_end > bi->ram_bytes) return "the workload does not fit in guest RAM";
  return 0;
}

/* Process i's PRNG seed (splitmix64 finalizer of seed + i + 1): distinct streams per
 * process, reproducible from the run seed alone. */
static inline uint64_t apfsim_process_seed(uint64_t run_seed, uint64_t index) {
  uint64_t z = run_seed + (index + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#endif
