/* test_loader_image.c — the real guest kernel through the loader: entry point, segments,
 * the contract section against the image's own symbols, symbolization and symbol+offset
 * resolution, loading into guest RAM, the boot tables the contract points at, the entry
 * state of each vCPU, the SHA-256, and the shape of the #PF entry the race depends on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "helpers.h"
#include "loader/boot_info.h"
#include "loader/elf_loader.h"

#define KERNEL_CS_EXPECTED 0x08 /* guest/kernel/kernel.h: KERNEL_CS */

static struct guest_image *img;

static int setup(void **state) {
  (void)state;
  struct diag d = {{0}};
  img = guest_image_open(APFSIM_GUEST_KERNEL, &d);
  if (!img) fprintf(stderr, "%s\n", d.msg);
  return img ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  guest_image_free(img);
  return 0;
}

static uint64_t sym(const char *name) {
  uint64_t a = 0;
  if (!guest_image_lookup(img, name, &a, NULL)) fail_msg("symbol %s missing or ambiguous", name);
  return a;
}

static void entry_is_kernel_entry_at_the_link_address(void **state) {
  (void)state;
  assert_int_equal(img->entry, sym("kernel_entry"));
  assert_int_equal(img->entry, APFSIM_KERNEL_LINK_GPA);
  assert_int_equal(img->contract.image_start, APFSIM_KERNEL_LINK_GPA);
}

static void segments_are_identity_ordered_and_typed(void **state) {
  (void)state;
  assert_true(img->n_segments >= 4);
  const struct guest_segment *text = &img->segments[0];
  assert_int_equal(text->gpa, APFSIM_KERNEL_LINK_GPA);
  assert_true(text->exec && !text->write);
  bool have_bss = false;
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    assert_false(s->exec && s->write); /* W^X: no writable code */
    if (i) assert_true(img->segments[i - 1].gpa + img->segments[i - 1].mem_bytes <= s->gpa);
    if (s->mem_bytes > s->file_bytes) have_bss = true;
  }
  assert_true(have_bss);
  assert_true(img->highest_gpa <= APFSIM_BOOT_MAP_BYTES);
}

static void contract_points_at_the_images_own_symbols(void **state) {
  (void)state;
  const struct apfsim_contract *c = &img->contract;
  assert_int_equal(c->version, APFSIM_BOOT_VERSION);
  assert_int_equal(c->boot_cr3, sym("boot_pml4"));
  assert_int_equal(c->boot_gdt_gpa, sym("boot_gdt"));
  assert_int_equal(c->boot_gdt_limit, sym("boot_gdt_end") - sym("boot_gdt") - 1);
  assert_int_equal(c->boot_stacks_gpa, sym("boot_stacks"));
  assert_int_equal(c->proc_stats_gpa, sym("apfsim_proc_stats"));
  assert_int_equal(c->vcpu_stats_gpa, sym("apfsim_vcpu_stats"));
  assert_int_equal(c->user_text_start, sym("_user_start"));
  assert_int_equal(c->user_text_start % APFSIM_LARGE_PAGE_SIZE, 0);
  assert_int_equal(c->max_vcpus, APFSIM_MAX_VCPUS);
  assert_int_equal(c->max_processes, APFSIM_MAX_PROCESSES);
  assert_int_equal(c->cr0, APFSIM_ENTRY_CR0);
  assert_int_equal(c->efer, APFSIM_ENTRY_EFER);
  uint64_t contract_addr = sym("apfsim_contract");
  assert_true(contract_addr >= img->segments[0].gpa && contract_addr < img->highest_gpa);
}

static void symbols_name_the_kernel_and_the_user_code(void **state) {
  (void)state;
  char buf[128];
  uint64_t pf = sym("exc_page_fault");
  guest_image_symbolize(img, pf, buf, sizeof buf);
  assert_string_equal(buf, "exc_page_fault");
  guest_image_symbolize(img, pf + 0x1c, buf, sizeof buf);
  assert_string_equal(buf, "exc_page_fault+0x1c");
  /* asm labels inside a function are the more precise answer */
  guest_image_symbolize(img, sym("nmi_exit_window") + 2, buf, sizeof buf);
  assert_string_equal(buf, "nmi_exit_window+0x2");
  /* at an address with several names, the function wins over linker markers */
  guest_image_symbolize(img, APFSIM_KERNEL_LINK_GPA, buf, sizeof buf);
  assert_string_equal(buf, "kernel_entry");
  guest_image_symbolize(img, img->contract.user_text_start, buf, sizeof buf);
  assert_string_equal(buf, "_user_start");
  guest_image_symbolize(img, sym("user_main") + 3, buf, sizeof buf);
  assert_string_equal(buf, "user_main+0x3");
  /* outside the image: a bare address */
  guest_image_symbolize(img, 0x20000000, buf, sizeof buf);
  assert_string_equal(buf, "0x20000000");
}

static void resolve_accepts_symbol_offset_and_addresses(void **state) {
  (void)state;
  struct diag d = {{0}};
  uint64_t a = 0;
  assert_true(guest_image_resolve(img, "asm_exc_page_fault+0x19", &a, &d));
  assert_int_equal(a, sym("asm_exc_page_fault") + 0x19);
  assert_true(guest_image_resolve(img, "exc_nmi+16", &a, &d));
  assert_int_equal(a, sym("exc_nmi") + 16);
  assert_true(guest_image_resolve(img, "kernel_entry", &a, &d));
  assert_int_equal(a, APFSIM_KERNEL_LINK_GPA);
  assert_true(guest_image_resolve(img, "0x100000", &a, &d));
  assert_int_equal(a, APFSIM_KERNEL_LINK_GPA);

  char expected[DIAG_MAX];
  assert_false(guest_image_resolve(img, "no_such_function", &a, &d));
  snprintf(expected, sizeof expected, "%s: symbol: unknown guest symbol 'no_such_function'", APFSIM_GUEST_KERNEL);
  assert_string_equal(d.msg, expected);
  /* kernel and user code each have their own memset */
  assert_false(guest_image_resolve(img, "memset", &a, &d));
  assert_non_null(strstr(d.msg, "guest symbol 'memset' is ambiguous (2 definitions"));
  assert_false(guest_image_resolve(img, "exc_nmi+zz", &a, &d));
  assert_non_null(strstr(d.msg, "offset 'zz' is not a number"));
  assert_false(guest_image_resolve(img, "kernel_entry+0x40000000", &a, &d));
  assert_non_null(strstr(d.msg, "is outside the image"));
  assert_false(guest_image_resolve(img, "+4", &a, &d));
}

static void sha256_is_the_files_digest(void **state) {
  (void)state;
  size_t len = 0;
  uint8_t *bytes = read_kernel(&len);
  assert_non_null(bytes);
  uint8_t md[32];
  unsigned int md_len = 0;
  assert_true(EVP_Digest(bytes, len, md, &md_len, EVP_sha256(), NULL));
  assert_memory_equal(md, img->sha256, 32);
  char hex[65];
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  assert_string_equal(hex, img->sha256_hex);
  free(bytes);
}

static void load_copies_segments_and_zeroes_bss(void **state) {
  (void)state;
  struct diag d = {{0}};
  uint8_t *mem = new_guest_ram(GUEST_RAM);
  memset(mem, 0xAA, GUEST_RAM);
  assert_true(guest_image_load(img, mem, GUEST_RAM, &d));
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    assert_memory_equal(mem + s->gpa, img->data + s->file_offset, s->file_bytes);
    for (uint64_t b = s->file_bytes; b < s->mem_bytes; b += 61) assert_int_equal(mem[s->gpa + b], 0);
  }
  /* outside the segments nothing was written (the boot info page in particular) */
  assert_int_equal(mem[APFSIM_BOOT_INFO_GPA], 0xAA);
  assert_int_equal(mem[img->highest_gpa], 0xAA);

  /* the boot page tables the contract names: identity 2 MiB pages over the boot map */
  uint64_t pml4, pdpt, pde;
  memcpy(&pml4, mem + img->contract.boot_cr3, 8);
  assert_int_equal(pml4 & 0x7, 0x3);
  memcpy(&pdpt, mem + (pml4 & ~UINT64_C(0xfff)), 8);
  for (uint64_t i = 0; i < APFSIM_BOOT_MAP_BYTES / APFSIM_LARGE_PAGE_SIZE; i++) {
    memcpy(&pde, mem + (pdpt & ~UINT64_C(0xfff)) + 8 * i, 8);
    assert_int_equal(pde, i * APFSIM_LARGE_PAGE_SIZE | 0x83);
  }
  /* the boot GDT: null, 64-bit code at boot_cs, data at boot_ds */
  uint64_t code, data;
  memcpy(&code, mem + img->contract.boot_gdt_gpa + img->contract.boot_cs, 8);
  memcpy(&data, mem + img->contract.boot_gdt_gpa + img->contract.boot_ds, 8);
  assert_true(code & (UINT64_C(1) << 53)); /* L */
  assert_true(code & (UINT64_C(1) << 47)); /* P */
  assert_int_equal((code >> 45) & 3, 0);   /* DPL 0 */
  assert_int_equal((data >> 41) & 1, 1);   /* writable */
  free(mem);
}

static void load_refuses_ram_smaller_than_the_image(void **state) {
  (void)state;
  struct diag d = {{0}};
  uint8_t *mem = new_guest_ram(UINT64_C(2) << 20);
  memset(mem, 0x55, UINT64_C(2) << 20);
  assert_false(guest_image_load(img, mem, UINT64_C(2) << 20, &d));
  assert_non_null(strstr(d.msg, "machine/guest-memory: segment ["));
  assert_non_null(strstr(d.msg, ") does not fit in 2 MiB of guest RAM"));
  assert_int_equal(mem[APFSIM_KERNEL_LINK_GPA], 0x55); /* nothing half-written */
  free(mem);
}

static void entry_state_follows_the_contract(void **state) {
  (void)state;
  struct diag d = {{0}};
  struct guest_entry_state st;
  for (unsigned v = 0; v < 4; v++) {
    assert_true(guest_entry_state(img, v, 4, &st, &d));
    assert_int_equal(st.rip, img->entry);
    assert_int_equal(st.rsp, img->contract.boot_stacks_gpa + (v + 1) * img->contract.boot_stack_bytes);
    assert_int_equal(st.rsp % 16, 0);
    assert_int_equal(st.rdi, v);
    assert_int_equal(st.rsi, APFSIM_BOOT_INFO_GPA);
    assert_int_equal(st.rflags, 0x2);
    assert_int_equal(st.cr3, img->contract.boot_cr3);
    assert_int_equal(st.cr0, APFSIM_ENTRY_CR0);
    assert_int_equal(st.cr4, APFSIM_ENTRY_CR4);
    assert_int_equal(st.efer, APFSIM_ENTRY_EFER);
    assert_int_equal(st.cs, KERNEL_CS_EXPECTED);
    assert_int_equal(st.ss, 0x10);
    assert_int_equal(st.idt_limit, 0);
    assert_int_equal(st.x2apic_id, v);
    assert_int_equal(st.apic_base & (UINT64_C(1) << 8), v == 0 ? (UINT64_C(1) << 8) : 0);
    assert_int_equal(st.apic_base & 0xc00, 0xc00); /* EN | EXTD: x2APIC mode */
  }
  assert_false(guest_entry_state(img, 4, 4, &st, &d));
  assert_false(guest_entry_state(img, 0, APFSIM_MAX_VCPUS + 1, &st, &d));
}

/* DESIGN.md §2 "The race": in the 5.3+ entry the window ends at the `mov %cr2` that
 * follows the register saves — 1 push of the vector, 15 of registers, then CR2. */
static void cr2_first_entry_reads_cr2_after_saving_registers(void **state) {
  (void)state;
  uint64_t entry = sym("asm_exc_page_fault");
  const struct guest_segment *text = &img->segments[0];
  const uint8_t *code = img->data + text->file_offset + (entry - text->gpa);
  /* push $14; push rdi rsi rdx rcx rax; push r8 r9 r10 r11; push rbx rbp; push r12..r15 */
  static const uint8_t pushes[] = {0x6a, 0x0e, 0x57, 0x56, 0x52, 0x51, 0x50, 0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53,
                                   0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57};
  assert_memory_equal(code, pushes, sizeof pushes);
  static const uint8_t mov_cr2_rdx[] = {0x0f, 0x20, 0xd2};
  assert_memory_equal(code + sizeof pushes, mov_cr2_rdx, sizeof mov_cr2_rdx);
  /* the reason-first entry never reads CR2 itself: its C handler does, after the reason */
  uint64_t rf = sym("asm_exc_page_fault_reason_first");
  const uint8_t *rcode = img->data + text->file_offset + (rf - text->gpa);
  assert_memory_not_equal(rcode + sizeof pushes, mov_cr2_rdx, sizeof mov_cr2_rdx);
}

static void text_ranges_are_the_executable_segments(void **state) {
  (void)state;
  uint64_t r[8][2];
  size_t n = guest_image_text_ranges(img, r, 8);
  assert_int_equal(n, 2); /* kernel text, user text */
  assert_int_equal(r[0][0], APFSIM_KERNEL_LINK_GPA);
  assert_int_equal(r[1][0], img->contract.user_text_start);
  assert_true(r[1][1] <= img->contract.user_text_end);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(entry_is_kernel_entry_at_the_link_address),
      cmocka_unit_test(segments_are_identity_ordered_and_typed),
      cmocka_unit_test(contract_points_at_the_images_own_symbols),
      cmocka_unit_test(symbols_name_the_kernel_and_the_user_code),
      cmocka_unit_test(resolve_accepts_symbol_offset_and_addresses),
      cmocka_unit_test(sha256_is_the_files_digest),
      cmocka_unit_test(load_copies_segments_and_zeroes_bss),
      cmocka_unit_test(load_refuses_ram_smaller_than_the_image),
      cmocka_unit_test(entry_state_follows_the_contract),
      cmocka_unit_test(cr2_first_entry_reads_cr2_after_saving_registers),
      cmocka_unit_test(text_ranges_are_the_executable_segments),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
