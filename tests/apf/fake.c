/* fake.c — see fake.h. */
#include "fake.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PUSH(arr, n, val)                                       \
  do {                                                          \
    (arr) = realloc((arr), ((n) + 1) * sizeof(*(arr)));         \
    assert_non_null(arr);                                       \
    (arr)[(n)++] = (val);                                       \
  } while (0)

static uint64_t op_now(void *ctx) { return ((struct fx *)ctx)->now; }

static bool op_read(void *ctx, uint64_t gpa, uint32_t *value) {
  struct fx *f = ctx;
  if (gpa + 4 > FX_RAM) return false;
  *value = fx_rd32(f, gpa);
  return true;
}

static bool op_write(void *ctx, uint64_t gpa, uint32_t value) {
  struct fx *f = ctx;
  if (gpa + 4 > FX_RAM) return false;
  fx_wr32(f, gpa, value);
  return true;
}

static void op_state(void *ctx, unsigned vcpu, struct apf_vcpu_state *out) {
  struct fx *f = ctx;
  assert_true(vcpu < FX_MAX_VCPUS);
  *out = f->st[vcpu];
}

static void op_inject(void *ctx, unsigned vcpu, uint32_t ec, uint64_t cr2) {
  struct fx *f = ctx;
  /* The engine must never stack a second exception on one not yet delivered. */
  assert_false(f->st[vcpu].exception_pending);
  f->st[vcpu].exception_pending = true;
  PUSH(f->inj, f->n_inj, ((struct fx_inject){vcpu, ec, cr2}));
}

static void op_inject_ve(void *ctx, unsigned vcpu) {
  struct fx *f = ctx;
  assert_false(f->st[vcpu].exception_pending);
  f->st[vcpu].exception_pending = true;
  f->ves[vcpu]++;
}

static void op_irq(void *ctx, unsigned vcpu, uint8_t vector) {
  struct fx *f = ctx;
  PUSH(f->irq, f->n_irq, ((struct fx_irq){vcpu, vector}));
}

static void op_fetch(void *ctx, unsigned vcpu, uint64_t gfn, bool blocks) {
  struct fx *f = ctx;
  PUSH(f->fetch, f->n_fetch, ((struct fx_fetch){vcpu, gfn, blocks}));
}

static void op_halt(void *ctx, unsigned vcpu) {
  struct fx *f = ctx;
  f->halted[vcpu] = true;
  f->halts[vcpu]++;
}

static void op_kick(void *ctx, unsigned vcpu, bool interrupt_running) {
  struct fx *f = ctx;
  f->halted[vcpu] = false;
  f->kicks[vcpu]++;
  if (interrupt_running) f->kicks_running[vcpu]++;
}

static void op_prefault(void *ctx, unsigned vcpu, uint64_t gfn) {
  struct fx *f = ctx;
  (void)vcpu;
  PUSH(f->prefault, f->n_prefault, gfn);
}

static void op_area(void *ctx, unsigned vcpu, uint64_t gpa, bool in_use) {
  struct fx *f = ctx;
  PUSH(f->pin, f->n_pin, ((struct fx_pin){vcpu, gpa, in_use}));
}

static void op_trace(void *ctx, uint64_t t, int cpu, const char *name, const char *fields) {
  struct fx *f = ctx;
  char buf[512];
  snprintf(buf, sizeof(buf), "%llu cpu%d %s: %s", (unsigned long long)t, cpu, name, fields);
  char *line = strdup(buf);
  assert_non_null(line);
  PUSH(f->trace, f->n_trace, line);
}

static struct apf_engine_config base(unsigned n) {
  struct apf_engine_config c;
  memset(&c, 0, sizeof(c));
  c.n_vcpus = n;
  c.async_pf = true;
  c.max_outstanding = 0;
  c.error_reporting = APF_ERR_NONE;
  c.enforce_pv_cpuid = false;
  c.kvm_features = (1u << APF_FEATURE_ASYNC_PF) | (1u << APF_FEATURE_ASYNC_PF_INT) |
                   (1u << APF_FEATURE_ASYNC_PF_VMEXIT);
  return c;
}

struct apf_engine_config fx_cfg_2020(unsigned n) { return base(n); }

struct apf_engine_config fx_cfg_2010(unsigned n) {
  struct apf_engine_config c = base(n);
  c.host_pre_5_8 = true;
  c.kvm_features = (1u << APF_FEATURE_ASYNC_PF);
  return c;
}

struct fx *fx_new(const struct apf_engine_config *cfg) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->cfg = *cfg;
  f->now = 1000;
  for (unsigned i = 0; i < FX_MAX_VCPUS; i++) {
    f->st[i].interrupts_allowed = true;
    f->st[i].cpl = 3;
  }
  struct apf_host_ops ops = {
      .ctx = f,
      .now_ns = op_now,
      .read_u32 = op_read,
      .write_u32 = op_write,
      .vcpu_state = op_state,
      .inject_pf = op_inject,
      .raise_irq = op_irq,
      .fetch = op_fetch,
      .halt = op_halt,
      .kick = op_kick,
      .prefault = op_prefault,
      .shared_area = op_area,
      .inject_ve = op_inject_ve,
      .trace = op_trace,
  };
  struct diag d;
  f->e = apf_engine_create(cfg, &ops, &d);
  if (!f->e) fprintf(stderr, "%s\n", d.msg);
  assert_non_null(f->e);
  return f;
}

void fx_clear_records(struct fx *f) {
  free(f->inj), f->inj = NULL, f->n_inj = 0;
  free(f->irq), f->irq = NULL, f->n_irq = 0;
  free(f->fetch), f->fetch = NULL, f->n_fetch = 0;
  free(f->prefault), f->prefault = NULL, f->n_prefault = 0;
  free(f->pin), f->pin = NULL, f->n_pin = 0;
  for (size_t i = 0; i < f->n_trace; i++) free(f->trace[i]);
  free(f->trace), f->trace = NULL, f->n_trace = 0;
  memset(f->kicks, 0, sizeof(f->kicks));
  memset(f->kicks_running, 0, sizeof(f->kicks_running));
  memset(f->halts, 0, sizeof(f->halts));
}

void fx_free(struct fx *f) {
  if (!f) return;
  fx_clear_records(f);
  apf_engine_destroy(f->e);
  free(f);
}

uint32_t fx_rd32(const struct fx *f, uint64_t gpa) {
  return (uint32_t)f->ram[gpa] | (uint32_t)f->ram[gpa + 1] << 8 | (uint32_t)f->ram[gpa + 2] << 16 |
         (uint32_t)f->ram[gpa + 3] << 24;
}

void fx_wr32(struct fx *f, uint64_t gpa, uint32_t v) {
  for (int i = 0; i < 4; i++) f->ram[gpa + i] = (uint8_t)(v >> (8 * i));
}

void fx_take_pf(struct fx *f, unsigned v) { f->st[v].exception_pending = false; }

uint32_t fx_guest_page_ready(struct fx *f, unsigned v) {
  uint32_t token = fx_rd32(f, FX_AREA(v) + APF_AREA_TOKEN);
  fx_wr32(f, FX_AREA(v) + APF_AREA_TOKEN, 0);
  assert_int_equal(apf_msr_write(f->e, v, APF_MSR_ACK, 1), APF_MSR_OK);
  return token;
}

void fx_enable(struct fx *f, unsigned v, uint64_t extra) {
  if (f->cfg.host_pre_5_8) {
    assert_int_equal(apf_msr_write(f->e, v, APF_MSR_EN, FX_AREA(v) | APF_EN_ENABLED | extra), APF_MSR_OK);
    /* The wake-all arrives as #PF, reason 2, CR2 = ~0. */
    assert_int_equal(f->n_inj, 1);
    assert_int_equal(f->inj[0].cr2, APF_TOKEN_WAKE_ALL);
    assert_int_equal(fx_rd32(f, FX_AREA(v)), APF_REASON_PAGE_READY);
    fx_wr32(f, FX_AREA(v), 0);
    fx_take_pf(f, v);
  } else {
    assert_int_equal(apf_msr_write(f->e, v, APF_MSR_INT, FX_VEC), APF_MSR_OK);
    assert_int_equal(
        apf_msr_write(f->e, v, APF_MSR_EN, FX_AREA(v) | APF_EN_ENABLED | APF_EN_DELIVERY_AS_INT | extra),
        APF_MSR_OK);
    assert_int_equal(f->n_irq, 1);
    assert_int_equal(f->irq[0].vector, FX_VEC);
    assert_int_equal(fx_guest_page_ready(f, v), APF_TOKEN_WAKE_ALL);
  }
  assert_int_equal(apf_vcpu_stats(f->e, v)->outstanding, 0);
  fx_clear_records(f);
}

struct apf_decision fx_fault_x(struct fx *f, unsigned v, uint64_t gfn, bool during_delivery, bool unresolvable) {
  struct apf_fault flt = {.gpa = gfn << 12, .gva = gfn << 12, .during_delivery = during_delivery,
                          .unresolvable = unresolvable};
  struct apf_decision d;
  apf_fault(f->e, v, &flt, &d);
  return d;
}

struct apf_decision fx_fault(struct fx *f, unsigned v, uint64_t gfn) { return fx_fault_x(f, v, gfn, false, false); }

static const char *after_cpu(const char *line) {
  const char *p = strchr(line, ' ');
  p = p ? strchr(p + 1, ' ') : NULL;
  return p ? p + 1 : line;
}

bool fx_has_trace(const struct fx *f, const char *s) {
  for (size_t i = 0; i < f->n_trace; i++)
    if (strcmp(after_cpu(f->trace[i]), s) == 0) return true;
  return false;
}

size_t fx_find_trace(const struct fx *f, const char *name, size_t from) {
  size_t len = strlen(name);
  for (size_t i = from; i < f->n_trace; i++) {
    const char *p = after_cpu(f->trace[i]);
    if (strncmp(p, name, len) == 0 && p[len] == ':') return i;
  }
  return SIZE_MAX;
}

size_t fx_count_trace(const struct fx *f, const char *name) {
  size_t n = 0;
  for (size_t i = fx_find_trace(f, name, 0); i != SIZE_MAX; i = fx_find_trace(f, name, i + 1)) n++;
  return n;
}

void fx_dump_trace(const struct fx *f) {
  for (size_t i = 0; i < f->n_trace; i++) fprintf(stderr, "  %s\n", f->trace[i]);
}
