/* machine.c — building the machine (machine.h): guest memory with the shadow pool above
 * it, the kernel image and boot info, the shadow MMU and EPT (and reclaim, host.c), the
 * MSR table with the x2APIC handlers, and the vCPUs in their boot state. Also the small
 * accessors. Not for: running (run.c), outcomes (guest_io.c), host faults (host.c). */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "machine_internal.h"
#include "mmu/paging.h"

#ifndef APFSIM_GUEST_KERNEL
#error "APFSIM_GUEST_KERNEL (the kernel built with apfsim) must be defined by the build"
#endif

/* A port I/O exit's host work. The config has no field for it yet (costs/ lists the
 * MSR, APIC and CPUID handlers); an OUT to the debug console is an exit handled in the
 * kernel like an exiting MSR, so it is charged as one (costs/msr-access-cycles). */
static uint64_t io_access_cycles(const struct cost_config *c) { return c->msr_access_cycles; }

struct guest_image *machine_open_kernel(const struct sim_config *cfg, struct diag *err) {
  const char *path = cfg->guest.kernel_path;
  if (!path[0]) return guest_image_open(APFSIM_GUEST_KERNEL, err);
  if (path[0] == '/') return guest_image_open(path, err);
  /* relative to the directory of the config file (docs/config.md) */
  char src[CONFIG_PATH_MAX], full[2 * CONFIG_PATH_MAX + 2];
  snprintf(src, sizeof src, "%s", cfg->source_path);
  snprintf(full, sizeof full, "%s/%s", dirname(src), path);
  struct guest_image *img = guest_image_open(full, err);
  if (!img) {
    struct diag inner = *err;
    diag_at(err, cfg->source_path, 0, "guest/kernel", "%s", inner.msg);
  }
  return img;
}

/* Shadow table pool: enough for every vCPU to map all of RAM with 4 KiB leaves (one
 * table page per 2 MiB, RAM/512 bytes) plus room for the upper levels, capped — the pool
 * recycles the largest shadow when it runs dry (shadow.h), so the cap costs refills,
 * never correctness. The mapping is lazy: untouched pool pages cost nothing. */
static uint64_t pool_bytes_for(uint64_t ram, unsigned n) {
  const uint64_t cap = UINT64_C(256) << 20;
  uint64_t want = (uint64_t)n * (ram / 512 + (UINT64_C(256) << 10));
  if (want > cap) want = cap;
  uint64_t min = shadow_min_bytes(n);
  if (want < min) want = min;
  return (want + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
}

static bool map_memory(struct machine *m, struct diag *err) {
  m->ram_bytes = m->cfg->machine.guest_memory_bytes;
  /* The DAX window lies above RAM and is part of the same buffer (its page-cache pages
   * are what the guest reads); the shadow pool goes above everything the guest may map. */
  const uint64_t dax_end = machine_dax_span_end(m->cfg);
  m->pool_base = dax_end > m->ram_bytes ? dax_end : m->ram_bytes;
  m->pool_bytes = pool_bytes_for(m->ram_bytes, m->n);
  m->map_bytes = m->pool_base + m->pool_bytes;
  if (dax_end > m->ram_bytes && (dax_end > VCPU_STUB_VA || m->map_bytes > VCPU_STUB_VA))
    return diag_at(err, m->cfg->source_path, 0, "dax/window-gpa",
                   "the DAX window [%#llx, %#llx) plus the %llu KiB shadow pool above it must end below %#llx "
                   "(the vCPUs' TLB-flush stub page); put the window lower",
                   (unsigned long long)m->cfg->dax.window_gpa, (unsigned long long)dax_end,
                   (unsigned long long)(m->pool_bytes >> 10), (unsigned long long)VCPU_STUB_VA);
  if (m->map_bytes > VCPU_STUB_VA)
    return diag_at(err, m->cfg->source_path, 0, "machine/guest-memory",
                   "%llu MiB of RAM plus the %llu MiB shadow pool must end below %#llx (the vCPUs' "
                   "TLB-flush stub page); use less guest memory",
                   (unsigned long long)(m->ram_bytes >> 20), (unsigned long long)(m->pool_bytes >> 20),
                   (unsigned long long)VCPU_STUB_VA);
  /* Anonymous memory is zeroed and committed lazily: RAM the guest never touches costs
   * nothing on the host, as with a real VMM. */
  void *p = mmap(NULL, m->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return diag_set(err, "cannot map %llu MiB of guest memory", (unsigned long long)(m->map_bytes >> 20));
  m->mem = p;
  return true;
}

/* The pages the simulator wrote before the run (image, boot info) are resident and
 * dirty: nothing else holds a copy (mmu.md "Initial state"). */
static bool mark_loaded(struct machine *m, struct diag *err) {
  for (unsigned k = 0; k < m->img->n_segments; k++) {
    const struct guest_segment *s = &m->img->segments[k];
    uint64_t lo = s->gpa & ~(PAGE_BYTES - 1), hi = (s->gpa + s->mem_bytes + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
    if (!ept_host_loaded(m->ept, lo, hi - lo, err)) return false;
  }
  return ept_host_loaded(m->ept, APFSIM_BOOT_INFO_GPA, APFSIM_BOOT_INFO_BYTES, err);
}

static struct vcpu_costs costs_from(const struct cost_config *c) {
  return (struct vcpu_costs){
      .cpi_milli = c->cpi_milli,
      .vm_exit_cycles = c->vm_exit_cycles,
      .vm_entry_cycles = c->vm_entry_cycles,
      .event_injection_cycles = c->event_injection_cycles,
      .msr_access_cycles = c->msr_access_cycles,
      .apic_access_cycles = c->apic_access_cycles,
      .cpuid_cycles = c->cpuid_cycles,
      .io_access_cycles = io_access_cycles(c),
      .ept_violation_cycles = c->ept_violation_cycles,
  };
}

static bool boot_vcpu(struct machine *m, unsigned i, struct diag *err) {
  struct mvcpu *c = &m->cpu[i];
  c->id = i;
  latency_hist_init(&c->sync_latency);
  char stream[32];
  snprintf(stream, sizeof stream, "vcpu%u-rdrand", i);
  rng_stream_init(&c->rdrand, m->cfg->seed, stream);

  struct guest_entry_state st;
  if (!guest_entry_state(m->img, i, m->n, &st, err)) return false;
  struct lapic_config lc = {.apic_id = st.x2apic_id,
                            .timer_hz = m->bi.apic_timer_khz * 1000,
                            .maxphyaddr = PAGING_MAXPHYADDR_DEFAULT,
                            .bsp = i == 0};
  if (!lapic_init(&c->apic, &lc, err)) return false;
  /* The guest's firmware contract hands over with x2APIC on (docs/guest.md §1.3). */
  struct lapic_ipi none;
  if (lapic_wrmsr(&c->apic, LAPIC_MSR_APIC_BASE, st.apic_base, 0, &none) != LAPIC_MSR_OK)
    return diag_set(err, "vCPU %u: the x2APIC refused IA32_APIC_BASE %#llx", i, (unsigned long long)st.apic_base);

  struct vcpu_config vc = {
      .id = i,
      .mem = m->mem,
      .mem_bytes = m->pool_base, /* RAM and the DAX window (and the hole between: NOT_MEMORY) */
      .maxphyaddr = PAGING_MAXPHYADDR_DEFAULT,
      .text = m->text,
      .n_text = m->n_text,
      .platform = &m->plat,
      .msrs = m->msrs,
      .shadow = m->shadow,
      .shadow_base = m->pool_base,
      .shadow_bytes = m->pool_bytes,
      .peers = m->peers,
      .n_peers = m->n,
      .costs = costs_from(&m->cfg->costs),
      /* CPUID 0x40000001 EAX: what this host kind offers (apf_cpuid_features), the same
       * on every vCPU and the same the engine's MSR checks use. */
      .kvm_features = machine_apf_kvm_features(m),
      .enforce_pv_cpuid = m->cfg->host.enforce_pv_cpuid,
      .cpuid_x2apic = true,
      /* the guest's context-switch reports (docs/guest.md §1.7): observation, not work */
      .uncosted_out_port = APFSIM_PORT_TASK_SWITCH,
  };
  c->v = vcpu_create(&vc, err);
  if (!c->v) return false;
  struct vcpu_boot b = {.rip = st.rip, .rsp = st.rsp, .rflags = st.rflags, .cr0 = st.cr0, .cr3 = st.cr3,
                        .cr4 = st.cr4, .efer = st.efer, .gdt_base = st.gdt_base, .idt_base = st.idt_base,
                        .gdt_limit = st.gdt_limit, .idt_limit = st.idt_limit, .cs = st.cs, .ss = st.ss,
                        .ds = st.ds, .tr = st.tr};
  if (!vcpu_boot(c->v, &b, err)) return false;
  struct vcpu_regs r;
  vcpu_get_regs(c->v, &r);
  r.rdi = st.rdi;
  r.rsi = st.rsi;
  vcpu_set_regs(c->v, &r);
  c->state = MV_RUNNING;
  return true;
}

struct machine *machine_create(const struct machine_params *p, struct diag *err) {
  const struct sim_config *cfg = p->cfg;
  if (!p->trace || !p->image) {
    diag_set(err, "machine_create: a trace and a guest image are required");
    return NULL;
  }
  if (cfg->costs.cpi_milli == 0 || cfg->costs.cpu_mhz == 0) {
    diag_at(err, cfg->source_path, 0, "costs", "cpu-frequency and cycles-per-instruction must be above 0");
    return NULL;
  }
  if (!vcpu_backend_selfcheck(err)) return NULL;

  struct machine *m = calloc(1, sizeof *m);
  if (!m) {
    diag_set(err, "out of memory");
    return NULL;
  }
  m->cfg = cfg;
  m->img = p->image;
  m->trace = p->trace;
  m->io = p->io;
  m->console = p->console;
  m->n = cfg->machine.vcpus;
  m->mhz = cfg->costs.cpu_mhz;
  m->cpi_milli = cfg->costs.cpi_milli;
  m->limit_ps = cfg->limits.max_sim_time_ns * PS_PER_NS;
  m->max_instructions = cfg->limits.max_guest_instructions;
  /* One instruction takes cpi_milli x 10^3 / MHz ps; a quantum of N instructions is N of those. */
  m->quantum_ps = cfg->machine.quantum_instructions * (uint64_t)m->cpi_milli * 1000 / m->mhz;
  if (m->quantum_ps == 0) m->quantum_ps = 1;

  m->cpu = calloc(m->n, sizeof *m->cpu);
  m->peers = calloc(m->n, sizeof *m->peers);
  m->vsum = calloc(m->n, sizeof *m->vsum);
  if (!m->cpu || !m->peers || !m->vsum) {
    diag_set(err, "out of memory");
    goto fail;
  }
  /* What the configuration asks that this machine or kernel cannot do is bad input. */
  if (p->config_error) *p->config_error = true;
  if (!guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &m->bi, err)) goto fail;
  if (!guest_boot_layout_check(m->img, cfg, &m->bi, err)) goto fail;
  m->tsc_khz = m->bi.tsc_khz;
  if (!map_memory(m, err)) goto fail;
  if (!guest_image_load(m->img, m->mem, m->ram_bytes, err)) goto fail;
  if (!guest_boot_info_write(m->img, &m->bi, m->mem, m->ram_bytes, &m->layout, err)) goto fail;
  if (p->config_error) *p->config_error = false;

  struct shadow_config sc = {m->mem, m->pool_base, PAGING_MAXPHYADDR_DEFAULT, m->pool_base, m->pool_bytes, m->n};
  m->shadow = shadow_create(&sc, err);
  if (!m->shadow) goto fail;
  struct ept_config ec = {m->shadow, m->ram_bytes, EPT_INITIAL_ABSENT};
  m->ept = ept_create(&ec, err);
  if (!m->ept || !vcpu_shadow_setup(m->shadow, err) || !mark_loaded(m, err)) goto fail;
  if (!machine_host_setup(m, err) || !machine_dax_setup(m, err)) goto fail;

  m->msrs = vcpu_msr_table_new();
  if (!m->msrs) {
    diag_set(err, "out of memory");
    goto fail;
  }
  if (!machine_register_apic_msrs(m, err)) goto fail;
  if (!machine_fetches_setup(m, err) || !machine_apf_setup(m, err) || !machine_race_setup(m, err)) goto fail;
  if (p->config_error) *p->config_error = true; /* a plan it cannot carry out is bad input */
  if (!machine_nmi_setup(m, err) || !machine_measure_setup(m, err)) goto fail;
  if (p->config_error) *p->config_error = false;
  machine_install_callbacks(m);

  uint64_t ranges[MACHINE_MAX_TEXT_RANGES][2];
  size_t n_text = guest_image_text_ranges(m->img, ranges, MACHINE_MAX_TEXT_RANGES);
  if (n_text > MACHINE_MAX_TEXT_RANGES) {
    diag_set(err, "%s: more than %d executable segments", m->img->name, MACHINE_MAX_TEXT_RANGES);
    goto fail;
  }
  for (size_t k = 0; k < n_text; k++) m->text[k] = (struct vcpu_text_range){ranges[k][0], ranges[k][1]};
  m->n_text = n_text;
  for (unsigned i = 0; i < m->n; i++)
    if (!boot_vcpu(m, i, err)) goto fail;
  if (!machine_nmi_arm(m, err)) goto fail;
  return m;
fail:
  machine_destroy(m);
  return NULL;
}

void machine_destroy(struct machine *m) {
  if (!m) return;
  for (unsigned i = 0; m->cpu && i < m->n; i++) vcpu_destroy(m->cpu[i].v);
  vcpu_msr_table_free(m->msrs);
  reclaim_destroy(m->reclaim);
  machine_dax_destroy(m);
  machine_apf_destroy(m);
  machine_fetches_destroy(m);
  machine_nmi_destroy(m);
  machine_race_destroy(m);
  machine_measure_destroy(m);
  ept_destroy(m->ept);
  shadow_destroy(m->shadow);
  if (m->mem) munmap(m->mem, m->map_bytes);
  free(m->proc_rows);
  free(m->vtime_rows);
  free(m->hist_rows);
  free(m->vsum);
  free(m->peers);
  free(m->cpu);
  free(m);
}

unsigned machine_n_vcpus(const struct machine *m) { return m->n; }
struct vcpu *machine_vcpu(struct machine *m, unsigned i) { return i < m->n ? m->cpu[i].v : NULL; }
bool machine_ended(const struct machine *m) { return m->ended; }
const char *machine_failed(const struct machine *m) { return m->failed ? m->failure : NULL; }

void machine_set_fault_hooks(struct machine *m, const struct machine_fault_hooks *h) {
  if (h)
    m->hooks = *h;
  else
    memset(&m->hooks, 0, sizeof m->hooks);
}

bool machine_register_msr(struct machine *m, const struct vcpu_msr_handler *h, struct diag *err) {
  return vcpu_msr_register(m->msrs, h, err);
}

const uint8_t *machine_guest_memory(const struct machine *m, uint64_t *ram_bytes) {
  if (ram_bytes) *ram_bytes = m->ram_bytes;
  return m->mem;
}

bool machine_poke(struct machine *m, uint64_t gpa, const void *data, uint64_t len, struct diag *err) {
  if (gpa > m->ram_bytes || len > m->ram_bytes - gpa)
    return diag_set(err, "machine_poke: [%#llx, +%llu) is not guest RAM", (unsigned long long)gpa,
                    (unsigned long long)len);
  for (uint64_t g = gpa >> 12; len && g <= (gpa + len - 1) >> 12; g++) {
    if (!ept_resident(m->ept, g))
      return diag_set(err, "machine_poke: page %#llx is not resident on the host", (unsigned long long)(g << 12));
  }
  memcpy(m->mem + gpa, data, len);
  for (uint64_t g = gpa >> 12; len && g <= (gpa + len - 1) >> 12; g++) {
    struct shadow_flush f;
    shadow_host_write(m->shadow, g, &f);
    machine_apply_flush(m, &f);
  }
  for (unsigned i = 0; i < m->n; i++) vcpu_code_changed(m->cpu[i].v, gpa, len);
  return true;
}
