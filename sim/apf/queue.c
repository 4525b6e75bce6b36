/* queue.c — the mechanism half of virt/kvm/async_pf.c: each vCPU's queued works (a fixed
 * pool, so max_outstanding bounds memory), the "done" FIFO of works whose read finished
 * and that wait to be presented to the guest, and dropping everything when the guest
 * turns APF off. The pool is scanned in index order and the FIFO keeps completion order,
 * so the outcome never depends on allocation addresses.
 * Not for: deciding anything (decide.c, complete.c). */
#include <string.h>

#include "apf/internal.h"

uint32_t apf_work_alloc(struct apf_engine *e, struct apf_vcpu *v) {
  for (uint32_t i = 0; i < e->capacity; i++) {
    if (v->works[i].state == APF_WORK_FREE) {
      memset(&v->works[i], 0, sizeof(v->works[i]));
      v->works[i].next_done = APF_NO_WORK;
      return i;
    }
  }
  return APF_NO_WORK;
}

void apf_work_free(struct apf_vcpu *v, uint32_t w) {
  memset(&v->works[w], 0, sizeof(v->works[w]));
  v->works[w].state = APF_WORK_FREE;
}

bool apf_done_empty(const struct apf_vcpu *v) { return v->done_head == APF_NO_WORK; }

void apf_done_push(struct apf_vcpu *v, uint32_t w) {
  v->works[w].state = APF_WORK_DONE;
  v->works[w].next_done = APF_NO_WORK;
  if (v->done_tail == APF_NO_WORK)
    v->done_head = w;
  else
    v->works[v->done_tail].next_done = w;
  v->done_tail = w;
}

uint32_t apf_done_pop(struct apf_vcpu *v) {
  uint32_t w = v->done_head;
  if (w == APF_NO_WORK) return w;
  v->done_head = v->works[w].next_done;
  if (v->done_head == APF_NO_WORK) v->done_tail = APF_NO_WORK;
  v->works[w].next_done = APF_NO_WORK;
  return w;
}

void apf_queue_clear(struct apf_engine *e, struct apf_vcpu *v) {
  /* KVM cancels the works still running and frees the done list; reads already issued
   * still finish in the platform, and apf_fetch_done then finds no work to complete. */
  uint32_t dropped = 0;
  for (uint32_t i = 0; i < e->capacity; i++) {
    if (v->works[i].state != APF_WORK_FREE) {
      apf_work_free(v, i);
      dropped++;
    }
  }
  v->done_head = v->done_tail = APF_NO_WORK;
  v->queued = 0;
  v->stats.outstanding = 0;
  v->stats.cancelled += dropped;
  if (dropped) apf_trace(e, v->id, "apf_queue_cleared", "works %u", dropped);
}
