/* elf_loader.h — the guest kernel image: validation, loading into guest memory, symbols,
 * the boot contract it declares, and its SHA-256.
 *
 * An image is read once into memory and checked completely before anything uses it: every
 * header, offset and size is bounds-checked, so a truncated or hostile file is a message
 * ("FILE: field: problem"), never a crash. The image must be a static x86-64 ELF64
 * executable whose PT_LOAD segments are identity-placed (vaddr == paddr: guest VA == PA)
 * and which carries a valid .apfsim_contract section (guest/include/apfsim_boot.h;
 * docs/guest.md "Boot contract").
 *
 * Not for: building the boot info from a configuration or the vCPU entry state
 * (boot_info.h), running anything.
 */
#ifndef APFSIM_LOADER_ELF_LOADER_H
#define APFSIM_LOADER_ELF_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apfsim_boot.h"
#include "core/diag.h"

#define GUEST_IMAGE_MAX_BYTES (256u << 20) /* refuse larger files outright */
#define GUEST_IMAGE_MAX_SEGMENTS 16u

struct guest_segment {
  uint64_t gpa;        /* = vaddr = paddr */
  uint64_t mem_bytes;  /* bytes in guest memory (file bytes, then zeros) */
  uint64_t file_bytes;
  uint64_t file_offset;
  bool read, write, exec;
};

enum guest_symbol_kind { GUEST_SYM_FUNC, GUEST_SYM_OBJECT, GUEST_SYM_LABEL /* STT_NOTYPE: asm labels */ };

struct guest_symbol {
  uint64_t addr;
  uint64_t size; /* 0 for asm labels without .size */
  enum guest_symbol_kind kind;
  bool global;
  const char *name; /* points into the image's string table */
};

struct guest_image {
  char name[512];     /* path or caller-given name, for messages */
  uint8_t *data;      /* the whole file */
  size_t size;
  uint64_t entry;
  unsigned n_segments;
  struct guest_segment segments[GUEST_IMAGE_MAX_SEGMENTS]; /* ascending gpa, non-overlapping */
  uint64_t lowest_gpa, highest_gpa; /* [lowest, highest): all segments' memory */
  struct guest_symbol *symbols;     /* sorted by address, then by preference (see .c) */
  size_t n_symbols;
  struct apfsim_contract contract;
  uint8_t sha256[32];
  char sha256_hex[65];
};

/* Reads and validates an image. NULL with a message in err on any problem. */
struct guest_image *guest_image_open(const char *path, struct diag *err);
/* Same from a buffer (copied); name is used in messages. */
struct guest_image *guest_image_from_buffer(const char *name, const void *buf, size_t len, struct diag *err);
void guest_image_free(struct guest_image *img);

/* Copies every segment into guest memory (mem = guest PA 0, mem_bytes of RAM) and zeroes
 * the bytes past each segment's file part (bss). Fails without writing anything if a
 * segment does not fit in RAM. */
bool guest_image_load(const struct guest_image *img, uint8_t *mem, uint64_t mem_bytes, struct diag *err);

/* The symbol covering addr (its size, or up to the next symbol for size-less labels) and
 * the offset into it; NULL if none. */
const struct guest_symbol *guest_image_symbol_at(const struct guest_image *img, uint64_t addr, uint64_t *offset);

/* "exc_page_fault+0x1c", "kernel_entry" (offset 0), or "0x1234" when no symbol covers it.
 * Returns the length snprintf would have written. */
int guest_image_symbolize(const struct guest_image *img, uint64_t addr, char *buf, size_t len);

/* Resolves "symbol", "symbol+offset" (decimal or 0x-hex offset) or a plain address
 * ("0x101060", "1052768") to a guest address. Fails on an unknown or ambiguous symbol
 * (two definitions, e.g. a static function present in kernel and user code). */
bool guest_image_resolve(const struct guest_image *img, const char *expr, uint64_t *addr, struct diag *err);

/* The single definition of name; false if none or several. */
bool guest_image_lookup(const struct guest_image *img, const char *name, uint64_t *addr, uint64_t *size);

/* Executable segments, for the vCPU's instruction-site scan: fills up to max ranges
 * [start, end) and returns how many there are. */
size_t guest_image_text_ranges(const struct guest_image *img, uint64_t (*ranges)[2], size_t max);

#endif
