/* fetches.c — host page reads in flight (swap-ins), and when each completes.
 *
 * Why the machine keeps them: a device that decides a request's completion time when it
 * arrives (sim/storage/swap_device.h does) can say it at submission, through
 * machine_io_ops.submit. With that time known, a read's completion is a machine-wide
 * timed event: the horizons of running vCPUs stop at it and whichever of a vCPU's slice
 * start, the host thread or the device's response reaches the time first completes the
 * read — so an APF page-ready lands at its own time on an instruction boundary instead of
 * at the next slice after the device answered (up to a quantum late). The device's later
 * report of a read already completed here changes nothing. Reads whose time is unknown
 * (MACHINE_NEVER) complete when the device reports them, as before.
 *
 * Reads bound horizons only with APF on (apf/protocol other than off): without it a
 * completion concerns only the vCPUs blocked on it, which are not running, and slicing
 * the others at every completion would change nothing but cost.
 *
 * Reads of one gfn complete in submission order (a page is read again only after its
 * previous read completed and it was evicted), so the device's report of gfn is matched
 * with the oldest read of gfn still listed. Not for: the device's timing (the binding's
 * or the test harness's), the EPT states (host.c drives them). */
#include <stdlib.h>
#include <string.h>

#include "machine_internal.h"

struct fetch {
  uint64_t gfn;
  uint64_t done_ps; /* MACHINE_NEVER: the device did not say */
  uint64_t seq;     /* equal times complete in submission order */
  bool ran;         /* completed by the machine; the device's report is still to come */
  bool device;      /* false: a failure the machine made up (no device report follows) */
  bool failed;
};

struct machine_fetches {
  struct fetch *v;
  size_t n, cap;
  uint64_t seq;
};

bool machine_fetches_setup(struct machine *m, struct diag *err) {
  m->reads = calloc(1, sizeof *m->reads);
  if (!m->reads) return diag_set(err, "out of memory");
  return true;
}

void machine_fetches_destroy(struct machine *m) {
  if (!m->reads) return;
  free(m->reads->v);
  free(m->reads);
  m->reads = NULL;
}

static bool push(struct machine *m, struct fetch f) {
  struct machine_fetches *r = m->reads;
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 64;
    struct fetch *v = realloc(r->v, cap * sizeof *v);
    if (!v) return false;
    r->v = v;
    r->cap = cap;
  }
  f.seq = r->seq++;
  r->v[r->n++] = f;
  return true;
}

static void drop(struct machine_fetches *r, size_t k) {
  memmove(&r->v[k], &r->v[k + 1], (r->n - k - 1) * sizeof *r->v); /* keeps submission order */
  r->n--;
}

bool machine_fetch_start(struct machine *m, uint64_t gfn, unsigned waiter, uint64_t at_ps) {
  struct diag d = {{0}};
  if (!m->io.submit) {
    machine_fail(m, at_ps, "gpa %#llx must be read from the swap device, but the platform has none",
                 (unsigned long long)(gfn << 12));
    return false;
  }
  const uint64_t done = m->io.submit(m->io.ctx, MACHINE_IO_FETCH, gfn << 12, (uint32_t)PAGE_BYTES, at_ps);
  m->fetches++;
  if (!push(m, (struct fetch){.gfn = gfn, .done_ps = done, .device = true})) {
    machine_fail(m, at_ps, "out of memory");
    return false;
  }
  if (!ept_start_fetch(m->ept, gfn, waiter, done == MACHINE_NEVER ? UINT64_MAX : done / PS_PER_NS, &d)) {
    machine_fail(m, at_ps, "%s", d.msg);
    return false;
  }
  /* The vCPU that submitted it is mid-slice: its run stops at the completion too. */
  if (machine_apf_async(m))
    for (unsigned i = 0; i < m->n; i++)
      if (done < m->cpu[i].slice_horizon_ps) m->cpu[i].slice_horizon_ps = done;
  return true;
}

void machine_fetch_fail(struct machine *m, uint64_t gfn, uint64_t at_ps) {
  if (!push(m, (struct fetch){.gfn = gfn, .done_ps = at_ps, .failed = true}))
    machine_fail(m, at_ps, "out of memory");
}

uint64_t machine_fetches_next_ps(const struct machine *m) {
  if (!m->reads || !machine_apf_async(m)) return MACHINE_NEVER;
  uint64_t t = MACHINE_NEVER;
  for (size_t k = 0; k < m->reads->n; k++)
    if (!m->reads->v[k].ran && m->reads->v[k].done_ps < t) t = m->reads->v[k].done_ps;
  return t;
}

static void run(struct machine *m, const struct fetch *f, uint64_t at_ps) {
  if (f->failed) {
    machine_apf_fetch_done(m, f->gfn, true, at_ps);
    return;
  }
  m->fetches_done++;
  machine_page_in(m, f->gfn, at_ps);
}

void machine_fetches_due(struct machine *m, uint64_t now_ps) {
  if (!m->reads) return;
  struct machine_fetches *r = m->reads;
  while (!m->ended) {
    /* the earliest due one, submission order at equal times */
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < r->n; k++) {
      const struct fetch *f = &r->v[k];
      if (f->ran || f->done_ps > now_ps) continue;
      if (best == SIZE_MAX || f->done_ps < r->v[best].done_ps ||
          (f->done_ps == r->v[best].done_ps && f->seq < r->v[best].seq))
        best = k;
    }
    if (best == SIZE_MAX) return;
    const struct fetch f = r->v[best];
    if (f.device)
      r->v[best].ran = true; /* the device's report still comes: it finds this one ran */
    else
      drop(r, best);
    run(m, &f, f.done_ps);
  }
}

void machine_fetch_reported(struct machine *m, uint64_t gfn, uint64_t now_ps) {
  struct machine_fetches *r = m->reads;
  for (size_t k = 0; r && k < r->n; k++) {
    if (r->v[k].gfn != gfn || !r->v[k].device) continue;
    const struct fetch f = r->v[k];
    drop(r, k);
    if (!f.ran) {
      if (m->ended) {
        m->fetches_done++;
        return;
      }
      run(m, &f, now_ps);
    }
    return;
  }
  /* A read the machine does not know (not submitted through machine_fetch_start). */
  m->fetches_done++;
  if (!m->ended) machine_page_in(m, gfn, now_ps);
}
