/* guest_machine.c — see guest_machine.h. */
#include "guest_machine.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct guest_image *gm_image;

static uint64_t now_ns(const struct gm_node *n) { return vcpu_retired(n->v) * 1000 / GM_MHZ + n->idle_ns; }

static struct gm_node *node_of(struct gm *m, struct vcpu *v) { return &m->cpu[vcpu_id(v)]; }

static uint64_t cb_tsc(void *ctx, struct vcpu *v) { return now_ns(node_of(ctx, v)) * GM_MHZ / 1000; }

static enum vcpu_cb cb_out(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t value) {
  struct gm *m = ctx;
  (void)v;
  (void)bytes;
  switch (port) {
  case APFSIM_PORT_CONSOLE:
    if (m->console_len + 1 < sizeof m->console) m->console[m->console_len++] = (char)value;
    return VCPU_CB_OK;
  case APFSIM_PORT_PANIC:
    m->state = GM_PANIC;
    m->panic_gpa = value;
    return VCPU_CB_EXIT;
  case APFSIM_PORT_SHUTDOWN:
    m->state = GM_SHUTDOWN;
    return VCPU_CB_EXIT;
  case APFSIM_PORT_SIGBUS:
    if (m->n_sigbus < 8) m->sigbus_pids[m->n_sigbus++] = value;
    return VCPU_CB_OK;
  case APFSIM_PORT_HUNG_TASK:
    if (m->n_hung < 8) m->hung_pids[m->n_hung++] = value;
    return VCPU_CB_OK;
  default:
    return VCPU_CB_OK;
  }
}

static int cb_irq_ack(void *ctx, struct vcpu *v) {
  struct gm_node *n = node_of(ctx, v);
  return lapic_pending_vector(&n->apic) < 0 ? -1 : lapic_acknowledge(&n->apic);
}

static enum vcpu_msr_result apic_read(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value) {
  struct gm_node *n = node_of(ctx, v);
  return lapic_rdmsr(&n->apic, msr, now_ns(n), value) == LAPIC_MSR_OK ? VCPU_MSR_OK : VCPU_MSR_GP;
}

static enum vcpu_msr_result apic_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  struct gm *m = ctx;
  struct gm_node *n = node_of(m, v);
  struct lapic_ipi ipi;
  if (lapic_wrmsr(&n->apic, msr, value, now_ns(n), &ipi) != LAPIC_MSR_OK) return VCPU_MSR_GP;
  for (unsigned i = 0; ipi.valid && i < m->nv; i++) {
    if (!lapic_ipi_targets(&ipi, &m->cpu[i].apic)) continue;
    if (ipi.mode == LAPIC_DM_FIXED) lapic_accept(&m->cpu[i].apic, ipi.vector);
    if (ipi.mode == LAPIC_DM_NMI) vcpu_queue_nmi(m->cpu[i].v);
  }
  return VCPU_MSR_OK;
}

static void log_msr(struct gm_node *n, const char *what) {
  size_t l = strlen(n->msr_log);
  if (l + strlen(what) + 2 < sizeof n->msr_log) snprintf(n->msr_log + l, sizeof n->msr_log - l, "%s%s", l ? " " : "", what);
}

/* The fake host's APF MSRs: recorded, no policy (KVM's checks are sim/apf's business). */
static enum vcpu_msr_result kvm_read(void *ctx, struct vcpu *v, uint32_t msr, uint64_t *value) {
  struct gm_node *n = node_of(ctx, v);
  *value = msr == GM_MSR_KVM_ASYNC_PF_EN ? n->msr_en : msr == GM_MSR_KVM_ASYNC_PF_INT ? n->msr_int : 0;
  return VCPU_MSR_OK;
}

static enum vcpu_msr_result kvm_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  struct gm *m = ctx;
  struct gm_node *n = node_of(m, v);
  switch (msr) {
  case GM_MSR_KVM_ASYNC_PF_EN:
    n->msr_en = value;
    n->en_writes++;
    log_msr(n, "EN");
    return VCPU_MSR_OK;
  case GM_MSR_KVM_ASYNC_PF_INT:
    n->msr_int = value;
    n->int_writes++;
    log_msr(n, "INT");
    return VCPU_MSR_OK;
  case GM_MSR_KVM_ASYNC_PF_ACK:
    n->acks++;
    if (n->msr_en && *gm_apf_token(m, vcpu_id(v)) != 0) n->acks_with_token_set++;
    log_msr(n, "ACK");
    return VCPU_MSR_OK;
  default:
    return VCPU_MSR_GP;
  }
}

static bool ve_gp;
static enum vcpu_msr_result ve_write(void *ctx, struct vcpu *v, uint32_t msr, uint64_t value) {
  (void)msr;
  struct gm_node *n = node_of(ctx, v);
  if (ve_gp || (value & APFSIM_VE_INFO_RESERVED)) return VCPU_MSR_GP;
  n->msr_ve = value;
  n->ve_writes++;
  log_msr(n, "VE");
  return VCPU_MSR_OK;
}

int gm_setup(void **state) {
  (void)state;
  struct diag d = {{0}};
  if (!vcpu_backend_selfcheck(&d)) {
    fprintf(stderr, "vCPU self-check: %s\n", d.msg);
    return -1;
  }
  gm_image = guest_image_open(APFSIM_GUEST_KERNEL, &d);
  if (!gm_image) fprintf(stderr, "%s\n", d.msg);
  return gm_image ? 0 : -1;
}

int gm_teardown(void **state) {
  (void)state;
  guest_image_free(gm_image);
  return 0;
}

struct sim_config *gm_config(unsigned vcpus) {
  struct sim_config *cfg = config_new();
  cfg->machine.vcpus = vcpus;
  cfg->machine.guest_memory_bytes = GM_RAM;
  cfg->costs.cpu_mhz = GM_MHZ;
  cfg->guest.timer_period_ns = 1000000;
  cfg->guest.hung_task_timeout_ns = 0;
  cfg->guest.pf_entry_order = PF_ENTRY_CR2_FIRST;
  cfg->guest.nmi_cr2 = NMI_CR2_SAVE_RESTORE;
  cfg->guest.not_present_delivery = NOT_PRESENT_PF;
  cfg->apf.protocol = APF_2020;
  cfg->apf.page_ready_vector = 0xf3;
  cfg->apf.error_reporting = APF_ERR_NONE;
  cfg->dax.enabled = true;
  cfg->dax.window_gpa = GM_DAX_GPA;
  cfg->dax.window_bytes = GM_DAX_BYTES;
  cfg->workload.n_processes = 0;
  return cfg;
}

struct gm *gm_boot(const struct sim_config *cfg, const struct gm_options *opt) {
  struct diag d = {{0}};
  struct apfsim_boot_info bi;
  struct gm *m = calloc(1, sizeof *m);
  assert_non_null(m);
  m->img = gm_image;
  m->nv = cfg->machine.vcpus;
  assert_true(m->nv <= GM_MAX_VCPUS);
  m->mem = aligned_alloc(4096, GM_MEM);
  assert_non_null(m->mem);
  memset(m->mem, 0, GM_MEM);
  for (uint64_t i = 0; i < GM_DAX_BYTES; i += 8) /* the "file": its own offsets */
    memcpy(m->mem + GM_DAX_GPA + i, &i, sizeof i);
  if (!guest_image_load(gm_image, m->mem, GM_RAM, &d) || !guest_boot_info_from_config(cfg, GUEST_APIC_TIMER_KHZ_KVM, &bi, &d) ||
      !guest_boot_info_write(gm_image, &bi, m->mem, GM_RAM, NULL, &d))
    fail_msg("%s", d.msg);

  ve_gp = opt && opt->ve_msr_gp;
  m->msrs = vcpu_msr_table_new();
  struct vcpu_msr_handler apic = {.name = "x2apic", .first = LAPIC_MSR_X2APIC_FIRST, .last = LAPIC_MSR_X2APIC_LAST,
                                  .read = apic_read, .write = apic_write, .ctx = m};
  struct vcpu_msr_handler kvm = {.name = "fake-apf", .first = GM_MSR_KVM_ASYNC_PF_EN, .last = GM_MSR_KVM_ASYNC_PF_ACK,
                                 .read = kvm_read, .write = kvm_write, .ctx = m};
  struct vcpu_msr_handler ve = {.name = "fake-ve", .first = MSR_APFSIM_VE_INFO, .last = MSR_APFSIM_VE_INFO,
                                .write = ve_write, .ctx = m};
  assert_true(vcpu_msr_register(m->msrs, &apic, &d));
  assert_true(vcpu_msr_register(m->msrs, &kvm, &d));
  assert_true(vcpu_msr_register(m->msrs, &ve, &d));
  m->plat = (struct vcpu_platform){.ctx = m, .tsc = cb_tsc, .port_out = cb_out, .irq_ack = cb_irq_ack};
  uint64_t ranges[4][2];
  size_t n_text = guest_image_text_ranges(gm_image, ranges, 4);
  for (size_t i = 0; i < n_text; i++) m->text[i] = (struct vcpu_text_range){ranges[i][0], ranges[i][1]};

  for (unsigned i = 0; i < m->nv; i++) {
    struct gm_node *n = &m->cpu[i];
    struct vcpu_config vc = {.id = i, .mem = m->mem, .mem_bytes = GM_MEM, .text = m->text, .n_text = n_text,
                             .platform = &m->plat, .msrs = m->msrs, .costs = {.cpi_milli = 1000}, .cpuid_x2apic = true,
                             .kvm_features = opt ? opt->kvm_features : 0};
    n->v = vcpu_create(&vc, &d);
    if (!n->v) fail_msg("%s", d.msg);
    struct guest_entry_state st;
    assert_true(guest_entry_state(gm_image, i, m->nv, &st, &d));
    struct lapic_config lc = {.apic_id = st.x2apic_id, .timer_hz = GUEST_APIC_TIMER_KHZ_KVM * 1000, .maxphyaddr = 46, .bsp = i == 0};
    assert_true(lapic_init(&n->apic, &lc, &d));
    struct lapic_ipi ipi;
    assert_int_equal(lapic_wrmsr(&n->apic, LAPIC_MSR_APIC_BASE, st.apic_base, 0, &ipi), LAPIC_MSR_OK);
    struct vcpu_boot b = {.rip = st.rip, .rsp = st.rsp, .rflags = st.rflags, .cr0 = st.cr0, .cr3 = st.cr3, .cr4 = st.cr4,
                          .efer = st.efer, .gdt_base = st.gdt_base, .gdt_limit = st.gdt_limit, .idt_base = st.idt_base,
                          .idt_limit = st.idt_limit, .cs = st.cs, .ss = st.ss, .ds = st.ds, .tr = st.tr};
    if (!vcpu_boot(n->v, &b, &d)) fail_msg("%s", d.msg);
    struct vcpu_regs r;
    vcpu_get_regs(n->v, &r);
    r.rdi = st.rdi;
    r.rsi = st.rsi;
    vcpu_set_regs(n->v, &r);
  }
  return m;
}

void gm_free(struct gm *m) {
  for (unsigned i = 0; i < m->nv; i++) vcpu_destroy(m->cpu[i].v);
  vcpu_msr_table_free(m->msrs);
  free(m->mem);
  free(m);
}

static void check_exit(struct gm *m, unsigned i, bool ok, const struct vcpu_exit *ex) {
  if (!ok || ex->reason == VCPU_EXIT_TRIPLE_FAULT || ex->reason == VCPU_EXIT_INTERNAL_ERROR) {
    char sym[128];
    gm_sym(m, ex->rip, sym, sizeof sym);
    snprintf(m->failure, sizeof m->failure, "vCPU %u: %s at %s: %s", i, vcpu_exit_reason_name(ex->reason), sym, ex->message);
    m->state = GM_FAILED;
  }
}

/* WORKAROUND for a sim/cpu bug (the same as sim/machine/run.c's): after `sti; hlt` the
 * vCPU keeps the STI interrupt shadow (the HLT is emulated at its site and never runs in
 * Unicorn, which would end the shadow), so a pending interrupt never wakes the HLT.
 * Writing the registers back ends the HLT; the vCPU runs the instruction after the HLT
 * and takes the interrupt at the next boundary (if that instruction left IF = 1). */
static void sti_hlt_workaround(struct gm_node *n) {
  struct vcpu_regs r;
  if (!vcpu_halted(n->v) || lapic_pending_vector(&n->apic) < 0) return;
  vcpu_get_regs(n->v, &r);
  if (r.rflags & (UINT64_C(1) << 9)) vcpu_set_regs(n->v, &r);
}

static void round_once(struct gm *m) {
  for (unsigned i = 0; i < m->nv && m->state == GM_RUNNING; i++) {
    struct gm_node *n = &m->cpu[i];
    lapic_advance(&n->apic, now_ns(n));
    if (n->halted && lapic_pending_vector(&n->apic) < 0 && !vcpu_nmi_pending(n->v)) {
      uint64_t target = lapic_next_timer_ns(&n->apic);
      for (unsigned j = 0; j < m->nv; j++)
        if (!m->cpu[j].halted && now_ns(&m->cpu[j]) > now_ns(n) && now_ns(&m->cpu[j]) < target) target = now_ns(&m->cpu[j]);
      if (target != LAPIC_NO_TIMER && target > now_ns(n)) n->idle_ns += target - now_ns(n);
      lapic_advance(&n->apic, now_ns(n));
      if (lapic_pending_vector(&n->apic) < 0) continue;
    }
    n->halted = false;
    vcpu_set_irq_line(n->v, lapic_pending_vector(&n->apic) >= 0);
    sti_hlt_workaround(n);
    struct vcpu_exit ex;
    bool ok = vcpu_run(n->v, GM_QUANTUM, &ex);
    m->instructions += ex.instructions;
    check_exit(m, i, ok, &ex);
    if (ex.reason == VCPU_EXIT_HLT) n->halted = true;
  }
}

void gm_run(struct gm *m, unsigned rounds) {
  for (unsigned r = 0; r < rounds && m->state == GM_RUNNING; r++) round_once(m);
  if (m->state == GM_FAILED) fail_msg("%s\nconsole:\n%s", m->failure, gm_console(m));
}

void gm_step(struct gm *m, unsigned cpu, uint64_t n) {
  struct gm_node *node = &m->cpu[cpu];
  vcpu_set_irq_line(node->v, false);
  struct vcpu_exit ex;
  bool ok = vcpu_run(node->v, n, &ex);
  m->instructions += ex.instructions;
  check_exit(m, cpu, ok, &ex);
  node->halted = ex.reason == VCPU_EXIT_HLT;
  if (m->state == GM_FAILED) fail_msg("%s\nconsole:\n%s", m->failure, gm_console(m));
}

static void stack_bounds(struct gm *m, unsigned pid, uint64_t *lo, uint64_t *top) {
  struct apfsim_proc_stats ps = gm_proc(m, pid);
  const struct apfsim_boot_info *bi = (const struct apfsim_boot_info *)(m->mem + APFSIM_BOOT_INFO_GPA);
  struct apfsim_proc_layout l;
  apfsim_proc_layout(&bi->classes[ps.class_index], &l);
  *lo = ps.range_base + l.stack_off;
  *top = *lo + l.stack_bytes;
}

void gm_run_until_user(struct gm *m, unsigned cpu, unsigned pid, bool deep) {
  struct vcpu *v = m->cpu[cpu].v;
  uint64_t lo = 0, top = 0;
  for (unsigned r = 0; r < 400000; r++) {
    if (gm_proc(m, pid).state != APFSIM_PROC_UNUSED) stack_bounds(m, pid, &lo, &top); /* once it exists */
    struct vcpu_sregs s;
    vcpu_get_sregs(v, &s);
    struct vcpu_regs regs;
    vcpu_get_regs(v, &regs);
    bool in_pid = s.cpl == 3 && regs.rsp >= lo && regs.rsp < top;
    if (in_pid) {
      if (!deep && regs.rsp >= top - APFSIM_PAGE_SIZE) return;
      if (deep && regs.rsp < top - 4 * APFSIM_PAGE_SIZE) return;
    }
    gm_step(m, cpu, in_pid ? 1 : 97);
    assert_int_equal(m->state, GM_RUNNING);
  }
  fail_msg("pid %u never ran %s in user mode on vCPU %u", pid, deep ? "its fresh-stack access" : "", cpu);
}

void gm_run_until_interruptible(struct gm *m, unsigned cpu) {
  for (unsigned r = 0; r < 100000; r++) {
    struct vcpu_regs regs;
    vcpu_get_regs(m->cpu[cpu].v, &regs);
    if (regs.rflags & (1u << 9)) return;
    gm_step(m, cpu, 1);
    assert_int_equal(m->state, GM_RUNNING);
  }
  fail_msg("vCPU %u never enabled interrupts", cpu);
}

struct apfsim_proc_stats gm_proc(struct gm *m, unsigned pid) {
  struct apfsim_proc_stats ps;
  struct diag d;
  assert_true(guest_read_proc_stats(gm_image, m->mem, GM_RAM, pid - 1, &ps, &d));
  return ps;
}

struct apfsim_vcpu_stats gm_vcpu(struct gm *m, unsigned cpu) {
  struct apfsim_vcpu_stats vs;
  struct diag d;
  assert_true(guest_read_vcpu_stats(gm_image, m->mem, GM_RAM, cpu, &vs, &d));
  return vs;
}

struct apfsim_panic_record gm_panic(struct gm *m) {
  struct apfsim_panic_record r;
  struct diag d = {{0}};
  if (m->state != GM_PANIC) fail_msg("no panic (state %d); console:\n%s", m->state, gm_console(m));
  if (!guest_read_panic_record(m->mem, GM_RAM, m->panic_gpa, &r, &d)) fail_msg("%s", d.msg);
  return r;
}

struct vcpu_regs gm_regs(struct gm *m, unsigned cpu) {
  struct vcpu_regs r;
  vcpu_get_regs(m->cpu[cpu].v, &r);
  return r;
}

const char *gm_console(struct gm *m) {
  m->console[m->console_len < sizeof m->console ? m->console_len : sizeof m->console - 1] = '\0';
  return m->console;
}

const char *gm_sym(struct gm *m, uint64_t addr, char *buf, size_t n) {
  (void)m;
  guest_image_symbolize(gm_image, addr, buf, n);
  return buf;
}

static uint8_t *area(struct gm *m, unsigned cpu, uint64_t msr_value, const char *what) {
  uint64_t gpa = msr_value & ~UINT64_C(0x3f);
  if (!(msr_value & 1) || gpa + 64 > GM_RAM) fail_msg("vCPU %u: no %s registered (MSR value %#llx)", cpu, what, (unsigned long long)msr_value);
  return m->mem + gpa;
}

uint32_t *gm_apf_word(struct gm *m, unsigned cpu) { return (uint32_t *)area(m, cpu, m->cpu[cpu].msr_en, "APF area"); }
uint32_t *gm_apf_token(struct gm *m, unsigned cpu) { return (uint32_t *)(area(m, cpu, m->cpu[cpu].msr_en, "APF area") + 4); }
uint32_t *gm_apf_ready_flags(struct gm *m, unsigned cpu) { return (uint32_t *)(area(m, cpu, m->cpu[cpu].msr_en, "APF area") + 8); }
struct apfsim_ve_info *gm_ve_info(struct gm *m, unsigned cpu) {
  return (struct apfsim_ve_info *)area(m, cpu, m->cpu[cpu].msr_ve, "#VE info area");
}

void gm_inject_not_present(struct gm *m, unsigned cpu, uint32_t token) {
  *gm_apf_word(m, cpu) = 1;
  vcpu_queue_exception(m->cpu[cpu].v, 14, 0, token);
}

bool gm_inject_page_ready(struct gm *m, unsigned cpu, uint32_t token, uint32_t ready_flags) {
  if (*gm_apf_token(m, cpu) != 0) return false;
  *gm_apf_token(m, cpu) = token;
  *gm_apf_ready_flags(m, cpu) = ready_flags;
  assert_true(lapic_accept(&m->cpu[cpu].apic, (uint8_t)m->cpu[cpu].msr_int));
  m->cpu[cpu].halted = false;
  return true;
}

void gm_inject_page_ready_2010(struct gm *m, unsigned cpu, uint32_t token) {
  *gm_apf_word(m, cpu) = 2;
  vcpu_queue_exception(m->cpu[cpu].v, 14, 0, token);
  m->cpu[cpu].halted = false;
}

bool gm_inject_ve(struct gm *m, unsigned cpu, uint32_t reason, uint64_t token, uint64_t gva, uint32_t access) {
  struct apfsim_ve_info *ve = gm_ve_info(m, cpu);
  if (ve->busy) return false;
  ve->reason = reason;
  ve->token = token;
  ve->gva = gva;
  ve->gpa = gva;
  ve->access = access;
  ve->busy = APFSIM_VE_BUSY;
  vcpu_queue_exception(m->cpu[cpu].v, 20, VCPU_NO_ERROR_CODE, 0);
  m->cpu[cpu].halted = false;
  return true;
}
