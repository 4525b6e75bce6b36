/* boot_info.c — configuration -> boot info, entry state, guest reports (see boot_info.h).
 *
 * The mapping from configuration enums to boot-info values is written out case by case:
 * the boot info is an ABI with its own numbers (apfsim_boot.h), and must not change when
 * someone reorders an enum in config.h.
 */
#include "loader/boot_info.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool fail(struct diag *err, const struct sim_config *cfg, const char *field, const char *what) {
  return diag_at(err, cfg->source_path[0] ? cfg->source_path : "<config>", 0, field, "%s", what);
}

static bool kernel_vector(uint32_t v) {
  return v == APFSIM_VEC_SYSCALL || v == APFSIM_VEC_TIMER || v == APFSIM_VEC_RESCHEDULE || v == APFSIM_VEC_SPURIOUS;
}

static bool map_class(const struct sim_config *cfg, unsigned i, struct apfsim_workload_class *c, struct diag *err) {
  const struct process_config *p = &cfg->workload.processes[i];
  char field[64];
  snprintf(field, sizeof field, "workload/process[%u]/@kind", i + 1);
  switch (p->kind) {
  case WORKLOAD_COMPUTE: c->kind = APFSIM_WORK_COMPUTE; break;
  case WORKLOAD_MEMORY: c->kind = APFSIM_WORK_MEMORY; break;
  case WORKLOAD_MIXED: c->kind = APFSIM_WORK_MIXED; break;
  case WORKLOAD_DAX_READ: c->kind = APFSIM_WORK_DAX_READ; break;
  case WORKLOAD_DAX_COPY: c->kind = APFSIM_WORK_DAX_COPY; break;
  default:
    return fail(err, cfg, field, "unknown workload kind");
  }
  snprintf(field, sizeof field, "workload/process[%u]/pattern", i + 1);
  switch (p->pattern) {
  case ACCESS_SEQUENTIAL: c->pattern = APFSIM_ACCESS_SEQUENTIAL; break;
  case ACCESS_RANDOM: c->pattern = APFSIM_ACCESS_RANDOM; break;
  case ACCESS_ZIPF: c->pattern = APFSIM_ACCESS_ZIPF; break;
  default: return fail(err, cfg, field, "unknown access pattern");
  }
  if (apfsim_kind_uses_dax(c->kind) && c->pattern == APFSIM_ACCESS_ZIPF)
    return fail(err, cfg, field, "DAX workloads read sequential or random lines, not zipf");
  if (apfsim_kind_uses_dax(c->kind) && !cfg->dax.enabled) {
    snprintf(field, sizeof field, "workload/process[%u]/@kind", i + 1);
    return fail(err, cfg, field, "a DAX workload needs the DAX window (dax/@enabled)");
  }
  c->count = p->count;
  c->compute_per_op = p->compute_per_op;
  c->working_set_bytes = apfsim_kind_uses_ws(c->kind) ? p->working_set_bytes : 0;
  c->ops = p->ops;
  c->zipf_s_milli = p->zipf_s_milli;
  if (apfsim_kind_uses_ws(c->kind) && (c->working_set_bytes < APFSIM_PAGE_SIZE || c->working_set_bytes % APFSIM_PAGE_SIZE)) {
    snprintf(field, sizeof field, "workload/process[%u]/working-set", i + 1);
    return fail(err, cfg, field, "a memory workload needs a working set of whole 4 KiB pages, at least one");
  }
  return true;
}

bool guest_boot_info_from_config(const struct sim_config *cfg, uint64_t apic_timer_khz, struct apfsim_boot_info *bi,
                                 struct diag *err) {
  memset(bi, 0, sizeof *bi);
  bi->magic = APFSIM_BOOT_MAGIC;
  bi->version = APFSIM_BOOT_VERSION;
  bi->size = sizeof *bi;

  if (cfg->machine.vcpus < 1 || cfg->machine.vcpus > APFSIM_MAX_VCPUS)
    return fail(err, cfg, "machine/vcpus", "the guest kernel supports 1 to 64 vCPUs");
  bi->n_vcpus = cfg->machine.vcpus;
  uint64_t ram = cfg->machine.guest_memory_bytes;
  if (ram < APFSIM_MIN_RAM_BYTES || ram % APFSIM_LARGE_PAGE_SIZE)
    return fail(err, cfg, "machine/guest-memory", "the guest kernel needs at least 16 MiB, in whole 2 MiB");
  bi->ram_bytes = ram;
  if (cfg->costs.cpu_mhz == 0) return fail(err, cfg, "costs/cpu-frequency", "must be non-zero (it is the TSC rate)");
  bi->tsc_khz = (uint64_t)cfg->costs.cpu_mhz * 1000;
  if (apic_timer_khz == 0) return diag_set(err, "the APIC timer rate passed to guest_boot_info_from_config is 0");
  bi->apic_timer_khz = apic_timer_khz;
  bi->timer_period_ns = cfg->guest.timer_period_ns;
  if (bi->timer_period_ns == 0) return fail(err, cfg, "guest/timer-period", "must be non-zero");
  bi->hung_task_timeout_ns = cfg->guest.hung_task_timeout_ns;
  bi->seed = cfg->seed;

  switch (cfg->apf.protocol) {
  case APF_OFF: bi->apf_protocol = APFSIM_APF_OFF; break;
  case APF_HALT: bi->apf_protocol = APFSIM_APF_HALT; break;
  case APF_2010: bi->apf_protocol = APFSIM_APF_2010; break;
  case APF_2020: bi->apf_protocol = APFSIM_APF_2020; break;
  default: return fail(err, cfg, "apf/protocol", "unknown protocol");
  }
  switch (cfg->guest.pf_entry_order) {
  case PF_ENTRY_CR2_FIRST: bi->pf_entry_order = APFSIM_PF_CR2_FIRST; break;
  case PF_ENTRY_REASON_FIRST: bi->pf_entry_order = APFSIM_PF_REASON_FIRST; break;
  default: return fail(err, cfg, "guest/pf-entry-order", "unknown entry order");
  }
  switch (cfg->guest.nmi_cr2) {
  case NMI_CR2_NONE: bi->nmi_cr2_policy = APFSIM_NMI_CR2_NONE; break;
  case NMI_CR2_SAVE_RESTORE: bi->nmi_cr2_policy = APFSIM_NMI_CR2_SAVE_RESTORE; break;
  case NMI_CR2_STASH_REASON: bi->nmi_cr2_policy = APFSIM_NMI_CR2_STASH_REASON; break;
  default: return fail(err, cfg, "guest/nmi-cr2", "unknown policy");
  }
  switch (cfg->guest.not_present_delivery) {
  case NOT_PRESENT_PF: bi->not_present_delivery = APFSIM_NP_PF; break;
  case NOT_PRESENT_VE:
    if (bi->apf_protocol != APFSIM_APF_2020)
      return fail(err, cfg, "guest/not-present-delivery", "#VE delivery of not-present events needs apf/protocol 2020");
    bi->not_present_delivery = APFSIM_NP_VE;
    break;
  default: return fail(err, cfg, "guest/not-present-delivery", "unknown delivery");
  }
  if (cfg->guest.nmi_reads_user_stack) bi->flags |= APFSIM_BOOT_F_NMI_READS_USER_STACK;
  if (cfg->apf.send_always) bi->flags |= APFSIM_BOOT_F_APF_SEND_ALWAYS;
  switch (cfg->apf.error_reporting) {
  case APF_ERR_NONE:
  case APF_ERR_FORCE_SYNC: break; /* host-side only */
  case APF_ERR_PAGE_READY:
    if (bi->apf_protocol != APFSIM_APF_2020)
      return fail(err, cfg, "apf/error-reporting", "page-ready error reporting is an extension of apf/protocol 2020");
    bi->flags |= APFSIM_BOOT_F_APF_PAGE_ERROR;
    break;
  case APF_ERR_SYNC_EXCEPTION: bi->flags |= APFSIM_BOOT_F_VE_PAGE_ERROR; break;
  default: return fail(err, cfg, "apf/error-reporting", "unknown error reporting");
  }
  bi->page_ready_vector = cfg->apf.page_ready_vector;
  if (bi->page_ready_vector < 32 || kernel_vector(bi->page_ready_vector))
    return fail(err, cfg, "apf/page-ready-vector",
                "the guest kernel uses 0x80 (int 0x80), 0xec (timer), 0xfd (reschedule) and 0xff (spurious) itself");
  if (cfg->dax.enabled) {
    bi->dax_gpa = cfg->dax.window_gpa;
    bi->dax_bytes = cfg->dax.window_bytes;
    if ((bi->dax_gpa | bi->dax_bytes) % APFSIM_PAGE_SIZE || bi->dax_bytes == 0)
      return fail(err, cfg, "dax/window-gpa", "the DAX window must be a non-empty range of whole 4 KiB pages");
    if (bi->dax_gpa < bi->ram_bytes) return fail(err, cfg, "dax/window-gpa", "the DAX window must lie above guest RAM");
    if (bi->dax_gpa >= UINT64_C(1) << 47 || bi->dax_bytes > (UINT64_C(1) << 47) - bi->dax_gpa)
      return fail(err, cfg, "dax/window-gpa", "the DAX window must end below 2^47");
  }

  if (cfg->workload.n_processes > APFSIM_MAX_WORKLOAD_CLASSES)
    return fail(err, cfg, "workload/process", "more than 64 process classes");
  bi->n_classes = cfg->workload.n_processes;
  uint64_t total = 0;
  for (unsigned i = 0; i < bi->n_classes; i++) {
    if (!map_class(cfg, i, &bi->classes[i], err)) return false;
    total += bi->classes[i].count;
  }
  if (total > APFSIM_MAX_PROCESSES) return fail(err, cfg, "workload/process", "more than 256 processes in total");
  return true;
}

bool guest_boot_layout_check(const struct guest_image *img, const struct sim_config *cfg,
                             const struct apfsim_boot_info *bi, struct diag *err) {
  struct apfsim_guest_layout l;
  const char *file = cfg->source_path[0] ? cfg->source_path : "<config>";
  const char *why = apfsim_guest_layout(bi, img->contract.image_end, &l);
  if (!why) return true;
  if (l.user_end > bi->ram_bytes && strstr(why, "does not fit"))
    return diag_at(err, file, 0, "machine/guest-memory",
                   "%s: the kernel and %" PRIu64 " processes need %" PRIu64 " MiB, the machine has %" PRIu64 " MiB", why,
                   l.n_processes, (l.user_end + (1u << 20) - 1) >> 20, bi->ram_bytes >> 20);
  return diag_at(err, file, 0, "workload", "%s", why);
}

bool guest_boot_info_write(const struct guest_image *img, const struct apfsim_boot_info *bi, uint8_t *mem,
                           uint64_t mem_bytes, struct apfsim_guest_layout *layout, struct diag *err) {
  struct apfsim_guest_layout l;
  const struct apfsim_contract *c = &img->contract;
  if (bi->ram_bytes != mem_bytes)
    return diag_at(err, img->name, 0, "machine/guest-memory", "boot info says %" PRIu64 " bytes of RAM, the buffer has %" PRIu64,
                   bi->ram_bytes, mem_bytes);
  if (bi->n_vcpus > c->max_vcpus)
    return diag_at(err, img->name, 0, "machine/vcpus", "%u vCPUs, the image has room for %u", bi->n_vcpus, c->max_vcpus);
  if (c->image_end > mem_bytes)
    return diag_at(err, img->name, 0, "machine/guest-memory", "the image ends at %#" PRIx64 ", beyond guest RAM", c->image_end);
  const char *why = apfsim_guest_layout(bi, c->image_end, &l);
  if (why) {
    if (l.user_end > bi->ram_bytes && strstr(why, "does not fit"))
      return diag_at(err, img->name, 0, "machine/guest-memory",
                     "%s: the kernel and %" PRIu64 " processes need %" PRIu64 " MiB, the machine has %" PRIu64 " MiB", why,
                     l.n_processes, (l.user_end + (1u << 20) - 1) >> 20, bi->ram_bytes >> 20);
    return diag_at(err, img->name, 0, "workload", "%s", why);
  }
  memset(mem + c->boot_info_gpa, 0, c->boot_info_bytes);
  memcpy(mem + c->boot_info_gpa, bi, sizeof *bi);
  if (layout) *layout = l;
  return true;
}

bool guest_entry_state(const struct guest_image *img, unsigned vcpu, unsigned n_vcpus, struct guest_entry_state *st,
                       struct diag *err) {
  const struct apfsim_contract *c = &img->contract;
  if (n_vcpus > c->max_vcpus || vcpu >= n_vcpus)
    return diag_at(err, img->name, 0, "machine/vcpus", "vCPU %u of %u: the image has boot stacks for %u", vcpu, n_vcpus,
                   c->max_vcpus);
  memset(st, 0, sizeof *st);
  st->rip = img->entry;
  st->rsp = c->boot_stacks_gpa + ((uint64_t)vcpu + 1) * c->boot_stack_bytes;
  st->rflags = 0x2; /* IF = 0; bit 1 is reserved, always 1 */
  st->rdi = vcpu;
  st->rsi = c->boot_info_gpa;
  st->cr0 = c->cr0;
  st->cr3 = c->boot_cr3;
  st->cr4 = c->cr4;
  st->efer = c->efer;
  st->gdt_base = c->boot_gdt_gpa;
  st->gdt_limit = c->boot_gdt_limit;
  st->cs = c->boot_cs;
  st->ss = st->ds = st->es = c->boot_ds;
  st->apic_base = GUEST_APIC_BASE_ENTRY | (vcpu == 0 ? GUEST_APIC_BASE_BSP : 0);
  st->x2apic_id = vcpu;
  return true;
}

static bool read_guest(const uint8_t *mem, uint64_t mem_bytes, uint64_t gpa, void *out, uint64_t bytes, const char *what,
                       struct diag *err) {
  if (gpa > mem_bytes || bytes > mem_bytes - gpa)
    return diag_set(err, "guest %s at %#" PRIx64 " lies outside guest RAM", what, gpa);
  memcpy(out, mem + gpa, bytes);
  return true;
}

bool guest_read_panic_record(const uint8_t *mem, uint64_t mem_bytes, uint64_t gpa, struct apfsim_panic_record *out,
                             struct diag *err) {
  if (!read_guest(mem, mem_bytes, gpa, out, sizeof *out, "panic record", err)) return false;
  if (out->magic != APFSIM_PANIC_MAGIC)
    return diag_set(err, "guest panic record at %#" PRIx64 " has a bad magic %#" PRIx64, gpa, out->magic);
  out->message[sizeof out->message - 1] = '\0';
  return true;
}

bool guest_read_proc_stats(const struct guest_image *img, const uint8_t *mem, uint64_t mem_bytes, unsigned index,
                           struct apfsim_proc_stats *out, struct diag *err) {
  if (index >= img->contract.max_processes)
    return diag_set(err, "process index %u beyond the guest's %u", index, img->contract.max_processes);
  return read_guest(mem, mem_bytes, img->contract.proc_stats_gpa + (uint64_t)index * sizeof *out, out, sizeof *out,
                    "process statistics", err);
}

bool guest_read_vcpu_stats(const struct guest_image *img, const uint8_t *mem, uint64_t mem_bytes, unsigned vcpu,
                           struct apfsim_vcpu_stats *out, struct diag *err) {
  if (vcpu >= img->contract.max_vcpus) return diag_set(err, "vCPU %u beyond the guest's %u", vcpu, img->contract.max_vcpus);
  return read_guest(mem, mem_bytes, img->contract.vcpu_stats_gpa + (uint64_t)vcpu * sizeof *out, out, sizeof *out,
                    "vCPU statistics", err);
}
