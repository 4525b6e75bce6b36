/* gfn_hash.c — two small per-vCPU tables keyed by gfn with Linux's hash_32, never by a
 * host address, so the result depends only on the guest's accesses.
 *
 * apf.gfns: the gfns this vCPU has async work for, 64 entries (ASYNC_PF_PER_VCPU rounded
 * to a power of two), open addressing with linear probing, the ~0 sentinel for "empty",
 * and deletion by backward shift (no tombstones) — as kvm_add_async_pf_gfn /
 * kvm_async_pf_gfn_slot / kvm_del_async_pf_gfn in arch/x86/kvm/x86.c (5.4 and 5.10 alike).
 * A fault on a gfn found here is KVM's "repeated fault" (kvm_async_pf_doublefault before
 * 5.17): the vCPU halts instead of queuing a second work.
 *
 * error_gfns: the July 2020 series' cache of gfns whose async read failed ("kvm,x86: Exit
 * to user space in case page fault error", v4): direct mapped, 64 entries, a new gfn
 * overwrites (it is only a hint to fault synchronously), a hit removes the entry.
 *
 * Not for: the work records (queue.c). */
#include "apf/internal.h"

#define GOLDEN_RATIO_32 UINT32_C(0x61C88647) /* include/linux/hash.h since 4.7 */

uint32_t apf_hash_32(uint32_t val, unsigned bits) {
  return (uint32_t)(val * GOLDEN_RATIO_32) >> (32 - bits);
}

static uint32_t hash_fn(const struct apf_engine *e, uint64_t gfn) {
  return apf_hash_32((uint32_t)(gfn & 0xffffffffu), e->hash_bits);
}

static uint32_t next_probe(const struct apf_engine *e, uint32_t key) {
  return (key + 1) & ((UINT32_C(1) << e->hash_bits) - 1);
}

void apf_gfn_hash_reset(struct apf_engine *e, struct apf_vcpu *v) {
  for (uint32_t i = 0; i < (UINT32_C(1) << e->hash_bits); i++) v->gfns[i] = APF_GFN_EMPTY;
}

void apf_gfn_hash_add(struct apf_engine *e, struct apf_vcpu *v, uint64_t gfn) {
  /* Never full: entries <= queued works <= max_outstanding <= table size. */
  uint32_t key = hash_fn(e, gfn);
  while (v->gfns[key] != APF_GFN_EMPTY) key = next_probe(e, key);
  v->gfns[key] = gfn;
}

uint32_t apf_gfn_hash_slot(const struct apf_engine *e, const struct apf_vcpu *v, uint64_t gfn) {
  uint32_t key = hash_fn(e, gfn);
  for (uint32_t i = 0; i < (UINT32_C(1) << e->hash_bits) && v->gfns[key] != gfn && v->gfns[key] != APF_GFN_EMPTY;
       i++)
    key = next_probe(e, key);
  return key;
}

bool apf_gfn_hash_find(const struct apf_engine *e, const struct apf_vcpu *v, uint64_t gfn) {
  return v->gfns[apf_gfn_hash_slot(e, v, gfn)] == gfn;
}

void apf_gfn_hash_del(struct apf_engine *e, struct apf_vcpu *v, uint64_t gfn) {
  uint32_t i, j, k;
  i = j = apf_gfn_hash_slot(e, v, gfn);
  if (v->gfns[i] != gfn) return; /* KVM: WARN_ON_ONCE and return */
  for (;;) {
    v->gfns[i] = APF_GFN_EMPTY;
    /* Move the next entry of the probe run back into the hole unless its home slot k
     * lies cyclically in ]i, j] (then it is still reachable from its home). */
    do {
      j = next_probe(e, j);
      if (v->gfns[j] == APF_GFN_EMPTY) return;
      k = hash_fn(e, v->gfns[j]);
    } while ((i <= j) ? (i < k && k <= j) : (i < k || k <= j));
    v->gfns[i] = v->gfns[j];
    i = j;
  }
}

void apf_error_gfn_reset(struct apf_vcpu *v) {
  for (int i = 0; i < APF_ERROR_GFNS; i++) v->error_gfns[i] = APF_GFN_EMPTY;
}

void apf_error_gfn_add(struct apf_vcpu *v, uint64_t gfn) {
  v->error_gfns[apf_hash_32((uint32_t)(gfn & 0xffffffffu), 6)] = gfn;
}

bool apf_error_gfn_take(struct apf_vcpu *v, uint64_t gfn) {
  uint32_t key = apf_hash_32((uint32_t)(gfn & 0xffffffffu), 6);
  if (v->error_gfns[key] != gfn) return false;
  v->error_gfns[key] = APF_GFN_EMPTY;
  return true;
}
