/* elf_loader.c — validation and loading of the guest image (see elf_loader.h).
 *
 * Every structure is copied out of the file with memcpy after a bounds check (no pointer
 * casts into the buffer: the file's alignment is not trusted either). Sizes are added with
 * overflow checks. Error messages name the image, the structure and the value.
 */
#include "loader/elf_loader.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* [off, off + len) lies in a buffer of size bytes, without overflow. */
static bool in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

static bool add_overflows(uint64_t a, uint64_t b) { return a + b < a; }

static bool fail(struct diag *err, const struct guest_image *img, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(struct diag *err, const struct guest_image *img, const char *field, const char *fmt, ...) {
  char msg[DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return diag_at(err, img->name, 0, field, "%s", msg);
}

/* ---- ELF header and program headers ---- */

static bool check_ehdr(struct guest_image *img, Elf64_Ehdr *eh, struct diag *err) {
  if (img->size < EI_NIDENT || memcmp(img->data, ELFMAG, SELFMAG) != 0) {
    if (img->size < SELFMAG) return fail(err, img, "ELF header", "file too short (%zu bytes) to be an ELF image", img->size);
    return fail(err, img, "ELF header", "not an ELF file (bad magic)");
  }
  if (img->data[EI_CLASS] != ELFCLASS64)
    return fail(err, img, "ELF header", "not a 64-bit ELF (class %u)", img->data[EI_CLASS]);
  if (img->data[EI_DATA] != ELFDATA2LSB)
    return fail(err, img, "ELF header", "not a little-endian ELF (data encoding %u)", img->data[EI_DATA]);
  if (img->size < sizeof *eh)
    return fail(err, img, "ELF header", "truncated: %zu bytes, the header alone needs %zu", img->size, sizeof *eh);
  memcpy(eh, img->data, sizeof *eh);
  if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
    return fail(err, img, "ELF header", "unknown ELF version %u", (unsigned)eh->e_version);
  if (eh->e_machine != EM_X86_64)
    return fail(err, img, "ELF header", "wrong machine %u, expected x86-64 (%u)", eh->e_machine, EM_X86_64);
  if (eh->e_type != ET_EXEC)
    return fail(err, img, "ELF header", "not a static executable (type %u): the guest kernel is linked at fixed addresses",
                eh->e_type);
  if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
    return fail(err, img, "ELF header", "no program headers (e_phnum %u)", eh->e_phnum);
  if (eh->e_phentsize != sizeof(Elf64_Phdr))
    return fail(err, img, "ELF header", "program header size %u, expected %zu", eh->e_phentsize, sizeof(Elf64_Phdr));
  if (!in_bounds(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), img->size))
    return fail(err, img, "ELF header", "program headers [%#" PRIx64 ", +%u x %zu) lie outside the file (%zu bytes)",
                (uint64_t)eh->e_phoff, eh->e_phnum, sizeof(Elf64_Phdr), img->size);
  if (eh->e_shnum) {
    if (eh->e_shentsize != sizeof(Elf64_Shdr))
      return fail(err, img, "ELF header", "section header size %u, expected %zu", eh->e_shentsize, sizeof(Elf64_Shdr));
    if (!in_bounds(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), img->size))
      return fail(err, img, "ELF header", "section headers [%#" PRIx64 ", +%u x %zu) lie outside the file (%zu bytes)",
                  (uint64_t)eh->e_shoff, eh->e_shnum, sizeof(Elf64_Shdr), img->size);
    if (eh->e_shstrndx == SHN_UNDEF || eh->e_shstrndx >= eh->e_shnum)
      return fail(err, img, "ELF header", "section-name table index %u out of range (%u sections)", eh->e_shstrndx,
                  eh->e_shnum);
  }
  return true;
}

static bool read_segments(struct guest_image *img, const Elf64_Ehdr *eh, struct diag *err) {
  char field[64];
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    Elf64_Phdr ph;
    memcpy(&ph, img->data + eh->e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
    snprintf(field, sizeof field, "program header %u", i);
    if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
      return fail(err, img, field, "dynamically linked image: the guest kernel must be static");
    if (ph.p_type == PT_TLS) return fail(err, img, field, "thread-local storage is not supported in the guest");
    if (ph.p_type != PT_LOAD) continue;
    if (img->n_segments == GUEST_IMAGE_MAX_SEGMENTS)
      return fail(err, img, field, "more than %u loadable segments", GUEST_IMAGE_MAX_SEGMENTS);
    if (ph.p_filesz > ph.p_memsz)
      return fail(err, img, field, "file size %#" PRIx64 " exceeds memory size %#" PRIx64, (uint64_t)ph.p_filesz,
                  (uint64_t)ph.p_memsz);
    if (!in_bounds(ph.p_offset, ph.p_filesz, img->size))
      return fail(err, img, field, "segment data [%#" PRIx64 ", +%#" PRIx64 ") lies outside the file (%zu bytes)",
                  (uint64_t)ph.p_offset, (uint64_t)ph.p_filesz, img->size);
    if (ph.p_vaddr != ph.p_paddr)
      return fail(err, img, field,
                  "virtual address %#" PRIx64 " != physical address %#" PRIx64 ": the guest runs identity-mapped",
                  (uint64_t)ph.p_vaddr, (uint64_t)ph.p_paddr);
    if (ph.p_memsz == 0) continue;
    if (add_overflows(ph.p_vaddr, ph.p_memsz) || ph.p_vaddr + ph.p_memsz > (UINT64_C(1) << 47))
      return fail(err, img, field, "segment [%#" PRIx64 ", +%#" PRIx64 ") is beyond the 47-bit guest address space",
                  (uint64_t)ph.p_vaddr, (uint64_t)ph.p_memsz);
    img->segments[img->n_segments++] = (struct guest_segment){
        .gpa = ph.p_vaddr,
        .mem_bytes = ph.p_memsz,
        .file_bytes = ph.p_filesz,
        .file_offset = ph.p_offset,
        .read = ph.p_flags & PF_R,
        .write = ph.p_flags & PF_W,
        .exec = ph.p_flags & PF_X,
    };
  }
  if (img->n_segments == 0) return fail(err, img, "program headers", "no loadable segment");

  /* sort by address (insertion sort: at most 16), then refuse overlaps */
  for (unsigned i = 1; i < img->n_segments; i++)
    for (unsigned j = i; j > 0 && img->segments[j].gpa < img->segments[j - 1].gpa; j--) {
      struct guest_segment t = img->segments[j];
      img->segments[j] = img->segments[j - 1];
      img->segments[j - 1] = t;
    }
  for (unsigned i = 1; i < img->n_segments; i++) {
    const struct guest_segment *a = &img->segments[i - 1], *b = &img->segments[i];
    if (a->gpa + a->mem_bytes > b->gpa)
      return fail(err, img, "program headers",
                  "segments [%#" PRIx64 ", %#" PRIx64 ") and [%#" PRIx64 ", %#" PRIx64 ") overlap", a->gpa,
                  a->gpa + a->mem_bytes, b->gpa, b->gpa + b->mem_bytes);
  }
  img->lowest_gpa = img->segments[0].gpa;
  const struct guest_segment *last = &img->segments[img->n_segments - 1];
  img->highest_gpa = last->gpa + last->mem_bytes;

  img->entry = eh->e_entry;
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    if (s->exec && img->entry >= s->gpa && img->entry < s->gpa + s->mem_bytes) return true;
  }
  return fail(err, img, "ELF header", "entry point %#" PRIx64 " is not in an executable segment", img->entry);
}

/* ---- sections ---- */

static bool read_shdr(const struct guest_image *img, const Elf64_Ehdr *eh, unsigned i, Elf64_Shdr *sh) {
  if (i >= eh->e_shnum) return false;
  memcpy(sh, img->data + eh->e_shoff + (uint64_t)i * sizeof *sh, sizeof *sh);
  return true;
}

/* The NUL-terminated string at off in the table [tab_off, tab_off + tab_size) of the file. */
static const char *string_at(const struct guest_image *img, uint64_t tab_off, uint64_t tab_size, uint64_t off) {
  if (off >= tab_size) return NULL;
  const char *s = (const char *)img->data + tab_off + off;
  if (!memchr(s, '\0', tab_size - off)) return NULL;
  return s;
}

static bool check_string_table(const struct guest_image *img, const Elf64_Shdr *sh, const char *what, struct diag *err) {
  if (sh->sh_type != SHT_STRTAB) return fail(err, img, what, "is not a string table (type %u)", sh->sh_type);
  if (!in_bounds(sh->sh_offset, sh->sh_size, img->size))
    return fail(err, img, what, "[%#" PRIx64 ", +%#" PRIx64 ") lies outside the file", (uint64_t)sh->sh_offset,
                (uint64_t)sh->sh_size);
  return true;
}

/* The section named `name` into *out; *found false if there is none. False only for a
 * malformed section-name table. */
static bool find_section(const struct guest_image *img, const Elf64_Ehdr *eh, const char *name, Elf64_Shdr *out,
                         bool *found, struct diag *err) {
  Elf64_Shdr names;
  *found = false;
  if (!eh->e_shnum) return true;
  read_shdr(img, eh, eh->e_shstrndx, &names);
  if (!check_string_table(img, &names, "section-name table", err)) return false;
  for (unsigned i = 1; i < eh->e_shnum; i++) {
    Elf64_Shdr sh;
    read_shdr(img, eh, i, &sh);
    const char *n = string_at(img, names.sh_offset, names.sh_size, sh.sh_name);
    if (!n) return fail(err, img, "section headers", "section %u has a name outside the section-name table", i);
    if (strcmp(n, name) == 0) {
      *out = sh;
      *found = true;
      return true;
    }
  }
  return true;
}

/* ---- symbols ---- */

static int symbol_rank(const struct guest_symbol *s) {
  /* at one address, prefer functions and objects to labels, and ordinary names to
   * linker-script markers such as __image_start */
  return (s->kind == GUEST_SYM_LABEL ? 2 : 0) + (strncmp(s->name, "__", 2) == 0 ? 1 : 0);
}

static int symbol_cmp(const void *pa, const void *pb) {
  const struct guest_symbol *a = pa, *b = pb;
  if (a->addr != b->addr) return a->addr < b->addr ? -1 : 1;
  int ra = symbol_rank(a), rb = symbol_rank(b);
  if (ra != rb) return ra - rb;
  return strcmp(a->name, b->name);
}

static bool in_segments(const struct guest_image *img, uint64_t addr) {
  for (unsigned i = 0; i < img->n_segments; i++)
    if (addr >= img->segments[i].gpa && addr - img->segments[i].gpa < img->segments[i].mem_bytes) return true;
  return false;
}

static bool printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return false;
  return true;
}

static bool read_symbols(struct guest_image *img, const Elf64_Ehdr *eh, struct diag *err) {
  Elf64_Shdr symtab, strtab;
  unsigned symtab_index = 0;
  for (unsigned i = 1; i < eh->e_shnum; i++) {
    Elf64_Shdr sh;
    read_shdr(img, eh, i, &sh);
    if (sh.sh_type == SHT_SYMTAB) {
      symtab = sh;
      symtab_index = i;
      break;
    }
  }
  if (!symtab_index) return true; /* stripped: no symbolization, not an error */
  if (symtab.sh_entsize != sizeof(Elf64_Sym))
    return fail(err, img, "symbol table", "entry size %" PRIu64 ", expected %zu", (uint64_t)symtab.sh_entsize,
                sizeof(Elf64_Sym));
  if (!in_bounds(symtab.sh_offset, symtab.sh_size, img->size))
    return fail(err, img, "symbol table", "[%#" PRIx64 ", +%#" PRIx64 ") lies outside the file",
                (uint64_t)symtab.sh_offset, (uint64_t)symtab.sh_size);
  if (!read_shdr(img, eh, symtab.sh_link, &strtab))
    return fail(err, img, "symbol table", "string table index %u out of range", symtab.sh_link);
  if (!check_string_table(img, &strtab, "symbol string table", err)) return false;

  size_t n = symtab.sh_size / sizeof(Elf64_Sym);
  img->symbols = calloc(n ? n : 1, sizeof *img->symbols);
  if (!img->symbols) return fail(err, img, "symbol table", "out of memory for %zu symbols", n);
  for (size_t i = 0; i < n; i++) {
    Elf64_Sym s;
    memcpy(&s, img->data + symtab.sh_offset + i * sizeof s, sizeof s);
    unsigned type = ELF64_ST_TYPE(s.st_info);
    if (s.st_shndx == SHN_UNDEF || s.st_name == 0) continue;
    if (type != STT_FUNC && type != STT_OBJECT && type != STT_NOTYPE) continue;
    if (!in_segments(img, s.st_value)) continue; /* e.g. absolute or end-of-image markers */
    const char *name = string_at(img, strtab.sh_offset, strtab.sh_size, s.st_name);
    if (!name) return fail(err, img, "symbol table", "symbol %zu has a name outside the string table", i);
    if (name[0] == '\0' || name[0] == '$') continue;
    /* Symbol names end up in verdicts, messages and trace fields, which are one
     * printable line each: a name with a control character (a corrupt string
     * table) cannot be shown, so it is not used for symbolization either. */
    if (!printable(name)) continue;
    img->symbols[img->n_symbols++] = (struct guest_symbol){
        .addr = s.st_value,
        .size = s.st_size,
        .kind = type == STT_FUNC ? GUEST_SYM_FUNC : type == STT_OBJECT ? GUEST_SYM_OBJECT : GUEST_SYM_LABEL,
        .global = ELF64_ST_BIND(s.st_info) != STB_LOCAL,
        .name = name,
    };
  }
  qsort(img->symbols, img->n_symbols, sizeof *img->symbols, symbol_cmp);
  return true;
}

/* ---- the contract ---- */

/* [gpa, gpa + bytes) lies inside one segment that has the given permissions. */
static bool in_one_segment(const struct guest_image *img, uint64_t gpa, uint64_t bytes, bool need_write, bool need_exec) {
  if (add_overflows(gpa, bytes)) return false;
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    if (gpa >= s->gpa && gpa + bytes <= s->gpa + s->mem_bytes) return (!need_write || s->write) && (!need_exec || s->exec);
  }
  return false;
}

static bool check_range(const struct guest_image *img, const char *field, uint64_t gpa, uint64_t bytes, bool write,
                        bool exec, struct diag *err) {
  if (in_one_segment(img, gpa, bytes, write, exec)) return true;
  return fail(err, img, field, "[%#" PRIx64 ", +%#" PRIx64 ") is not inside one %s%s segment of the image", gpa, bytes,
              write ? "writable" : "loaded", exec ? " executable" : "");
}

static bool read_contract(struct guest_image *img, const Elf64_Ehdr *eh, struct diag *err) {
  Elf64_Shdr sh;
  bool found;
  if (!find_section(img, eh, APFSIM_CONTRACT_SECTION, &sh, &found, err)) return false;
  if (!found)
    return fail(err, img, APFSIM_CONTRACT_SECTION, "section missing: not an apfsim guest kernel (guest/include/apfsim_boot.h)");
  if (sh.sh_type != SHT_PROGBITS || sh.sh_size != sizeof img->contract)
    return fail(err, img, APFSIM_CONTRACT_SECTION, "holds %" PRIu64 " bytes (type %u), expected one struct apfsim_contract (%zu bytes)",
                (uint64_t)sh.sh_size, sh.sh_type, sizeof img->contract);
  if (!in_bounds(sh.sh_offset, sh.sh_size, img->size))
    return fail(err, img, APFSIM_CONTRACT_SECTION, "[%#" PRIx64 ", +%#" PRIx64 ") lies outside the file",
                (uint64_t)sh.sh_offset, (uint64_t)sh.sh_size);
  struct apfsim_contract *c = &img->contract;
  memcpy(c, img->data + sh.sh_offset, sizeof *c);

  if (c->magic != APFSIM_CONTRACT_MAGIC) return fail(err, img, "contract.magic", "%#" PRIx64 " is not the contract magic", c->magic);
  if (c->version != APFSIM_BOOT_VERSION)
    return fail(err, img, "contract.version", "image speaks boot contract version %u, this simulator version %u: rebuild the guest",
                c->version, APFSIM_BOOT_VERSION);
  if (c->size != sizeof *c) return fail(err, img, "contract.size", "%u, expected %zu", c->size, sizeof *c);
  /* The upper bound keeps boot_info_gpa + boot_info_bytes from wrapping (the overlap and
   * image_start checks below add them) and the page inside the boot map, which guest RAM
   * always covers: guest_boot_info_write zeroes all of it. */
  if (c->boot_info_gpa != APFSIM_BOOT_INFO_GPA || c->boot_info_bytes < sizeof(struct apfsim_boot_info) ||
      c->boot_info_bytes % APFSIM_PAGE_SIZE || c->boot_info_bytes > APFSIM_BOOT_MAP_BYTES - APFSIM_BOOT_INFO_GPA)
    return fail(err, img, "contract.boot_info_gpa", "boot info page [%#" PRIx64 ", +%#" PRIx64 ") differs from the contract's %#llx",
                c->boot_info_gpa, c->boot_info_bytes, (unsigned long long)APFSIM_BOOT_INFO_GPA);
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    if (s->gpa < c->boot_info_gpa + c->boot_info_bytes && c->boot_info_gpa < s->gpa + s->mem_bytes)
      return fail(err, img, "contract.boot_info_gpa", "the boot info page overlaps segment [%#" PRIx64 ", %#" PRIx64 ")",
                  s->gpa, s->gpa + s->mem_bytes);
  }
  if (c->boot_map_bytes != APFSIM_BOOT_MAP_BYTES || img->highest_gpa > c->boot_map_bytes)
    return fail(err, img, "contract.boot_map_bytes", "boot map %#" PRIx64 " must be %#llx and cover the image (ends at %#" PRIx64 ")",
                c->boot_map_bytes, (unsigned long long)APFSIM_BOOT_MAP_BYTES, img->highest_gpa);
  if (c->boot_cr3 % APFSIM_PAGE_SIZE) return fail(err, img, "contract.boot_cr3", "%#" PRIx64 " is not page aligned", c->boot_cr3);
  if (!check_range(img, "contract.boot_cr3", c->boot_cr3, APFSIM_PAGE_SIZE, true, false, err)) return false;
  if (c->boot_gdt_limit < 3 * 8 - 1 || (c->boot_gdt_limit + 1) % 8)
    return fail(err, img, "contract.boot_gdt_limit", "%u does not describe whole descriptors (null, code, data at least)",
                c->boot_gdt_limit);
  if (!check_range(img, "contract.boot_gdt_gpa", c->boot_gdt_gpa, (uint64_t)c->boot_gdt_limit + 1, true, false, err))
    return false;
  if (c->boot_cs == 0 || c->boot_ds == 0 || c->boot_cs > c->boot_gdt_limit || c->boot_ds > c->boot_gdt_limit ||
      (c->boot_cs & 7) || (c->boot_ds & 7))
    return fail(err, img, "contract.boot_cs", "selectors cs %#x / ds %#x are not kernel descriptors of the boot GDT", c->boot_cs,
                c->boot_ds);
  if (c->max_vcpus == 0 || c->max_vcpus > APFSIM_MAX_VCPUS)
    return fail(err, img, "contract.max_vcpus", "%u out of 1..%u", c->max_vcpus, APFSIM_MAX_VCPUS);
  if (c->boot_stack_bytes < 4096 || c->boot_stack_bytes > (UINT64_C(1) << 20) || c->boot_stack_bytes % 16 ||
      c->boot_stacks_gpa % 16)
    return fail(err, img, "contract.boot_stack_bytes", "stacks of %#" PRIx64 " bytes at %#" PRIx64 " (need 4 KiB to 1 MiB, 16-byte aligned)",
                c->boot_stack_bytes, c->boot_stacks_gpa);
  if (!check_range(img, "contract.boot_stacks_gpa", c->boot_stacks_gpa, c->boot_stack_bytes * c->max_vcpus, true, false, err))
    return false;
  if (c->image_start != img->lowest_gpa || c->image_end < img->highest_gpa || c->image_end % APFSIM_PAGE_SIZE)
    return fail(err, img, "contract.image_end", "image [%#" PRIx64 ", %#" PRIx64 ") disagrees with the segments [%#" PRIx64 ", %#" PRIx64 ")",
                c->image_start, c->image_end, img->lowest_gpa, img->highest_gpa);
  if (c->image_start < c->boot_info_gpa + c->boot_info_bytes)
    return fail(err, img, "contract.image_start", "%#" PRIx64 " is below the end of the boot info page", c->image_start);
  /* the user text range starts with an executable segment (code; its constants may follow
   * in a read-only one) and is page-granular: it is mapped page by page, so its end may lie
   * in the padding up to the next page boundary */
  const struct guest_segment *ut = NULL;
  for (unsigned i = 0; i < img->n_segments; i++)
    if (img->segments[i].exec && c->user_text_start >= img->segments[i].gpa &&
        c->user_text_start < img->segments[i].gpa + img->segments[i].mem_bytes)
      ut = &img->segments[i];
  if (!ut || c->user_text_end <= c->user_text_start ||
      c->user_text_end > apfsim_align_up(img->highest_gpa, APFSIM_PAGE_SIZE))
    return fail(err, img, "contract.user_text_start", "user text [%#" PRIx64 ", %#" PRIx64 ") does not start in an executable segment and end in the image",
                c->user_text_start, c->user_text_end);
  if (c->max_processes == 0 || c->max_processes > APFSIM_MAX_PROCESSES)
    return fail(err, img, "contract.max_processes", "%u out of 1..%u", c->max_processes, APFSIM_MAX_PROCESSES);
  if (!check_range(img, "contract.proc_stats_gpa", c->proc_stats_gpa, (uint64_t)c->max_processes * sizeof(struct apfsim_proc_stats),
                   true, false, err) ||
      !check_range(img, "contract.vcpu_stats_gpa", c->vcpu_stats_gpa, (uint64_t)c->max_vcpus * sizeof(struct apfsim_vcpu_stats),
                   true, false, err))
    return false;
  if (c->cr0 != APFSIM_ENTRY_CR0 || c->cr4 != APFSIM_ENTRY_CR4 || c->efer != APFSIM_ENTRY_EFER)
    return fail(err, img, "contract.cr0", "entry state cr0 %#" PRIx64 " cr4 %#" PRIx64 " efer %#" PRIx64
                " differs from this simulator's (%#llx %#llx %#llx)",
                c->cr0, c->cr4, c->efer, (unsigned long long)APFSIM_ENTRY_CR0, (unsigned long long)APFSIM_ENTRY_CR4,
                (unsigned long long)APFSIM_ENTRY_EFER);
  return true;
}

/* ---- hash ---- */

static bool hash_image(struct guest_image *img, struct diag *err) {
  unsigned int len = 0;
  if (!EVP_Digest(img->data, img->size, img->sha256, &len, EVP_sha256(), NULL) || len != sizeof img->sha256)
    return fail(err, img, "SHA-256", "OpenSSL could not hash the image");
  for (unsigned i = 0; i < sizeof img->sha256; i++) snprintf(img->sha256_hex + 2 * i, 3, "%02x", img->sha256[i]);
  return true;
}

/* ---- public ---- */

static struct guest_image *parse(struct guest_image *img, struct diag *err) {
  Elf64_Ehdr eh;
  if (check_ehdr(img, &eh, err) && read_segments(img, &eh, err) && read_symbols(img, &eh, err) &&
      read_contract(img, &eh, err) && hash_image(img, err))
    return img;
  guest_image_free(img);
  return NULL;
}

static struct guest_image *new_image(const char *name, size_t size, struct diag *err) {
  struct guest_image *img = calloc(1, sizeof *img);
  if (img) img->data = malloc(size ? size : 1);
  if (!img || !img->data) {
    free(img);
    diag_at(err, name, 0, NULL, "out of memory for a %zu-byte image", size);
    return NULL;
  }
  snprintf(img->name, sizeof img->name, "%s", name);
  img->size = size;
  return img;
}

struct guest_image *guest_image_from_buffer(const char *name, const void *buf, size_t len, struct diag *err) {
  if (len > GUEST_IMAGE_MAX_BYTES) {
    diag_at(err, name, 0, NULL, "image of %zu bytes is larger than the %u MiB limit", len, GUEST_IMAGE_MAX_BYTES >> 20);
    return NULL;
  }
  struct guest_image *img = new_image(name, len, err);
  if (!img) return NULL;
  if (len) memcpy(img->data, buf, len);
  return parse(img, err);
}

struct guest_image *guest_image_open(const char *path, struct diag *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_at(err, path, 0, NULL, "cannot open the guest image: %s", strerror(errno));
    return NULL;
  }
  struct guest_image *img = NULL;
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
    diag_at(err, path, 0, NULL, "cannot determine the size of the guest image: %s", strerror(errno));
  } else if ((unsigned long)size > GUEST_IMAGE_MAX_BYTES) {
    diag_at(err, path, 0, NULL, "image of %ld bytes is larger than the %u MiB limit", size, GUEST_IMAGE_MAX_BYTES >> 20);
  } else if ((img = new_image(path, (size_t)size, err)) != NULL) {
    if (fread(img->data, 1, img->size, f) != img->size) {
      diag_at(err, path, 0, NULL, "cannot read the guest image: %s", ferror(f) ? strerror(errno) : "file shrank");
      guest_image_free(img);
      img = NULL;
    }
  }
  fclose(f);
  return img ? parse(img, err) : NULL;
}

void guest_image_free(struct guest_image *img) {
  if (!img) return;
  free(img->symbols);
  free(img->data);
  free(img);
}

bool guest_image_load(const struct guest_image *img, uint8_t *mem, uint64_t mem_bytes, struct diag *err) {
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    if (s->gpa + s->mem_bytes > mem_bytes)
      return diag_at(err, img->name, 0, "machine/guest-memory",
                     "segment [%#" PRIx64 ", %#" PRIx64 ") does not fit in %" PRIu64 " MiB of guest RAM", s->gpa,
                     s->gpa + s->mem_bytes, mem_bytes >> 20);
  }
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    memcpy(mem + s->gpa, img->data + s->file_offset, s->file_bytes);
    memset(mem + s->gpa + s->file_bytes, 0, s->mem_bytes - s->file_bytes);
  }
  return true;
}

const struct guest_symbol *guest_image_symbol_at(const struct guest_image *img, uint64_t addr, uint64_t *offset) {
  /* the first (preferred) of the symbols with the greatest address <= addr */
  size_t lo = 0, hi = img->n_symbols;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (img->symbols[mid].addr <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return NULL;
  size_t i = lo - 1;
  while (i > 0 && img->symbols[i - 1].addr == img->symbols[i].addr) i--;
  const struct guest_symbol *s = &img->symbols[i];
  /* a sized symbol covers [addr, addr + size); a size-less label covers everything up to
   * the next symbol, within the image (asm labels inside a function are the more precise
   * answer there: "nmi_repeat+0x8" rather than "asm_exc_nmi+0x50") */
  bool covered = s->size ? addr - s->addr < s->size : in_segments(img, addr);
  if (!covered) return NULL;
  *offset = addr - s->addr;
  return s;
}

int guest_image_symbolize(const struct guest_image *img, uint64_t addr, char *buf, size_t len) {
  uint64_t off = 0;
  const struct guest_symbol *s = guest_image_symbol_at(img, addr, &off);
  if (!s) return snprintf(buf, len, "%#" PRIx64, addr);
  if (!off) return snprintf(buf, len, "%s", s->name);
  return snprintf(buf, len, "%s+%#" PRIx64, s->name, off);
}

bool guest_image_lookup(const struct guest_image *img, const char *name, uint64_t *addr, uint64_t *size) {
  size_t found = 0;
  for (size_t i = 0; i < img->n_symbols; i++) {
    if (strcmp(img->symbols[i].name, name) != 0) continue;
    if (found++ == 0) {
      if (addr) *addr = img->symbols[i].addr;
      if (size) *size = img->symbols[i].size;
    }
  }
  return found == 1;
}

static bool parse_u64(const char *s, uint64_t *v) {
  char *end;
  if (!*s || *s == '-' || *s == '+') return false;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 0);
  if (errno || *end) return false;
  *v = x;
  return true;
}

bool guest_image_resolve(const struct guest_image *img, const char *expr, uint64_t *addr, struct diag *err) {
  char name[256];
  const char *plus = strchr(expr, '+');
  size_t n = plus ? (size_t)(plus - expr) : strlen(expr);
  uint64_t off = 0, base = 0;
  if (n == 0 || n >= sizeof name) return diag_at(err, img->name, 0, "symbol", "'%s' is not symbol[+offset]", expr);
  memcpy(name, expr, n);
  name[n] = '\0';
  if (plus && !parse_u64(plus + 1, &off))
    return diag_at(err, img->name, 0, "symbol", "'%s': offset '%s' is not a number", expr, plus + 1);
  if (!plus && (name[0] >= '0' && name[0] <= '9')) {
    if (!parse_u64(name, &base)) return diag_at(err, img->name, 0, "symbol", "'%s' is not an address", expr);
  } else {
    size_t count = 0;
    uint64_t first = 0, second = 0;
    for (size_t i = 0; i < img->n_symbols; i++) {
      if (strcmp(img->symbols[i].name, name) != 0) continue;
      if (count == 0) first = img->symbols[i].addr;
      if (count == 1) second = img->symbols[i].addr;
      count++;
    }
    if (count == 0) return diag_at(err, img->name, 0, "symbol", "unknown guest symbol '%s'", name);
    if (count > 1)
      return diag_at(err, img->name, 0, "symbol", "guest symbol '%s' is ambiguous (%zu definitions: %#" PRIx64 ", %#" PRIx64 "%s)",
                     name, count, first, second, count > 2 ? ", ..." : "");
    base = first;
  }
  if (add_overflows(base, off) || !in_segments(img, base + off))
    return diag_at(err, img->name, 0, "symbol", "'%s' = %#" PRIx64 " is outside the image", expr, base + off);
  *addr = base + off;
  return true;
}

size_t guest_image_text_ranges(const struct guest_image *img, uint64_t (*ranges)[2], size_t max) {
  size_t n = 0;
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    if (!s->exec) continue;
    if (n < max) {
      ranges[n][0] = s->gpa;
      ranges[n][1] = s->gpa + s->mem_bytes;
    }
    n++;
  }
  return n;
}
