/* mm.c — the kernel page pool and the page tables (see mm.h for the layout rules).
 *
 * The pool is a bump allocator over [pool_start, user_start): the kernel never frees
 * (processes keep their tables until the run ends), and a bump allocator is trivially
 * deterministic. Its size is the bound apfsim_guest_layout() computes, which the simulator
 * can evaluate before booting.
 */
#include "mm.h"

#include "percpu.h"
#include "x86.h"

struct apfsim_guest_layout guest_layout;
uint64_t kernel_cr3;

static spinlock_t pool_lock;
static uint64_t pool_next, pool_end;
/* PD entries of the kernel region [0, user_start), shared by every process's tables. */
static uint64_t *kernel_pd0;
static uint64_t kernel_region_pdes;

#define GIB (1ull << 30)
#define LARGE (2ull << 20)
#define TABLE_FLAGS (PTE_P | PTE_RW | PTE_US) /* upper levels permit; leaves decide */

static inline uint64_t *table_at(uint64_t pa) { return (uint64_t *)(uintptr_t)(pa & PTE_ADDR_MASK); }

void *alloc_pages(uint64_t n) {
  uint64_t flags = spin_lock_irqsave(&pool_lock);
  uint64_t p = pool_next;
  if (n > (pool_end - pool_next) / PAGE_SIZE) {
    spin_unlock_irqrestore(&pool_lock, flags);
    panic("kernel page pool exhausted (%llu pages asked, %llu left)", (unsigned long long)n,
          (unsigned long long)((pool_end - pool_next) / PAGE_SIZE));
  }
  pool_next += n * PAGE_SIZE;
  spin_unlock_irqrestore(&pool_lock, flags);
  for (uint64_t i = 0; i < n; i++) clear_page((void *)(uintptr_t)(p + i * PAGE_SIZE));
  return (void *)(uintptr_t)p;
}

/* Leaf flags of one page of the kernel region. */
static uint64_t kernel_page_flags(uint64_t va) {
  uint64_t image = (uint64_t)__image_start, rodata_end = (uint64_t)__rodata_end;
  uint64_t ut0 = (uint64_t)__user_text_start, ut1 = (uint64_t)__user_text_end;
  if (va < image) return 0; /* page 0 (NULL), the boot info page and low memory: unmapped */
  if (va >= ut0 && va < ut1) return PTE_P | PTE_US; /* shared user text: user read-only */
  if (va < rodata_end) return PTE_P;                /* kernel text and rodata: read-only */
  return PTE_P | PTE_RW;                            /* data, bss, pool */
}

void mm_init(void) {
  const char *why = apfsim_guest_layout(&boot_info, (uint64_t)__image_end, &guest_layout);
  if (why)
    panic("memory layout: %s (guest RAM %llu MiB, kernel image ends at %#llx)", why,
          (unsigned long long)(boot_info.ram_bytes >> 20), (unsigned long long)(uint64_t)__image_end);
  if (guest_layout.user_start > GIB) panic("kernel region larger than 1 GiB: %#llx", (unsigned long long)guest_layout.user_start);
  pool_next = guest_layout.pool_start;
  pool_end = guest_layout.user_start;
  kernel_region_pdes = guest_layout.user_start / LARGE;

  uint64_t *pml4 = alloc_pages(1), *pdpt = alloc_pages(1);
  pml4[0] = (uint64_t)pdpt | TABLE_FLAGS;
  uint64_t ram = boot_info.ram_bytes;
  for (uint64_t gb = 0; gb * GIB < ram; gb++) {
    uint64_t *pd = alloc_pages(1);
    pdpt[gb] = (uint64_t)pd | TABLE_FLAGS;
    if (gb == 0) kernel_pd0 = pd;
    for (uint64_t i = 0; i < 512; i++) {
      uint64_t chunk = gb * GIB + i * LARGE;
      if (chunk >= ram) break;
      if (chunk < guest_layout.user_start) {
        uint64_t *pt = alloc_pages(1);
        uint64_t pde = (uint64_t)pt | PTE_P | PTE_RW;
        for (uint64_t j = 0; j < 512; j++) {
          uint64_t va = chunk + j * PAGE_SIZE, f = kernel_page_flags(va);
          if (f) pt[j] = va | f;
          if (f & PTE_US) pde |= PTE_US;
        }
        pd[i] = pde;
      } else {
        /* user RAM, supervisor-only 2 MiB pages: only this table has them */
        pd[i] = chunk | PTE_P | PTE_RW | PTE_PS;
      }
    }
  }
  kernel_cr3 = (uint64_t)pml4;
  write_cr3(kernel_cr3);
}

uint64_t pgd_alloc(void) {
  uint64_t *pml4 = alloc_pages(1), *pdpt = alloc_pages(1), *pd0 = alloc_pages(1);
  pml4[0] = (uint64_t)pdpt | TABLE_FLAGS;
  pdpt[0] = (uint64_t)pd0 | TABLE_FLAGS;
  for (uint64_t i = 0; i < kernel_region_pdes; i++) pd0[i] = kernel_pd0[i];
  return (uint64_t)pml4;
}

static uint64_t *next_level(uint64_t *table, unsigned idx, bool create) {
  if (!(table[idx] & PTE_P)) {
    if (!create) return 0;
    table[idx] = (uint64_t)alloc_pages(1) | TABLE_FLAGS;
  }
  return table_at(table[idx]);
}

void map_user_page(uint64_t cr3, uint64_t va, uint64_t flags) {
  uint64_t *t = table_at(cr3);
  t = next_level(t, (va >> 39) & 511, true);
  t = next_level(t, (va >> 30) & 511, true);
  t = next_level(t, (va >> 21) & 511, true);
  t[(va >> 12) & 511] = (va & PTE_ADDR_MASK) | PTE_P | flags;
}

uint64_t lookup_pte(uint64_t cr3, uint64_t va) {
  uint64_t *t = table_at(cr3);
  for (int shift = 39; shift >= 21; shift -= 9) {
    t = next_level(t, (va >> shift) & 511, false);
    if (!t) return 0;
  }
  return t[(va >> 12) & 511];
}
