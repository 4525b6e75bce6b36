/* watch.c — watched guest addresses: how often the instruction at an address
 * ran, and a stop right before its n-th execution (vcpu_watch in vcpu.h).
 *
 * Each watch is a Unicorn code hook bound to its one address, so it costs
 * only when that instruction runs, wherever it sits in a translation block.
 * The hook counts before the instruction and, to stop, uses uc_emu_stop
 * (which in a code hook stops right before the instruction) after taking
 * back the rest of the block's count (vcpu_abort_at): the run loop then
 * writes RIP and reports VCPU_EXIT_WATCH, with the count exact.
 *
 * Unicorn decides at translation time which instructions call code hooks, so
 * a hook added after its code was translated would stay silent until that
 * code is translated again: vcpu_watch drops the translations of that address
 * only (uc_ctl_remove_cache through ubk_invalidate_code), never the whole
 * cache (docs/vcpu.md "Watched addresses" has the measurements).
 *
 * Not for: deciding what a stop means (the caller), intercepted instructions
 * (sites.c — their hook calls watch_arrive first at a watched address). */
#include <stdlib.h>

#include "cpu/vcpu_internal.h"

bool watch_arrive(struct vcpu *v, uint64_t addr) {
  const uint64_t before = vcpu_count_before(v, addr);
  int stop = -1;
  for (size_t i = 0; i < v->n_watches; i++) {
    struct watch *w = v->watches[i];
    if (w->addr != addr) continue;
    /* The same arrival again (the instruction is retried after a shadow
     * fill or a host fault, or the run resumes after a stop) is one
     * execution: nothing retired in between. */
    if (w->last_arrival != before) {
      w->last_arrival = before;
      w->count++;
    }
    if (stop < 0 && !w->reported && w->count == w->nth) {
      w->reported = true;
      stop = w->id;
    }
  }
  if (stop < 0) return false;
  vcpu_abort_at(v, addr);
  v->stop = STOP_WATCH;
  v->stop_watch = stop;
  v->resume_rip = addr; /* a hook that stops never writes RIP (docs/unicorn-notes.md) */
  uc_emu_stop(v->uc);
  return true;
}

static void on_watch(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  (void)uc;
  (void)size;
  struct watch *w = ud;
  struct vcpu *v = w->v;
  if (addr != w->addr || v->in_stub) return;
  const struct site *s = sites_find(v, addr);
  if (s && s->hooked) return; /* the site's own hook counts it, before it emulates anything */
  watch_arrive(v, addr);
}

int vcpu_watch(struct vcpu *v, uint64_t addr, uint64_t nth, struct diag *err) {
  if (addr >= v->mem_bytes) {
    diag_set(err, "vcpu %u: watched address %#llx is outside guest RAM", v->id, (unsigned long long)addr);
    return -1;
  }
  struct watch **grown = realloc(v->watches, (v->n_watches + 1) * sizeof *grown);
  struct watch *w = calloc(1, sizeof *w);
  if (grown) v->watches = grown;
  if (!grown || !w) {
    free(w);
    diag_set(err, "vcpu %u: out of memory", v->id);
    return -1;
  }
  *w = (struct watch){.addr = addr, .nth = nth, .last_arrival = UINT64_MAX, .id = (int)v->n_watches, .v = v};
  if (uc_hook_add(v->uc, &w->hook, UC_HOOK_CODE, (void *)on_watch, w, addr, addr) != UC_ERR_OK) {
    free(w);
    diag_set(err, "vcpu %u: cannot hook the watched address %#llx", v->id, (unsigned long long)addr);
    return -1;
  }
  v->watches[v->n_watches++] = w;
  /* Code translated before this hook existed would not call it. */
  ubk_invalidate_code(&v->be, addr, addr + 1);
  return w->id;
}

uint64_t vcpu_watch_count(const struct vcpu *v, int id) {
  return id >= 0 && (size_t)id < v->n_watches ? v->watches[id]->count : 0;
}

void watches_free(struct vcpu *v) {
  for (size_t i = 0; i < v->n_watches; i++) free(v->watches[i]);
  free(v->watches);
  v->watches = NULL;
  v->n_watches = 0;
}
