/* test_loader_corrupt.c — broken images are messages, never crashes.
 *
 * Each case takes the real kernel's bytes, breaks one thing (truncation, magic, class,
 * machine, type, header offsets, segments outside memory or overlapping, huge offsets, a
 * missing or lying contract, a bad symbol table) and checks the loader's exact message.
 * A seeded mutation run then flips bytes in the headers thousands of times: every result
 * must be a clean success or a message (run it under ASan/UBSan: .ci/run does). */
#include <elf.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "loader/elf_loader.h"

#define NAME "broken.elf"

static uint8_t *orig;
static size_t orig_len;

static int setup(void **state) {
  (void)state;
  orig = read_kernel(&orig_len);
  return orig ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(orig);
  return 0;
}

/* ---- editing helpers over a private copy ---- */

struct img {
  uint8_t *b;
  size_t len;
  Elf64_Ehdr eh;
};

static struct img copy(void) {
  struct img m;
  memset(&m, 0, sizeof m);
  m.b = malloc(orig_len);
  m.len = orig_len;
  memcpy(m.b, orig, orig_len);
  memcpy(&m.eh, m.b, sizeof m.eh);
  return m;
}

static void put_eh(struct img *m) { memcpy(m->b, &m->eh, sizeof m->eh); }

static Elf64_Phdr get_ph(const struct img *m, unsigned i) {
  Elf64_Phdr p;
  memcpy(&p, m->b + m->eh.e_phoff + i * sizeof p, sizeof p);
  return p;
}

static void put_ph(struct img *m, unsigned i, const Elf64_Phdr *p) { memcpy(m->b + m->eh.e_phoff + i * sizeof *p, p, sizeof *p); }

static Elf64_Shdr get_sh(const struct img *m, unsigned i) {
  Elf64_Shdr s;
  memcpy(&s, m->b + m->eh.e_shoff + i * sizeof s, sizeof s);
  return s;
}

static void put_sh(struct img *m, unsigned i, const Elf64_Shdr *s) { memcpy(m->b + m->eh.e_shoff + i * sizeof *s, s, sizeof *s); }

static unsigned section_index(const struct img *m, const char *name) {
  Elf64_Shdr names = get_sh(m, m->eh.e_shstrndx);
  for (unsigned i = 1; i < m->eh.e_shnum; i++) {
    Elf64_Shdr s = get_sh(m, i);
    if (strcmp((const char *)m->b + names.sh_offset + s.sh_name, name) == 0) return i;
  }
  fail_msg("no section %s", name);
  return 0;
}

static unsigned section_of_type(const struct img *m, unsigned type) {
  for (unsigned i = 1; i < m->eh.e_shnum; i++)
    if (get_sh(m, i).sh_type == type) return i;
  fail_msg("no section of type %u", type);
  return 0;
}

/* The contract inside the file, for editing. */
static struct apfsim_contract get_contract(const struct img *m, uint64_t *file_off) {
  Elf64_Shdr s = get_sh(m, section_index(m, APFSIM_CONTRACT_SECTION));
  struct apfsim_contract c;
  memcpy(&c, m->b + s.sh_offset, sizeof c);
  *file_off = s.sh_offset;
  return c;
}

/* Opens m, expects failure with exactly `expected`; frees m. */
static void expect_error(struct img *m, const char *expected) {
  struct diag d = {{0}};
  struct guest_image *g = guest_image_from_buffer(NAME, m->b, m->len, &d);
  free(m->b);
  if (g) {
    guest_image_free(g);
    fail_msg("image accepted; expected: %s", expected);
  }
  assert_string_equal(d.msg, expected);
}

/* ---- the corpus ---- */

static void the_unmodified_image_loads(void **state) {
  (void)state;
  struct img m = copy();
  struct diag d = {{0}};
  struct guest_image *g = guest_image_from_buffer(NAME, m.b, m.len, &d);
  assert_non_null(g);
  guest_image_free(g);
  free(m.b);
}

static void empty_file(void **state) {
  (void)state;
  struct img m = copy();
  m.len = 0;
  expect_error(&m, NAME ": ELF header: file too short (0 bytes) to be an ELF image");
}

static void truncated_inside_the_elf_header(void **state) {
  (void)state;
  struct img m = copy();
  m.len = 40;
  expect_error(&m, NAME ": ELF header: truncated: 40 bytes, the header alone needs 64");
}

static void truncated_before_the_section_headers(void **state) {
  (void)state;
  struct img m = copy();
  char want[256];
  m.len = orig_len / 2;
  snprintf(want, sizeof want, NAME ": ELF header: section headers [%#" PRIx64 ", +%u x 64) lie outside the file (%zu bytes)",
           (uint64_t)m.eh.e_shoff, m.eh.e_shnum, m.len);
  expect_error(&m, want);
}

static void truncated_inside_a_segment(void **state) {
  (void)state;
  /* keep the headers, cut the file right after the program headers: the first segment's
   * data is then outside the file */
  struct img m = copy();
  Elf64_Phdr p = get_ph(&m, 0);
  m.eh.e_shnum = 0;
  m.eh.e_shoff = 0;
  m.eh.e_shstrndx = 0;
  put_eh(&m);
  m.len = m.eh.e_phoff + m.eh.e_phnum * sizeof(Elf64_Phdr);
  char want[256];
  snprintf(want, sizeof want, NAME ": program header 0: segment data [%#" PRIx64 ", +%#" PRIx64 ") lies outside the file (%zu bytes)",
           (uint64_t)p.p_offset, (uint64_t)p.p_filesz, m.len);
  expect_error(&m, want);
}

static void bad_magic(void **state) {
  (void)state;
  struct img m = copy();
  m.b[1] = 'X';
  expect_error(&m, NAME ": ELF header: not an ELF file (bad magic)");
}

static void elf32_class(void **state) {
  (void)state;
  struct img m = copy();
  m.b[EI_CLASS] = ELFCLASS32;
  expect_error(&m, NAME ": ELF header: not a 64-bit ELF (class 1)");
}

static void big_endian(void **state) {
  (void)state;
  struct img m = copy();
  m.b[EI_DATA] = ELFDATA2MSB;
  expect_error(&m, NAME ": ELF header: not a little-endian ELF (data encoding 2)");
}

static void wrong_machine(void **state) {
  (void)state;
  struct img m = copy();
  m.eh.e_machine = EM_AARCH64;
  put_eh(&m);
  expect_error(&m, NAME ": ELF header: wrong machine 183, expected x86-64 (62)");
}

static void position_independent_executable(void **state) {
  (void)state;
  struct img m = copy();
  m.eh.e_type = ET_DYN;
  put_eh(&m);
  expect_error(&m, NAME ": ELF header: not a static executable (type 3): the guest kernel is linked at fixed addresses");
}

static void huge_program_header_offset(void **state) {
  (void)state;
  struct img m = copy();
  char want[256];
  m.eh.e_phoff = UINT64_C(0xfffffffffffffff0);
  put_eh(&m);
  snprintf(want, sizeof want, NAME ": ELF header: program headers [0xfffffffffffffff0, +%u x 56) lie outside the file (%zu bytes)",
           m.eh.e_phnum, m.len);
  expect_error(&m, want);
}

static void wrong_program_header_size(void **state) {
  (void)state;
  struct img m = copy();
  m.eh.e_phentsize = 32;
  put_eh(&m);
  expect_error(&m, NAME ": ELF header: program header size 32, expected 56");
}

static void section_name_index_out_of_range(void **state) {
  (void)state;
  struct img m = copy();
  char want[256];
  m.eh.e_shstrndx = m.eh.e_shnum;
  put_eh(&m);
  snprintf(want, sizeof want, NAME ": ELF header: section-name table index %u out of range (%u sections)", m.eh.e_shnum,
           m.eh.e_shnum);
  expect_error(&m, want);
}

static void huge_segment_offset(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Phdr p = get_ph(&m, 1);
  char want[256];
  p.p_offset = UINT64_C(0x7fffffffffffff00);
  put_ph(&m, 1, &p);
  snprintf(want, sizeof want, NAME ": program header 1: segment data [0x7fffffffffffff00, +%#" PRIx64 ") lies outside the file (%zu bytes)",
           (uint64_t)p.p_filesz, m.len);
  expect_error(&m, want);
}

static void file_size_above_memory_size(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Phdr p = get_ph(&m, 0);
  char want[256];
  p.p_memsz = p.p_filesz - 1;
  put_ph(&m, 0, &p);
  snprintf(want, sizeof want, NAME ": program header 0: file size %#" PRIx64 " exceeds memory size %#" PRIx64,
           (uint64_t)p.p_filesz, (uint64_t)p.p_memsz);
  expect_error(&m, want);
}

static void segment_not_identity_placed(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Phdr p = get_ph(&m, 2);
  char want[256];
  p.p_paddr += 0x1000;
  put_ph(&m, 2, &p);
  snprintf(want, sizeof want,
           NAME ": program header 2: virtual address %#" PRIx64 " != physical address %#" PRIx64 ": the guest runs identity-mapped",
           (uint64_t)p.p_vaddr, (uint64_t)p.p_paddr);
  expect_error(&m, want);
}

static void segment_outside_guest_address_space(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Phdr p = get_ph(&m, 1);
  char want[256];
  p.p_vaddr = p.p_paddr = UINT64_C(0x7fffffffff00);
  put_ph(&m, 1, &p);
  snprintf(want, sizeof want, NAME ": program header 1: segment [0x7fffffffff00, +%#" PRIx64 ") is beyond the 47-bit guest address space",
           (uint64_t)p.p_memsz);
  expect_error(&m, want);
}

static void overlapping_segments(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Phdr p0 = get_ph(&m, 0), p1 = get_ph(&m, 1);
  char want[256];
  p1.p_vaddr = p1.p_paddr = p0.p_vaddr + 0x1000; /* inside the text segment */
  put_ph(&m, 1, &p1);
  snprintf(want, sizeof want,
           NAME ": program headers: segments [%#" PRIx64 ", %#" PRIx64 ") and [%#" PRIx64 ", %#" PRIx64 ") overlap",
           (uint64_t)p0.p_vaddr, (uint64_t)(p0.p_vaddr + p0.p_memsz), (uint64_t)p1.p_vaddr, (uint64_t)(p1.p_vaddr + p1.p_memsz));
  expect_error(&m, want);
}

static void dynamically_linked(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Phdr p = get_ph(&m, 3);
  p.p_type = PT_INTERP;
  put_ph(&m, 3, &p);
  expect_error(&m, NAME ": program header 3: dynamically linked image: the guest kernel must be static");
}

static void no_loadable_segment(void **state) {
  (void)state;
  struct img m = copy();
  for (unsigned i = 0; i < m.eh.e_phnum; i++) {
    Elf64_Phdr p = get_ph(&m, i);
    p.p_type = PT_NOTE;
    put_ph(&m, i, &p);
  }
  expect_error(&m, NAME ": program headers: no loadable segment");
}

static void entry_outside_code(void **state) {
  (void)state;
  struct img m = copy();
  m.eh.e_entry = get_ph(&m, 2).p_vaddr; /* the data segment */
  put_eh(&m);
  char want[256];
  snprintf(want, sizeof want, NAME ": ELF header: entry point %#" PRIx64 " is not in an executable segment", (uint64_t)m.eh.e_entry);
  expect_error(&m, want);
}

static void contract_section_missing(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Shdr names = get_sh(&m, m.eh.e_shstrndx);
  Elf64_Shdr s = get_sh(&m, section_index(&m, APFSIM_CONTRACT_SECTION));
  m.b[names.sh_offset + s.sh_name + 1] = 'X'; /* ".Xpfsim_contract" */
  expect_error(&m, NAME ": .apfsim_contract: section missing: not an apfsim guest kernel (guest/include/apfsim_boot.h)");
}

static void contract_section_wrong_size(void **state) {
  (void)state;
  struct img m = copy();
  unsigned i = section_index(&m, APFSIM_CONTRACT_SECTION);
  Elf64_Shdr s = get_sh(&m, i);
  s.sh_size = 128;
  put_sh(&m, i, &s);
  expect_error(&m, NAME ": .apfsim_contract: holds 128 bytes (type 1), expected one struct apfsim_contract (256 bytes)");
}

static void contract_wrong_version(void **state) {
  (void)state;
  struct img m = copy();
  uint64_t off;
  struct apfsim_contract c = get_contract(&m, &off);
  c.version = APFSIM_BOOT_VERSION + 1;
  memcpy(m.b + off, &c, sizeof c);
  char want[256];
  snprintf(want, sizeof want, NAME ": contract.version: image speaks boot contract version %u, this simulator version %u: rebuild the guest",
           APFSIM_BOOT_VERSION + 1, APFSIM_BOOT_VERSION);
  expect_error(&m, want);
}

static void contract_bad_magic(void **state) {
  (void)state;
  struct img m = copy();
  uint64_t off;
  struct apfsim_contract c = get_contract(&m, &off);
  c.magic = 0x1234;
  memcpy(m.b + off, &c, sizeof c);
  expect_error(&m, NAME ": contract.magic: 0x1234 is not the contract magic");
}

static void contract_page_tables_outside_the_image(void **state) {
  (void)state;
  struct img m = copy();
  uint64_t off;
  struct apfsim_contract c = get_contract(&m, &off);
  c.boot_cr3 = UINT64_C(0x800000);
  memcpy(m.b + off, &c, sizeof c);
  expect_error(&m, NAME ": contract.boot_cr3: [0x800000, +0x1000) is not inside one writable segment of the image");
}

static void contract_page_tables_in_read_only_code(void **state) {
  (void)state;
  struct img m = copy();
  uint64_t off;
  struct apfsim_contract c = get_contract(&m, &off);
  c.boot_cr3 = APFSIM_KERNEL_LINK_GPA;
  memcpy(m.b + off, &c, sizeof c);
  expect_error(&m, NAME ": contract.boot_cr3: [0x100000, +0x1000) is not inside one writable segment of the image");
}

static void contract_boot_stacks_overflow(void **state) {
  (void)state;
  struct img m = copy();
  uint64_t off;
  struct apfsim_contract c = get_contract(&m, &off);
  c.boot_stack_bytes = UINT64_C(0x1000000000000000); /* x 64 vCPUs would wrap around to 0 */
  memcpy(m.b + off, &c, sizeof c);
  char want[256];
  snprintf(want, sizeof want,
           NAME ": contract.boot_stack_bytes: stacks of 0x1000000000000000 bytes at %#" PRIx64 " (need 4 KiB to 1 MiB, 16-byte aligned)",
           c.boot_stacks_gpa);
  expect_error(&m, want);
}

static void contract_boot_stacks_beyond_the_image(void **state) {
  (void)state;
  struct img m = copy();
  uint64_t off;
  struct apfsim_contract c = get_contract(&m, &off);
  c.boot_stack_bytes = UINT64_C(0x100000); /* 64 MiB of stacks: past the bss */
  memcpy(m.b + off, &c, sizeof c);
  char want[256];
  snprintf(want, sizeof want, NAME ": contract.boot_stacks_gpa: [%#" PRIx64 ", +0x4000000) is not inside one writable segment of the image",
           c.boot_stacks_gpa);
  expect_error(&m, want);
}

static void contract_boot_info_overlaps_the_image(void **state) {
  (void)state;
  struct img m = copy();
  Elf64_Phdr p = get_ph(&m, 0);
  /* move the whole text segment down onto the boot info page */
  uint64_t delta = p.p_vaddr - APFSIM_BOOT_INFO_GPA;
  p.p_vaddr -= delta;
  p.p_paddr -= delta;
  put_ph(&m, 0, &p);
  m.eh.e_entry -= delta;
  put_eh(&m);
  char want[256];
  snprintf(want, sizeof want, NAME ": contract.boot_info_gpa: the boot info page overlaps segment [0x1000, %#" PRIx64 ")",
           (uint64_t)(p.p_vaddr + p.p_memsz));
  expect_error(&m, want);
}

static void symbol_name_outside_string_table(void **state) {
  (void)state;
  struct img m = copy();
  unsigned i = section_of_type(&m, SHT_SYMTAB);
  Elf64_Shdr s = get_sh(&m, i);
  /* find the first symbol the loader would keep and give it a wild name offset */
  for (size_t k = 1; k < s.sh_size / sizeof(Elf64_Sym); k++) {
    Elf64_Sym sym;
    memcpy(&sym, m.b + s.sh_offset + k * sizeof sym, sizeof sym);
    if (sym.st_shndx == SHN_UNDEF || sym.st_name == 0 || sym.st_value < APFSIM_KERNEL_LINK_GPA) continue;
    unsigned t = ELF64_ST_TYPE(sym.st_info);
    if (t != STT_FUNC && t != STT_OBJECT && t != STT_NOTYPE) continue;
    sym.st_name = 0xfffffff0;
    memcpy(m.b + s.sh_offset + k * sizeof sym, &sym, sizeof sym);
    char want[256];
    snprintf(want, sizeof want, NAME ": symbol table: symbol %zu has a name outside the string table", k);
    expect_error(&m, want);
    return;
  }
  fail_msg("no symbol to corrupt");
}

static void symbol_table_outside_the_file(void **state) {
  (void)state;
  struct img m = copy();
  unsigned i = section_of_type(&m, SHT_SYMTAB);
  Elf64_Shdr s = get_sh(&m, i);
  s.sh_offset = UINT64_C(0xffffffffffffff00);
  put_sh(&m, i, &s);
  char want[256];
  snprintf(want, sizeof want, NAME ": symbol table: [0xffffffffffffff00, +%#" PRIx64 ") lies outside the file", (uint64_t)s.sh_size);
  expect_error(&m, want);
}

static void missing_file(void **state) {
  (void)state;
  struct diag d = {{0}};
  assert_null(guest_image_open("/nonexistent/kernel.elf", &d));
  assert_string_equal(d.msg, "/nonexistent/kernel.elf: cannot open the guest image: No such file or directory");
}

static void oversized_buffer(void **state) {
  (void)state;
  struct diag d = {{0}};
  assert_null(guest_image_from_buffer(NAME, orig, (size_t)GUEST_IMAGE_MAX_BYTES + 1, &d));
  assert_string_equal(d.msg, NAME ": image of 268435457 bytes is larger than the 256 MiB limit");
}

/* Seeded byte flips in the ELF header, program headers, section headers and the contract:
 * every outcome is accepted or refused with a message, and an accepted image still loads
 * into RAM or refuses with a message. */
static void mutated_headers_never_crash(void **state) {
  (void)state;
  struct img base = copy();
  uint64_t contract_off;
  get_contract(&base, &contract_off);
  const uint64_t regions[][2] = {
      {0, sizeof(Elf64_Ehdr)},
      {base.eh.e_phoff, base.eh.e_phnum * sizeof(Elf64_Phdr)},
      {base.eh.e_shoff, base.eh.e_shnum * sizeof(Elf64_Shdr)},
      {contract_off, sizeof(struct apfsim_contract)},
  };
  uint8_t *ram = new_guest_ram(GUEST_RAM);
  uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64: the sequence is the test */
  unsigned accepted = 0;
  for (int iter = 0; iter < 3000; iter++) {
    uint8_t *b = malloc(base.len);
    memcpy(b, base.b, base.len);
    int flips = 1 + iter % 4;
    for (int f = 0; f < flips; f++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const uint64_t *r = regions[x % 4];
      b[r[0] + (x >> 8) % r[1]] ^= (uint8_t)(1u << ((x >> 40) % 8));
    }
    size_t len = base.len;
    if (iter % 7 == 0) len = (size_t)((x >> 20) % base.len); /* and truncations */
    struct diag d = {{0}};
    struct guest_image *g = guest_image_from_buffer(NAME, b, len, &d);
    if (g) {
      accepted++;
      if (!guest_image_load(g, ram, GUEST_RAM, &d)) assert_true(strlen(d.msg) > 0);
      char sym[64];
      guest_image_symbolize(g, g->entry, sym, sizeof sym);
      guest_image_free(g);
    } else {
      assert_true(strncmp(d.msg, NAME ": ", strlen(NAME ": ")) == 0);
    }
    free(b);
  }
  assert_true(accepted > 0); /* flips of unused bits leave a valid image */
  free(ram);
  free(base.b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_unmodified_image_loads),
      cmocka_unit_test(empty_file),
      cmocka_unit_test(truncated_inside_the_elf_header),
      cmocka_unit_test(truncated_before_the_section_headers),
      cmocka_unit_test(truncated_inside_a_segment),
      cmocka_unit_test(bad_magic),
      cmocka_unit_test(elf32_class),
      cmocka_unit_test(big_endian),
      cmocka_unit_test(wrong_machine),
      cmocka_unit_test(position_independent_executable),
      cmocka_unit_test(huge_program_header_offset),
      cmocka_unit_test(wrong_program_header_size),
      cmocka_unit_test(section_name_index_out_of_range),
      cmocka_unit_test(huge_segment_offset),
      cmocka_unit_test(file_size_above_memory_size),
      cmocka_unit_test(segment_not_identity_placed),
      cmocka_unit_test(segment_outside_guest_address_space),
      cmocka_unit_test(overlapping_segments),
      cmocka_unit_test(dynamically_linked),
      cmocka_unit_test(no_loadable_segment),
      cmocka_unit_test(entry_outside_code),
      cmocka_unit_test(contract_section_missing),
      cmocka_unit_test(contract_section_wrong_size),
      cmocka_unit_test(contract_wrong_version),
      cmocka_unit_test(contract_bad_magic),
      cmocka_unit_test(contract_page_tables_outside_the_image),
      cmocka_unit_test(contract_page_tables_in_read_only_code),
      cmocka_unit_test(contract_boot_stacks_overflow),
      cmocka_unit_test(contract_boot_stacks_beyond_the_image),
      cmocka_unit_test(contract_boot_info_overlaps_the_image),
      cmocka_unit_test(symbol_name_outside_string_table),
      cmocka_unit_test(symbol_table_outside_the_file),
      cmocka_unit_test(missing_file),
      cmocka_unit_test(oversized_buffer),
      cmocka_unit_test(mutated_headers_never_crash),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
