/* paging.c — the software 4-level page walk (see paging.h). Follows the SDM's
 * order: for each level, the entry is fetched (through the host's residency, as
 * an EPT CPU would), then checked for P, then for reserved bits; permissions are
 * accumulated and judged once at the leaf (§4.6), and only an allowed access
 * updates accessed/dirty flags (§4.8). */
#include "mmu/paging.h"

#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "guest memory is read as little-endian host words"
#endif

#define LEVELS 4

/* Address bits MAXPHYADDR-1:12 of an entry or CR3. */
static uint64_t addr_mask(unsigned maxphyaddr) {
  return ((UINT64_C(1) << maxphyaddr) - 1) & ~(PAGING_PAGE_SIZE - 1);
}

/* Bits low..high inclusive. */
static uint64_t bits(unsigned low, unsigned high) {
  return ((high == 63) ? ~UINT64_C(0) : ((UINT64_C(1) << (high + 1)) - 1)) & ~((UINT64_C(1) << low) - 1);
}

static uint64_t load_entry(const struct guest_mem *mem, uint64_t pa) {
  uint64_t e;
  memcpy(&e, mem->base + pa, sizeof e);
  return e;
}

static void store_entry(const struct guest_mem *mem, uint64_t pa, uint64_t e) {
  memcpy(mem->base + pa, &e, sizeof e);
}

static bool resident(const struct guest_mem *mem, uint64_t gfn) {
  return !mem->resident || mem->resident(mem->resident_ctx, gfn);
}

/* Reserved bits of a present entry at this level (4-level paging, PKE = 0). */
static uint64_t reserved_bits(const struct guest_mem *mem, const struct paging_ctx *ctx, int level,
                              uint64_t e) {
  uint64_t r = 0;
  if (mem->maxphyaddr < 52) r |= bits(mem->maxphyaddr, 51);
  if (!ctx->nxe) r |= PTE_XD;
  switch (level) {
  case 4:
    r |= PTE_PS; /* PML4Es have no page-size bit */
    break;
  case 3:
    if (e & PTE_PS) r |= ctx->gbpages ? bits(13, 29) : PTE_PS;
    break;
  case 2:
    if (e & PTE_PS) r |= bits(13, 20);
    break;
  default:
    break;
  }
  return r;
}

/* Error-code bits that describe the access itself (W, U, I), common to every fault. */
static uint32_t access_bits(const struct paging_ctx *ctx, struct paging_access a) {
  uint32_t ec = 0;
  if (a.op == PAGING_WRITE) ec |= PF_EC_W;
  if (a.mode == PAGING_USER) ec |= PF_EC_U;
  /* I/D is defined only when execute-disable or SMEP can refuse a fetch. */
  if (a.op == PAGING_FETCH && (ctx->nxe || ctx->smep)) ec |= PF_EC_I;
  return ec;
}

/* SDM §4.6.1: may this access go to a page with these effective rights? */
static bool allowed(const struct paging_ctx *ctx, struct paging_access a, bool writable, bool user_page,
                    bool nx) {
  if (a.mode == PAGING_USER) {
    if (!user_page) return false;
    if (a.op == PAGING_WRITE) return writable;
    if (a.op == PAGING_FETCH) return !nx;
    return true;
  }
  if (a.op == PAGING_FETCH) {
    if (user_page && ctx->smep) return false;
    return !nx;
  }
  /* Supervisor data access. SMAP refuses user pages unless an explicit access runs with AC=1. */
  if (user_page && ctx->smap && (a.mode == PAGING_SUPERVISOR_IMPLICIT || !ctx->ac)) return false;
  if (a.op == PAGING_WRITE) return writable || !ctx->wp;
  return true;
}

static enum paging_status fault(struct paging_walk *out, uint32_t ec) {
  out->status = PAGING_FAULT;
  out->error_code = ec;
  return PAGING_FAULT;
}

enum paging_status paging_walk(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                               struct paging_access access, unsigned flags, struct paging_walk *out) {
  memset(out, 0, sizeof *out);
  out->va = va;
  out->access = access;
  if (!paging_is_canonical(va)) return out->status = PAGING_NONCANONICAL;

  const uint64_t amask = addr_mask(mem->maxphyaddr);
  const uint32_t acc = access_bits(ctx, access);
  uint64_t table = ctx->cr3 & amask;
  bool writable = true, user = true, nx = false;
  uint64_t e = 0;
  int level;
  for (level = LEVELS; level >= 1; level--) {
    out->level = level;
    uint64_t idx = (va >> (PAGING_PAGE_SHIFT + 9 * (level - 1))) & 511;
    uint64_t epa = table + idx * 8;
    if (epa + 8 > mem->bytes) {
      out->bad_pa = epa;
      return out->status = PAGING_BAD_TABLE;
    }
    if (!resident(mem, epa >> PAGING_PAGE_SHIFT)) {
      out->gfn = epa >> PAGING_PAGE_SHIFT;
      out->in_walk = true;
      return out->status = PAGING_HOST_FAULT;
    }
    out->entry_pa[out->n_entries++] = epa;
    e = load_entry(mem, epa);
    if (!(e & PTE_P)) return fault(out, acc);
    if (e & reserved_bits(mem, ctx, level, e)) return fault(out, acc | PF_EC_P | PF_EC_RSVD);
    writable = writable && (e & PTE_RW);
    user = user && (e & PTE_US);
    nx = nx || (ctx->nxe && (e & PTE_XD));
    if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS))) break;
    table = e & amask;
  }

  uint64_t size = UINT64_C(1) << (PAGING_PAGE_SHIFT + 9 * (level - 1));
  out->page_size = size;
  out->pa = (e & amask & ~(size - 1)) | (va & (size - 1));
  out->writable = writable;
  out->user = user;
  out->nx = nx;
  out->dirty = (e & PTE_D) != 0;
  if (!allowed(ctx, access, writable, user, nx)) return fault(out, acc | PF_EC_P);

  out->status = PAGING_OK;
  if (flags & PAGING_SET_AD) paging_set_accessed_dirty(mem, out, access.op == PAGING_WRITE);
  return PAGING_OK;
}

void paging_set_accessed_dirty(const struct guest_mem *mem, struct paging_walk *w, bool dirty) {
  for (unsigned i = 0; i < w->n_entries; i++) {
    uint64_t e = load_entry(mem, w->entry_pa[i]);
    uint64_t ne = e | PTE_A;
    if (dirty && i + 1 == w->n_entries) ne |= PTE_D;
    if (ne != e) store_entry(mem, w->entry_pa[i], ne); /* write only on change: no spurious stores */
  }
  if (dirty) w->dirty = true;
}

/* Translates one page of an accessor's range and applies the identity rule. */
static enum paging_status check_page(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                                     struct paging_access a, struct paging_walk *out) {
  enum paging_status s = paging_walk(mem, ctx, va, a, 0, out);
  if (s != PAGING_OK) return s;
  if (out->pa != va || (va | (PAGING_PAGE_SIZE - 1)) >= mem->bytes) return out->status = PAGING_BAD_MAPPING;
  if (!resident(mem, va >> PAGING_PAGE_SHIFT)) {
    out->gfn = va >> PAGING_PAGE_SHIFT;
    out->in_walk = false;
    return out->status = PAGING_HOST_FAULT;
  }
  return PAGING_OK;
}

/* Shared body of paging_read/paging_write: check every page, then update A/D and copy. */
static enum paging_status access_range(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                                       uint8_t *dst, const uint8_t *src, size_t len, struct paging_access a,
                                       struct paging_walk *out) {
  memset(out, 0, sizeof *out);
  if (len == 0) return out->status = PAGING_OK;
  uint64_t last = va + (len - 1);
  if (last < va) { /* wraps around the address space: some page is non-canonical */
    out->va = va;
    return out->status = PAGING_NONCANONICAL;
  }
  uint64_t first_page = va & ~(PAGING_PAGE_SIZE - 1);
  uint64_t last_page = last & ~(PAGING_PAGE_SIZE - 1);
  for (uint64_t p = first_page;; p += PAGING_PAGE_SIZE) {
    /* Report the first byte of the access inside this page, as CR2 would. */
    enum paging_status s = check_page(mem, ctx, p == first_page ? va : p, a, out);
    if (s != PAGING_OK) return s;
    if (p == last_page) break;
  }
  for (uint64_t p = first_page;; p += PAGING_PAGE_SIZE) {
    paging_walk(mem, ctx, p == first_page ? va : p, a, PAGING_SET_AD, out);
    if (p == last_page) break;
  }
  if (dst) memcpy(dst, mem->base + va, len);
  else memcpy(mem->base + va, src, len);
  return out->status = PAGING_OK;
}

enum paging_status paging_read(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                               void *dst, size_t len, enum paging_mode mode, struct paging_walk *out) {
  struct paging_access a = {PAGING_READ, mode};
  return access_range(mem, ctx, va, dst, NULL, len, a, out);
}

enum paging_status paging_write(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                                const void *src, size_t len, enum paging_mode mode,
                                struct paging_walk *out) {
  struct paging_access a = {PAGING_WRITE, mode};
  return access_range(mem, ctx, va, NULL, src, len, a, out);
}

bool paging_cr3_valid(uint64_t cr3, unsigned maxphyaddr) {
  return maxphyaddr >= 64 || (cr3 >> maxphyaddr) == 0;
}

struct paging_access paging_access_from_error_code(uint32_t ec, unsigned cpl) {
  struct paging_access a;
  a.op = (ec & PF_EC_I) ? PAGING_FETCH : (ec & PF_EC_W) ? PAGING_WRITE : PAGING_READ;
  if (ec & PF_EC_U) a.mode = PAGING_USER;
  else a.mode = cpl == 3 ? PAGING_SUPERVISOR_IMPLICIT : PAGING_SUPERVISOR;
  return a;
}

const char *paging_op_name(enum paging_op op) {
  switch (op) {
  case PAGING_READ: return "read";
  case PAGING_WRITE: return "write";
  case PAGING_FETCH: return "fetch";
  }
  return "?";
}

const char *paging_mode_name(enum paging_mode mode) {
  switch (mode) {
  case PAGING_SUPERVISOR: return "supervisor";
  case PAGING_USER: return "user";
  case PAGING_SUPERVISOR_IMPLICIT: return "implicit-supervisor";
  }
  return "?";
}

const char *paging_status_name(enum paging_status s) {
  switch (s) {
  case PAGING_OK: return "ok";
  case PAGING_FAULT: return "page fault";
  case PAGING_HOST_FAULT: return "host fault";
  case PAGING_BAD_TABLE: return "paging structure outside guest RAM";
  case PAGING_BAD_MAPPING: return "non-identity mapping";
  case PAGING_NONCANONICAL: return "non-canonical address";
  }
  return "?";
}
