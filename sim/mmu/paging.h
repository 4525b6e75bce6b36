/* paging.h — the architectural x86-64 4-level page walk, in software, over the
 * guest-physical memory buffer (Intel SDM vol. 3A §4.5 "4-level paging", §4.6
 * "access rights", §4.7 "page-fault exceptions", §4.8 "accessed and dirty flags").
 *
 * What it is for: deciding what the guest's own page tables say about one access —
 * translation, effective permissions, or the #PF error code the hardware would
 * report — and reading/writing guest memory through those rules for the vCPU's
 * software event delivery (IDT, TSS and stack accesses).
 *
 * Not for: canonical-address checks (a non-canonical address is a #GP/#SS that the
 * vCPU raises before it asks; the walker refuses it with PAGING_NONCANONICAL), segment
 * checks, 5-level paging, PCIDs, protection keys (CR4.PKE is taken as 0, so PTE bits
 * 62:59 are ignored), shadow stacks, caching attributes. Host (EPT) residency is asked
 * through the optional callback in struct guest_mem; the walker never changes it.
 *
 * Supported control bits: EFER.NXE (XD honoured, else XD is a reserved bit),
 * CR0.WP, CR4.SMEP, CR4.SMAP with RFLAGS.AC and implicit supervisor accesses,
 * 1 GiB pages (or PDPTE.PS reserved when the CPU model has none). MAXPHYADDR is a
 * parameter (bits 51:MAXPHYADDR of every present entry are reserved).
 */
#ifndef APFSIM_MMU_PAGING_H
#define APFSIM_MMU_PAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGING_PAGE_SHIFT 12
#define PAGING_PAGE_SIZE (UINT64_C(1) << PAGING_PAGE_SHIFT)
#define PAGING_SIZE_2M (UINT64_C(1) << 21)
#define PAGING_SIZE_1G (UINT64_C(1) << 30)
#define PAGING_MAXPHYADDR_DEFAULT 46 /* a common Intel server value; QEMU TCG's own model uses 40 */

/* Paging-structure entry bits (SDM vol. 3A tables 4-15..4-20). */
#define PTE_P (UINT64_C(1) << 0)
#define PTE_RW (UINT64_C(1) << 1)
#define PTE_US (UINT64_C(1) << 2)
#define PTE_PWT (UINT64_C(1) << 3)
#define PTE_PCD (UINT64_C(1) << 4)
#define PTE_A (UINT64_C(1) << 5)
#define PTE_D (UINT64_C(1) << 6)
#define PTE_PS (UINT64_C(1) << 7) /* in a PDPTE/PDE: maps a 1 GiB / 2 MiB page */
#define PTE_G (UINT64_C(1) << 8)
#define PTE_XD (UINT64_C(1) << 63)

/* #PF error code bits (SDM vol. 3A §4.7). PK, SS and SGX are never produced here. */
#define PF_EC_P (1u << 0)    /* 0: not present; 1: protection violation or reserved bit */
#define PF_EC_W (1u << 1)    /* the access was a write */
#define PF_EC_U (1u << 2)    /* the access was a user-mode access (not an implicit supervisor one) */
#define PF_EC_RSVD (1u << 3) /* a reserved bit was set in some paging-structure entry */
#define PF_EC_I (1u << 4)    /* instruction fetch; reported only when EFER.NXE or CR4.SMEP is 1 */

enum paging_op { PAGING_READ, PAGING_WRITE, PAGING_FETCH };

/* Who is accessing. Implicit supervisor accesses are the processor's own accesses
 * to system structures (GDT, LDT, IDT, TSS) — supervisor accesses whatever the CPL,
 * and always refused on user pages under SMAP (RFLAGS.AC does not help them). */
enum paging_mode { PAGING_SUPERVISOR, PAGING_USER, PAGING_SUPERVISOR_IMPLICIT };

struct paging_access {
  enum paging_op op;
  enum paging_mode mode;
};

/* Guest-physical memory as the walker sees it: guest PA = offset into base.
 * resident: the host's (EPT's) answer to "is this guest page backed right now?";
 * NULL means every page is resident. A walk reads guest tables through it, as an
 * EPT-enabled CPU does: a non-resident table page is a host fault, not a #PF. */
struct guest_mem {
  uint8_t *base;
  uint64_t bytes;          /* guest RAM size; tables and leaves must lie below it */
  unsigned maxphyaddr;     /* 32..52 */
  bool (*resident)(void *ctx, uint64_t gfn);
  void *resident_ctx;
};

/* The guest's (not Unicorn's) paging controls of one vCPU. */
struct paging_ctx {
  uint64_t cr3;  /* only bits MAXPHYADDR-1:12 are used; validity is checked at MOV CR3 (paging_cr3_valid) */
  bool nxe;      /* EFER.NXE */
  bool wp;       /* CR0.WP */
  bool smep;     /* CR4.SMEP */
  bool smap;     /* CR4.SMAP */
  bool ac;       /* RFLAGS.AC: explicit supervisor accesses may touch user pages under SMAP */
  bool gbpages;  /* 1 GiB pages exist (CPUID 80000001h:EDX[26]); if false, PDPTE.PS=1 is reserved */
};

enum paging_status {
  PAGING_OK,          /* the access is allowed; pa and permissions are valid */
  PAGING_FAULT,       /* the guest's tables refuse it: deliver #PF(error_code), CR2 = va */
  PAGING_HOST_FAULT,  /* a page needed (table or data) is not resident on the host: gfn */
  PAGING_BAD_TABLE,   /* a paging structure lies outside guest RAM: bad_pa */
  PAGING_BAD_MAPPING, /* accessors only: the leaf maps va to another address, or outside RAM */
  PAGING_NONCANONICAL /* the caller should have raised #GP/#SS; nothing was walked */
};

struct paging_walk {
  enum paging_status status;
  uint64_t va;
  struct paging_access access;
  /* PAGING_OK (also filled for BAD_MAPPING): */
  uint64_t pa;         /* translation of va */
  uint64_t page_size;  /* 4 KiB, 2 MiB or 1 GiB */
  bool writable;       /* effective R/W: AND over all levels */
  bool user;           /* effective U/S: AND over all levels ("user-mode address") */
  bool nx;             /* effective XD: OR over all levels, only when NXE */
  bool dirty;          /* the leaf's D flag after the walk */
  /* PAGING_FAULT: */
  uint32_t error_code;
  /* PAGING_HOST_FAULT: the non-resident guest page; in_walk says it holds a paging
   * structure (the fault happened while walking, like an EPT violation on a table). */
  uint64_t gfn;
  bool in_walk;
  /* PAGING_BAD_TABLE: the entry address that is not in guest RAM. */
  uint64_t bad_pa;
  /* Always: the level reached (4 = PML4 … 1 = PT; the leaf or the faulting entry) and the
   * guest-physical address of each entry read, in walk order (entry_pa[0] is the PML4E). */
  int level;
  unsigned n_entries;
  uint64_t entry_pa[4];
};

/* Walk flags. */
#define PAGING_SET_AD (1u << 0) /* on success, set A in every entry used and D in the leaf on a write */

/* The architectural walk of va for access under ctx. Never touches guest memory
 * unless PAGING_SET_AD is given and the access is allowed (A/D are set only for an
 * allowed access, as KVM's software walker does; a faulting access sets nothing). */
enum paging_status paging_walk(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                               struct paging_access access, unsigned flags, struct paging_walk *out);

/* Sets A on every entry of a successful walk, and D on the leaf when dirty is true.
 * For callers that check something of their own between the walk and the A/D update. */
void paging_set_accessed_dirty(const struct guest_mem *mem, struct paging_walk *w, bool dirty);

/* Reads/writes len bytes of guest memory at virtual address va through the guest's
 * tables: every page of the range is checked before any byte moves (a fault on the
 * second page leaves the first untouched), then A/D are set and the bytes copied.
 * Identity rule (DESIGN.md §7): a leaf that maps a page to another address is
 * PAGING_BAD_MAPPING. A data page that is not resident is PAGING_HOST_FAULT. The
 * walk of the page that stopped the access is left in *out. */
enum paging_status paging_read(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                               void *dst, size_t len, enum paging_mode mode, struct paging_walk *out);
enum paging_status paging_write(const struct guest_mem *mem, const struct paging_ctx *ctx, uint64_t va,
                                const void *src, size_t len, enum paging_mode mode,
                                struct paging_walk *out);

/* 48-bit canonical: bits 63:47 all equal. */
static inline bool paging_is_canonical(uint64_t va) {
  uint64_t top = va >> 47;
  return top == 0 || top == (UINT64_C(1) << 17) - 1;
}

/* MOV to CR3 (PCIDE=0): bits 63:MAXPHYADDR must be 0, else #GP. */
bool paging_cr3_valid(uint64_t cr3, unsigned maxphyaddr);

/* The access described by a hardware #PF error code at the given CPL: W → write,
 * I → fetch, U → user; a supervisor access at CPL3 is an implicit one. */
struct paging_access paging_access_from_error_code(uint32_t error_code, unsigned cpl);

/* "read"/"write"/"fetch" and "user"/"supervisor"/"implicit-supervisor". */
const char *paging_op_name(enum paging_op op);
const char *paging_mode_name(enum paging_mode mode);
const char *paging_status_name(enum paging_status s);

#endif
