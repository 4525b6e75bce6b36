/* mm.h — guest memory: the kernel page pool and page tables over the identity layout.
 *
 * Guest VA == guest PA (DESIGN.md §7). The kernel region [0, user_start) is mapped
 * supervisor-only in every page table through shared page tables (4 KiB pages: text and
 * rodata read-only, page 0 and low memory unmapped), except the shared user text, which is
 * user read-only. Each process owns [range_base, range_base + range_bytes), mapped only in
 * its own tables, user read-write, page by page on first touch (demand zero). The kernel's
 * own table (used at boot and by the idle loop until a process has run) also maps all of
 * user RAM supervisor-only, so the kernel can fill parameter pages before processes run.
 * Not for: deciding which addresses a process may touch (process.c), fault policy (fault.c).
 */
#ifndef GUEST_MM_H
#define GUEST_MM_H

#include "kernel.h"

#define PAGE_SIZE 4096ull
#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_ADDR_MASK 0x000ffffffffff000ull

/* #PF error code bits (SDM vol. 3A §4.7) */
#define PF_PROT (1u << 0)
#define PF_WRITE (1u << 1)
#define PF_USER (1u << 2)
#define PF_RSVD (1u << 3)
#define PF_INSTR (1u << 4)

extern struct apfsim_guest_layout guest_layout;
extern uint64_t kernel_cr3;

/* Linker-script symbols (kernel.ld) */
extern char __image_start[], __text_start[], __text_end[], __rodata_end[], __image_end[];
extern char __user_text_start[], __user_text_end[];

void mm_init(void);
/* n contiguous zeroed pages from the kernel pool; panics when the pool is exhausted. */
void *alloc_pages(uint64_t n);

/* A new top-level table sharing the kernel region; returns its physical address. */
uint64_t pgd_alloc(void);
/* Maps the 4 KiB page at va (identity) in the table rooted at cr3 with PTE flags
 * (PTE_P implied), allocating intermediate tables user-accessible. */
void map_user_page(uint64_t cr3, uint64_t va, uint64_t flags);
/* The leaf entry for va in the table rooted at cr3, or 0 if some level is absent. */
uint64_t lookup_pte(uint64_t cr3, uint64_t va);

#endif
