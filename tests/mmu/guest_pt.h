/* guest_pt.h — builds guest page tables in a test's memory buffer, the way a
 * guest kernel would, so walker and shadow tests can state "the guest maps X"
 * in one line. Tables are taken from a bump region the test chooses. Test-only. */
#ifndef APFSIM_TESTS_GUEST_PT_H
#define APFSIM_TESTS_GUEST_PT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmu/paging.h"

struct guest_pt {
  uint8_t *mem;
  uint64_t bytes;
  uint64_t next_table; /* next free table page (bump allocator) */
  uint64_t table_end;
  uint64_t cr3;
  uint64_t upper_flags; /* flags of intermediate entries created by gpt_map */
};

static inline uint64_t gpt_get(const struct guest_pt *g, uint64_t pa) {
  uint64_t e;
  memcpy(&e, g->mem + pa, 8);
  return e;
}

static inline void gpt_set(struct guest_pt *g, uint64_t pa, uint64_t e) { memcpy(g->mem + pa, &e, 8); }

static inline uint64_t gpt_alloc(struct guest_pt *g) {
  if (g->next_table + PAGING_PAGE_SIZE > g->table_end) abort();
  uint64_t p = g->next_table;
  g->next_table += PAGING_PAGE_SIZE;
  memset(g->mem + p, 0, PAGING_PAGE_SIZE);
  return p;
}

/* A fresh address space: tables from [table_base, table_end), a zeroed PML4. */
static inline void gpt_init(struct guest_pt *g, uint8_t *mem, uint64_t bytes, uint64_t table_base,
                            uint64_t table_end) {
  g->mem = mem;
  g->bytes = bytes;
  g->next_table = table_base;
  g->table_end = table_end;
  g->upper_flags = PTE_P | PTE_RW | PTE_US;
  g->cr3 = gpt_alloc(g);
}

/* A new PML4 in the same table region (another process). */
static inline uint64_t gpt_new_root(struct guest_pt *g) { return g->cr3 = gpt_alloc(g); }

/* Address of the entry for va at level (4..1) under the current root, creating
 * intermediate tables (with upper_flags) on the way. */
static inline uint64_t gpt_entry(struct guest_pt *g, uint64_t va, int level) {
  uint64_t table = g->cr3 & ~UINT64_C(0xfff);
  for (int l = 4;; l--) {
    uint64_t epa = table + ((va >> (12 + 9 * (l - 1))) & 511) * 8;
    if (l == level) return epa;
    uint64_t e = gpt_get(g, epa);
    if (!(e & PTE_P) || (e & PTE_PS)) {
      e = gpt_alloc(g) | g->upper_flags;
      gpt_set(g, epa, e);
    }
    table = e & UINT64_C(0x000ffffffffff000);
  }
}

/* Maps va → pa with a leaf at level (1: 4 KiB, 2: 2 MiB, 3: 1 GiB). */
static inline uint64_t gpt_map(struct guest_pt *g, uint64_t va, uint64_t pa, int level, uint64_t flags) {
  uint64_t epa = gpt_entry(g, va, level);
  gpt_set(g, epa, pa | flags | (level > 1 ? PTE_PS : 0));
  return epa;
}

/* Identity-maps [start, end) with 4 KiB pages. */
static inline void gpt_identity(struct guest_pt *g, uint64_t start, uint64_t end, uint64_t flags) {
  for (uint64_t p = start; p < end; p += PAGING_PAGE_SIZE) gpt_map(g, p, p, 1, flags);
}

#endif
