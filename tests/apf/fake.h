/* fake.h — a fake platform for the APF engine: guest RAM as a byte array, vCPU states
 * the test sets, and a record of every effect the engine asks for (#PF injections,
 * interrupts, reads, halts, kicks, prefaults, shared-area pins, trace lines). inject_pf
 * marks the vCPU's exception pending, as a real vCPU's queue would, until the test says
 * the guest took it (fx_take_pf). No clock: time is fx.now, set by the test. */
#ifndef APFSIM_TESTS_APF_FAKE_H
#define APFSIM_TESTS_APF_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apf/apf.h"
#include "apf/internal.h"

#define FX_MAX_VCPUS 4
#define FX_RAM (1u << 20)
#define FX_AREA(v) (UINT64_C(0x8000) + (uint64_t)(v) * 0x40) /* each vCPU's shared area */
#define FX_VEC 0xf3u

struct fx_inject { unsigned vcpu; uint32_t error_code; uint64_t cr2; };
struct fx_irq { unsigned vcpu; uint8_t vector; };
struct fx_fetch { unsigned vcpu; uint64_t gfn; bool blocks; };
struct fx_pin { unsigned vcpu; uint64_t gpa; bool in_use; };

struct fx {
  uint8_t ram[FX_RAM];
  uint64_t now;
  struct apf_vcpu_state st[FX_MAX_VCPUS];
  bool halted[FX_MAX_VCPUS];
  unsigned halts[FX_MAX_VCPUS];
  unsigned kicks[FX_MAX_VCPUS];
  unsigned kicks_running[FX_MAX_VCPUS]; /* kicks asking a running vCPU to exit */
  unsigned ves[FX_MAX_VCPUS];           /* #VEs injected (inject_ve) */
  struct fx_inject *inj; size_t n_inj;
  struct fx_irq *irq; size_t n_irq;
  struct fx_fetch *fetch; size_t n_fetch;
  uint64_t *prefault; size_t n_prefault;
  struct fx_pin *pin; size_t n_pin;
  char **trace; size_t n_trace;
  struct apf_engine_config cfg;
  struct apf_engine *e;
};

/* A 5.8+ host (2020 rules), n vCPUs, async on, defaults elsewhere; features all offered. */
struct apf_engine_config fx_cfg_2020(unsigned n);
/* A pre-5.8 host (2010 rules). */
struct apf_engine_config fx_cfg_2010(unsigned n);
/* Every vCPU starts at CPL 3 with interrupts allowed and nothing pending. */
struct fx *fx_new(const struct apf_engine_config *cfg);
void fx_free(struct fx *f);

uint32_t fx_rd32(const struct fx *f, uint64_t gpa);
void fx_wr32(struct fx *f, uint64_t gpa, uint32_t v);

/* The guest enables APF the way Linux does: 2020 — INT = FX_VEC, EN = area | ENABLED |
 * DELIVERY_AS_INT | extra; 2010 — EN = area | ENABLED | extra. Then it consumes the
 * wake-all (2020: clears the token slot and ACKs; 2010: takes the #PF, clears reason),
 * leaving the fake's records empty. */
void fx_enable(struct fx *f, unsigned v, uint64_t extra_en_bits);

/* A fault on gfn by vCPU v (gva = gpa = gfn << 12). */
struct apf_decision fx_fault(struct fx *f, unsigned v, uint64_t gfn);
struct apf_decision fx_fault_x(struct fx *f, unsigned v, uint64_t gfn, bool during_delivery, bool unresolvable);

/* The guest took the pending #PF (the fake's exception queue empties). */
void fx_take_pf(struct fx *f, unsigned v);
/* The 2020 guest's page-ready handler: reads the token slot, clears it, writes ACK.
 * Returns the token it found. */
uint32_t fx_guest_page_ready(struct fx *f, unsigned v);

/* Forget every recorded effect (not the engine state). */
void fx_clear_records(struct fx *f);

/* Trace: lines are "TIME cpuN NAME: FIELDS". */
bool fx_has_trace(const struct fx *f, const char *name_and_fields); /* exact "NAME: FIELDS" */
size_t fx_count_trace(const struct fx *f, const char *name);
/* Index of the first line with this name at or after `from`, or SIZE_MAX. */
size_t fx_find_trace(const struct fx *f, const char *name, size_t from);
void fx_dump_trace(const struct fx *f);

#endif
