/* fuzz_elf.c — libFuzzer harness: the guest ELF loader (sim/loader:
 * guest_image_from_buffer, then for an accepted image everything a run does
 * with it: guest_image_load, symbols, guest_boot_info_write, entry state and
 * the statistics reads).
 *
 * The input is the image's bytes. Seeds are small hand-made images
 * (gen_elf_seeds.py) that pass every check, so mutations reach the contract
 * and the symbol table instead of dying at the ELF header.
 *
 * Oracles besides the sanitizers:
 *  - a rejected image gives a one-line message;
 *  - an accepted image fits the 16 MiB boot map (its contract says so), so
 *    guest_image_load into 16 MiB must succeed; its segments are sorted and
 *    disjoint; every symbol lies in a segment; symbol_at/symbolize/resolve
 *    agree with each other; the file read through guest_image_open (memfd)
 *    gives the same hash.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "loader/boot_info.h"
#include "loader/elf_loader.h"

#define RAM APFSIM_BOOT_MAP_BYTES

/* Guest RAM, allocated once: 16 MiB per input would dominate the run time. */
static uint8_t *ram;

static void check_symbols(const struct guest_image *img) {
  char buf[64];
  for (size_t i = 0; i < img->n_symbols; i++) {
    const struct guest_symbol *s = &img->symbols[i];
    if (i && s->addr < img->symbols[i - 1].addr) fuzz_fail("elf", "symbols not sorted");
    uint64_t off = UINT64_MAX;
    const struct guest_symbol *at = guest_image_symbol_at(img, s->addr, &off);
    if (!at || at->addr != s->addr || off != 0) fuzz_fail("elf", "symbol_at(%s) misses its own address", s->name);
    guest_image_symbolize(img, s->addr + 1, buf, sizeof buf);
    /* Only the first few: resolving is linear in the symbols. */
    if (i < 8) {
      uint64_t addr, lookup_addr, size;
      struct diag err;
      /* A name that starts with a digit or holds '+' reads as an address or
       * an offset; any other resolves exactly when lookup finds it once. */
      bool plain = !(s->name[0] >= '0' && s->name[0] <= '9') && !strchr(s->name, '+') && strlen(s->name) < 256;
      bool resolved = guest_image_resolve(img, s->name, &addr, &err);
      if (!resolved) fuzz_check_message("elf", &err);
      if (plain) {
        bool unique = guest_image_lookup(img, s->name, &lookup_addr, &size);
        if (resolved != unique || (resolved && (addr != s->addr || lookup_addr != s->addr)))
          fuzz_fail("elf", "resolve and lookup disagree on %s", s->name);
      }
      char expr[300];
      snprintf(expr, sizeof expr, "%s+0x10", s->name);
      if (!guest_image_resolve(img, expr, &addr, &err)) fuzz_check_message("elf", &err);
    }
  }
  uint64_t addr;
  struct diag err;
  char expr[32];
  snprintf(expr, sizeof expr, "%#" PRIx64, img->entry);
  if (!guest_image_resolve(img, expr, &addr, &err) || addr != img->entry) fuzz_fail("elf", "entry does not resolve");
  if (guest_image_resolve(img, "+", &addr, &err)) fuzz_fail("elf", "'+' resolved");
  fuzz_check_message("elf", &err);
}

static void check_boot(const struct guest_image *img) {
  struct diag err;
  if (!guest_image_load(img, ram, RAM, &err)) fuzz_fail("elf", "accepted image does not load: %s", err.msg);
  struct sim_config *cfg = config_new();
  if (!cfg) fuzz_fail("elf", "out of memory");
  cfg->machine.guest_memory_bytes = RAM;
  cfg->machine.vcpus = 1;
  struct apfsim_boot_info bi;
  if (!guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &err))
    fuzz_fail("elf", "default boot info: %s", err.msg);
  struct apfsim_guest_layout layout;
  if (!guest_boot_info_write(img, &bi, ram, RAM, &layout, &err)) fuzz_check_message("elf", &err);
  unsigned n = img->contract.max_vcpus < 4 ? img->contract.max_vcpus : 4;
  for (unsigned v = 0; v <= n; v++) {
    struct guest_entry_state st;
    if (!guest_entry_state(img, v, n, &st, &err)) fuzz_check_message("elf", &err);
  }
  struct apfsim_proc_stats ps;
  struct apfsim_vcpu_stats vs;
  unsigned last_proc = img->contract.max_processes - 1, last_vcpu = img->contract.max_vcpus - 1;
  if (!guest_read_proc_stats(img, ram, RAM, last_proc, &ps, &err)) fuzz_fail("elf", "%s", err.msg);
  if (guest_read_proc_stats(img, ram, RAM, last_proc + 1, &ps, &err)) fuzz_fail("elf", "read past the stats");
  if (!guest_read_vcpu_stats(img, ram, RAM, last_vcpu, &vs, &err)) fuzz_fail("elf", "%s", err.msg);
  if (guest_read_vcpu_stats(img, ram, RAM, last_vcpu + 1, &vs, &err)) fuzz_fail("elf", "read past the stats");
  struct apfsim_panic_record pr;
  if (guest_read_panic_record(ram, RAM, img->entry, &pr, &err)) pr.message[0] = '\0';
  free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ram && !(ram = malloc(RAM))) fuzz_fail("elf", "out of memory");
  struct diag err;
  struct guest_image *img = guest_image_from_buffer("fuzz.elf", data, size, &err);
  if (!img) {
    fuzz_check_message("elf", &err);
    return 0;
  }
  fuzz_note("elf", "accepted: %u segments, %zu symbols", img->n_segments, img->n_symbols);
  for (unsigned i = 0; i < img->n_segments; i++) {
    const struct guest_segment *s = &img->segments[i];
    if (s->file_bytes > s->mem_bytes || s->file_offset > size || s->file_bytes > size - s->file_offset)
      fuzz_fail("elf", "segment %u outside the file", i);
    if (i && img->segments[i - 1].gpa + img->segments[i - 1].mem_bytes > s->gpa)
      fuzz_fail("elf", "segments %u and %u overlap", i - 1, i);
  }
  if (img->highest_gpa > RAM) fuzz_fail("elf", "accepted an image beyond the boot map");
  uint64_t ranges[4][2];
  size_t nr = guest_image_text_ranges(img, ranges, 4);
  if (nr == 0) fuzz_fail("elf", "no text range");
  check_symbols(img);
  check_boot(img);

  char path[64];
  int fd = fuzz_file(data, size, path);
  struct guest_image *again = guest_image_open(path, &err);
  fuzz_file_close(fd);
  if (!again || strcmp(again->sha256_hex, img->sha256_hex) != 0)
    fuzz_fail("elf", "the same bytes from a file load differently: %s", again ? "hash" : err.msg);
  guest_image_free(again);
  guest_image_free(img);
  return 0;
}
