/* dax.c — the virtiofs DAX window in the machine (DESIGN.md §2 "Truncation"; docs/platform.md
 * "DAX window"): guest-physical pages [dax/window-gpa, +window-size) backed by the host file
 * model (sim/storage/dax_file.h), whose page-cache pages the host maps straight into the guest.
 *
 *   EPT violation on an unmapped window page  page cache hit: map it, the vCPU retries;
 *                                             miss: a page-cache read with the configured
 *                                             latency (stream "dax-page-cache"), the vCPU
 *                                             blocks in the synchronous path like a swap-in
 *   the host truncates the file at dax/truncate-at   pages past the new end become
 *                                             unresolvable (zapped, every TLB flushed);
 *                                             a read in flight of such a page fails
 *   EPT violation on a truncated window page  KVM_RUN fails with EFAULT: outcome efault_exit
 *
 * With APF on (apf/protocol other than off) the host's APF engine decides what a miss or a
 * truncated page becomes, as for a swap-in (apf_glue.c, docs/truncation.md): the read (or,
 * for a truncated page, a get-page that only fails) then runs with nobody waiting, and its
 * completion completes the engine's works (page-ready, with or without an error).
 *
 * Reads and the truncate are machine-wide timed events (machine_next_timed_event_ps), so
 * running vCPUs stop at their time and a blocked vCPU wakes at its read's completion.
 * Not for: the APF decision on window pages (sim/apf, through apf_glue.c), the file's
 * page-cache policy (dax_file.c), the EPT page states (sim/mmu/ept.c). */
#include <stdlib.h>
#include <string.h>

#include "machine_internal.h"
#include "storage/dax_file.h"
#include "storage/latency.h"

/* A page-cache read a fault started: the window page is IN_FLIGHT until ready_ps. */
struct dax_read {
  uint64_t gfn, file_offset;
  uint64_t ready_ps;
  uint64_t seq; /* equal ready times complete in submission order */
  bool lost;    /* an async get-page of an unresolvable page: it only fails (no EPT change) */
};

struct machine_dax {
  struct dax_file file;
  struct latency_source latency;
  unsigned window;
  uint64_t gpa, bytes;
  /* the host truncate (dax/truncate): pending until done */
  bool truncate_pending;
  uint64_t truncate_at_ps;
  bool truncated;
  struct dax_truncate_result last_truncate;
  struct dax_read *reads;
  size_t n_reads, cap_reads;
  uint64_t seq;
  /* the page-cache miss being handled: machine_dax_start_read's read (the file model
   * already timed it when asked, so it is not asked twice) */
  struct dax_miss {
    bool valid;
    uint64_t gfn, ready_ns;
  } miss;
  /* statistics */
  uint64_t hits, reads_started, reads_done, reads_failed, efaults;
  uint64_t summary_row[12]; /* the summary's "dax" section points here */
};

/* What a page-cache page holds: every 8-byte word its own file offset, tagged, so a test
 * (or a person looking at guest memory) can tell which file byte landed where; bytes at
 * or past the end of the file read as zeros, as Linux leaves the tail of the last page. */
#define DAX_CONTENT_TAG UINT64_C(0xda00000000000000)

uint64_t machine_dax_span_end(const struct sim_config *cfg) {
  return cfg->dax.enabled ? cfg->dax.window_gpa + cfg->dax.window_bytes : 0;
}

static uint64_t ps_to_ns(uint64_t ps) { return ps / PS_PER_NS; }

/* The host wrote guest-visible memory of page gfn: engines drop any code translated from it. */
static void host_wrote(struct machine *m, uint64_t gfn) {
  struct shadow_flush f;
  shadow_host_write(m->shadow, gfn, &f);
  machine_apply_flush(m, &f);
  for (unsigned i = 0; i < m->n; i++) vcpu_code_changed(m->cpu[i].v, gfn << 12, PAGE_BYTES);
}

static void fill_page(struct machine *m, uint64_t gfn, uint64_t file_offset) {
  const struct machine_dax *d = m->dax;
  uint8_t *p = m->mem + (gfn << 12);
  const uint64_t size = dax_file_size(&d->file);
  for (uint64_t k = 0; k < PAGE_BYTES; k += 8) {
    const uint64_t off = file_offset + k;
    const uint64_t word = off < size ? DAX_CONTENT_TAG | off : 0;
    memcpy(p + k, &word, 8);
  }
  host_wrote(m, gfn);
}

bool machine_dax_setup(struct machine *m, struct diag *err) {
  const struct dax_config *c = &m->cfg->dax;
  if (!c->enabled) return true;
  struct machine_dax *d = calloc(1, sizeof *d);
  if (!d) return diag_set(err, "out of memory");
  m->dax = d;
  d->gpa = c->window_gpa;
  d->bytes = c->window_bytes;
  latency_source_init(&d->latency, &c->page_cache_latency, m->cfg->seed, STORAGE_STREAM_DAX_PAGE_CACHE);
  /* Cold page cache: the guest's first touch of each file page costs a read, which is
   * what makes the window's timing visible (the config has no switch for a warm start). */
  if (!dax_file_init(&d->file, c->file_bytes, c->window_bytes, DAX_START_COLD, latency_source_sample, &d->latency,
                     err))
    return false;
  if (!ept_add_dax_window(m->ept, d->gpa, d->bytes, 0, &d->window, err)) {
    struct diag inner = *err;
    return diag_at(err, m->cfg->source_path, 0, "dax/window-gpa", "%s", inner.msg);
  }
  d->truncate_pending = c->truncate;
  d->truncate_at_ps = c->truncate_at_ns * PS_PER_NS;
  return true;
}

void machine_dax_destroy(struct machine *m) {
  if (!m->dax) return;
  dax_file_destroy(&m->dax->file);
  free(m->dax->reads);
  free(m->dax);
  m->dax = NULL;
}

/* ---------- timed events ---------- */

/* The read due first (ties: submitted first), or NULL. */
static struct dax_read *first_read(struct machine_dax *d) {
  struct dax_read *best = NULL;
  for (size_t k = 0; k < d->n_reads; k++) {
    struct dax_read *r = &d->reads[k];
    if (!best || r->ready_ps < best->ready_ps || (r->ready_ps == best->ready_ps && r->seq < best->seq)) best = r;
  }
  return best;
}

uint64_t machine_dax_next_event_ps(const struct machine *m) {
  struct machine_dax *d = m->dax;
  if (!d) return MACHINE_NEVER;
  uint64_t t = d->truncate_pending ? d->truncate_at_ps : MACHINE_NEVER;
  const struct dax_read *r = first_read(d);
  if (r && r->ready_ps < t) t = r->ready_ps;
  return t;
}

uint64_t machine_dax_wake_ps(const struct machine *m, uint64_t gfn) {
  struct machine_dax *d = m->dax;
  if (!d) return MACHINE_NEVER;
  for (size_t k = 0; k < d->n_reads; k++)
    if (d->reads[k].gfn == gfn && !d->reads[k].lost) return d->reads[k].ready_ps;
  return MACHINE_NEVER;
}

/* The page-cache read of r completes at its time: the page is mapped if the file still
 * holds it, else (a truncate removed it meanwhile) the fault has failed. */
static void complete_read(struct machine *m, struct dax_read r) {
  struct machine_dax *d = m->dax;
  struct ept_change ch;
  struct diag err = {{0}};
  if (r.lost) {
    machine_apf_fetch_done(m, r.gfn, true, r.ready_ps);
    return;
  }
  const bool ok = dax_file_page_state(&d->file, r.file_offset, ps_to_ns(r.ready_ps)) == DAX_PAGE_RESIDENT;
  if (ok) {
    fill_page(m, r.gfn, r.file_offset);
    if (!ept_complete_fetch(m->ept, r.gfn, &ch, &err)) {
      machine_fail(m, r.ready_ps, "%s", err.msg);
      return;
    }
    d->reads_done++;
  } else {
    if (!ept_mark_unresolvable(m->ept, r.gfn, EPT_LOSS_TRUNCATED, &ch, &err)) {
      machine_fail(m, r.ready_ps, "%s", err.msg);
      return;
    }
    d->reads_failed++;
  }
  machine_apply_flush(m, &ch.flush);
  trace_event(m->trace, ps_to_ns(r.ready_ps), TRACE_CPU_HOST, "dax_read_done", "gpa %#llx file_offset %#llx result %s",
              (unsigned long long)(r.gfn << 12), (unsigned long long)r.file_offset, ok ? "ok" : "truncated");
  /* with the page mapped, or to fault again on it and find it unresolvable */
  machine_wake_io_waiters(m, ch.waiters, r.ready_ps);
  /* async works on the page complete: page-ready, with or without an error */
  machine_apf_fetch_done(m, r.gfn, !ok, r.ready_ps);
  if (ok && m->hooks.page_in) m->hooks.page_in(m->hooks.ctx, m, r.gfn, r.ready_ps);
}

/* The host's ftruncate(2) of the file behind the window (QEMU's mmap of it stays; the
 * pages past the new end are gone from the page cache, so KVM can no longer fault them in). */
static void truncate_file(struct machine *m, uint64_t now_ps) {
  struct machine_dax *d = m->dax;
  struct dax_truncate_result res;
  struct diag err = {{0}};
  d->truncate_pending = false;
  if (!dax_file_truncate(&d->file, m->cfg->dax.truncate_to_bytes, ps_to_ns(now_ps), &res, &err)) {
    machine_fail(m, now_ps, "DAX truncate: %s", err.msg);
    return;
  }
  d->truncated = true;
  d->last_truncate = res;
  struct shadow_flush flush = {0};
  const uint64_t changed = ept_dax_truncate(m->ept, d->window, res.first_gone_page, res.pages_gone, &flush);
  machine_apply_flush(m, &flush);
  if (res.partial_page_kept) {
    /* the tail of the new last page reads as zeros from now on (Linux truncate_pagecache) */
    const uint64_t gfn = ept_dax_gfn(m->ept, d->window, res.partial_page * DAX_PAGE_SIZE);
    if (gfn != EPT_NO_GFN) {
      const uint64_t keep = res.new_size % DAX_PAGE_SIZE;
      memset(m->mem + (gfn << 12) + keep, 0, PAGE_BYTES - keep);
      host_wrote(m, gfn);
    }
  }
  trace_event(m->trace, ps_to_ns(now_ps), TRACE_CPU_HOST, "dax_truncate",
              "old_size %llu new_size %llu pages_gone %llu pages_unresolvable %llu reads_cancelled %llu",
              (unsigned long long)res.old_size, (unsigned long long)res.new_size, (unsigned long long)res.pages_gone,
              (unsigned long long)changed, (unsigned long long)res.reads_cancelled);
}

void machine_dax_deliver_due(struct machine *m, uint64_t now_ps) {
  struct machine_dax *d = m->dax;
  if (!d) return;
  /* in time order; a read due at the truncate's instant completes first */
  while (!m->ended) {
    struct dax_read *r = first_read(d);
    const bool read_due = r && r->ready_ps <= now_ps && (!d->truncate_pending || r->ready_ps <= d->truncate_at_ps);
    if (read_due) {
      const struct dax_read done = *r;
      *r = d->reads[--d->n_reads];
      complete_read(m, done);
    } else if (d->truncate_pending && d->truncate_at_ps <= now_ps) {
      truncate_file(m, d->truncate_at_ps);
    } else {
      return;
    }
  }
}

/* ---------- faults ---------- */

static const char *access_word(enum vcpu_access a) {
  switch (a) {
    case VCPU_ACCESS_READ: return "read";
    case VCPU_ACCESS_WRITE: return "write";
    case VCPU_ACCESS_FETCH: return "fetch";
  }
  return "?";
}

/* Lists a read (its seq assigned here). Its completion is a machine-wide timed event; the
 * slices running now (the faulting vCPU's, when the fault was async and it runs on) stop
 * there too, so a page-ready lands at its time and no event comes after the trace's
 * flush bound passed it (as fetches.c). */
static bool push_read(struct machine *m, struct dax_read r, uint64_t now_ps) {
  struct machine_dax *d = m->dax;
  if (d->n_reads == d->cap_reads) {
    size_t cap = d->cap_reads ? 2 * d->cap_reads : 16;
    struct dax_read *grown = realloc(d->reads, cap * sizeof *grown);
    if (!grown) {
      machine_fail(m, now_ps, "DAX: out of memory for a page-cache read");
      return false;
    }
    d->reads = grown;
    d->cap_reads = cap;
  }
  r.seq = d->seq++;
  d->reads[d->n_reads++] = r;
  for (unsigned i = 0; i < m->n; i++)
    if (r.ready_ps < m->cpu[i].slice_horizon_ps) m->cpu[i].slice_horizon_ps = r.ready_ps;
  return true;
}

/* The vCPU waits for the page-cache read: KVM's synchronous fault, as for a swap-in. */
static void block_on_read(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, uint64_t now_ps) {
  c->state = MV_BLOCKED;
  c->io_ready = false;
  c->since_ps = now_ps;
  c->fault_gpa = ex->ept.gpa;
  c->fault_rip = ex->rip;
  c->fault_during_delivery = ex->ept.during_delivery;
  c->sync_faults++;
  trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "sync_fault_start", "gpa %#llx rip %#llx access %s kind dax_read",
              (unsigned long long)ex->ept.gpa, (unsigned long long)ex->rip, access_word(ex->ept.access));
  mv_show_state(m, c, now_ps, ex->ept.gpa);
}

bool machine_dax_fault(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                       uint64_t now_ps) {
  struct machine_dax *d = m->dax;
  struct diag err = {{0}};
  if (!d) {
    machine_fail(m, now_ps, "an EPT violation on DAX page gfn %#llx, but the machine has no DAX window",
                 (unsigned long long)f->gfn);
    return false;
  }
  uint64_t ready_ns;
  const uint64_t now_ns = ps_to_ns(now_ps);
  switch (dax_file_read(&d->file, f->file_offset, now_ns, &ready_ns)) {
    case DAX_ENOMEM:
      machine_fail(m, now_ps, "DAX: out of memory for a page-cache read");
      return false;
    case DAX_EFAULT: {
      /* past the end of the file (never there, or truncated before the EPT heard of it) */
      struct ept_change ch;
      if (!ept_mark_unresolvable(m->ept, f->gfn, EPT_LOSS_TRUNCATED, &ch, &err)) {
        machine_fail(m, now_ps, "%s", err.msg);
        return false;
      }
      machine_apply_flush(m, &ch.flush);
      struct ept_fault lost = *f;
      lost.kind = EPT_FAULT_UNRESOLVABLE;
      lost.state = EPT_UNRESOLVABLE;
      lost.loss = EPT_LOSS_TRUNCATED;
      if (machine_apf_async(m)) return machine_apf_fault(m, c, ex, &lost, now_ps); /* the get-page fails */
      machine_dax_efault(m, c, ex, &lost, now_ps);
      return false;
    }
    case DAX_OK:
      break;
  }
  if (ready_ns <= now_ns) {
    /* page-cache hit: a host minor fault maps it, no I/O */
    fill_page(m, f->gfn, f->file_offset);
    if (!ept_dax_map(m->ept, f->gfn, &err)) {
      machine_fail(m, now_ps, "%s", err.msg);
      return false;
    }
    d->hits++;
    trace_event(m->trace, now_ns, (int)c->id, "dax_map", "gpa %#llx file_offset %#llx",
                (unsigned long long)(f->gfn << 12), (unsigned long long)f->file_offset);
    return true;
  }
  /* With async faults on, the host's APF engine decides what the miss becomes (an async
   * fault with the read in the background, a synthetic halt, or a synchronous fault);
   * whichever it is, the read starts through machine_dax_start_read. */
  d->miss = (struct dax_miss){true, f->gfn, ready_ns};
  if (machine_apf_async(m)) return machine_apf_fault(m, c, ex, f, now_ps);
  machine_dax_start_read(m, c, ex, f, now_ps, true);
  return false;
}

bool machine_dax_start_read(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                            uint64_t now_ps, bool vcpu_blocks) {
  struct machine_dax *d = m->dax;
  struct diag err = {{0}};
  const uint64_t now_ns = ps_to_ns(now_ps);
  /* the file model started this read when machine_dax_fault asked it about the miss */
  if (!d->miss.valid || d->miss.gfn != f->gfn) {
    machine_fail(m, now_ps, "DAX: a page-cache read of gfn %#llx without the fault that missed it",
                 (unsigned long long)f->gfn);
    return false;
  }
  const uint64_t ready_ns = d->miss.ready_ns;
  d->miss.valid = false;
  /* From the vCPU's own local time, so the wait is exactly the sampled latency. */
  const uint64_t ready_ps = now_ps + (ready_ns > now_ns ? ready_ns - now_ns : 0) * PS_PER_NS;
  if (!ept_start_fetch(m->ept, f->gfn, vcpu_blocks ? c->id : EPT_NO_VCPU, ready_ns, &err)) {
    machine_fail(m, now_ps, "%s", err.msg);
    return false;
  }
  if (!push_read(m, (struct dax_read){f->gfn, f->file_offset, ready_ps, 0, false}, now_ps)) return false;
  d->reads_started++;
  trace_event(m->trace, now_ns, (int)c->id, "dax_read_submit", "gpa %#llx file_offset %#llx ready_ns %llu",
              (unsigned long long)(f->gfn << 12), (unsigned long long)f->file_offset,
              (unsigned long long)ps_to_ns(ready_ps));
  if (vcpu_blocks) block_on_read(m, c, ex, now_ps);
  return true;
}

bool machine_dax_fail_read(struct machine *m, const struct ept_fault *f, uint64_t now_ps) {
  return push_read(m, (struct dax_read){f->gfn, f->file_offset, now_ps, 0, true}, now_ps);
}

void machine_dax_why_lost(const struct machine *m, const struct ept_fault *f, uint64_t now_ps, char *why,
                          size_t len) {
  const struct machine_dax *d = m->dax;
  char t[32];
  const enum dax_page_state ps =
      d ? dax_file_page_state(&d->file, f->file_offset, ps_to_ns(now_ps)) : DAX_PAGE_BEYOND_EOF;
  if (d && ps == DAX_PAGE_TRUNCATED && d->truncated) {
    format_ms(d->truncate_at_ps, t, sizeof t);
    snprintf(why, len, "the host truncated the file at %s from %llu to %llu bytes, so the page is gone from "
             "its page cache", t, (unsigned long long)d->last_truncate.old_size,
             (unsigned long long)d->last_truncate.new_size);
  } else if (f->loss == EPT_LOSS_TRUNCATED) {
    snprintf(why, len, "the page lies past the end of the %llu-byte file",
             (unsigned long long)(d ? dax_file_size(&d->file) : 0));
  } else {
    snprintf(why, len, "the page is lost on the host (%s)", ept_loss_name(f->loss));
  }
}

void machine_dax_efault(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                        uint64_t now_ps) {
  struct machine_dax *d = m->dax;
  char sym[160], why[200];
  guest_image_symbolize(m->img, ex->rip, sym, sizeof sym);
  struct vcpu_sregs s;
  vcpu_get_sregs(c->v, &s);
  const char *mode = s.cpl == 3 ? "user mode" : "kernel mode";
  const enum dax_page_state ps = d ? dax_file_page_state(&d->file, f->file_offset, ps_to_ns(now_ps)) : DAX_PAGE_BEYOND_EOF;
  machine_dax_why_lost(m, f, now_ps, why, sizeof why);
  if (d) d->efaults++;
  trace_event(m->trace, ps_to_ns(now_ps), (int)c->id, "efault", "gpa %#llx rip %#llx sym %s file_offset %#llx reason %s",
              (unsigned long long)ex->ept.gpa, (unsigned long long)ex->rip, sym, (unsigned long long)f->file_offset,
              ps == DAX_PAGE_TRUNCATED ? "truncated" : ps == DAX_PAGE_BEYOND_EOF ? "beyond_eof" : ept_loss_name(f->loss));
  machine_end(m, now_ps, OUTCOME_EFAULT_EXIT, "KVM_RUN failed with EFAULT on vCPU %u, which QEMU reports as \"kvm run "
              "failed: Bad address\" before it stops the VM: a synchronous %s fault on gpa %#llx (virtiofs DAX window, "
              "file offset %#llx) at rip %#llx = %s (%s) cannot be resolved: %s",
              c->id, access_word(ex->ept.access), (unsigned long long)ex->ept.gpa, (unsigned long long)f->file_offset,
              (unsigned long long)ex->rip, sym, mode, why);
}

/* ---------- summary ---------- */

static const char *const dax_keys[] = {"window_gpa",  "window_bytes", "file_bytes",   "page_cache_hits",
                                       "page_cache_reads", "reads_done", "reads_failed", "pages_truncated",
                                       "efault_exits", "copy_efaults", "efault_fixups", "sigbus_kills"};
#define N_DAX_KEYS (sizeof dax_keys / sizeof *dax_keys)

bool machine_dax_section(struct machine *m, struct report_section *out) {
  struct machine_dax *d = m->dax;
  if (!d) return false;
  /* What the guest made of the page errors the host reported (its own statistics):
   * dax_read copies that returned -EFAULT, kernel accesses fixed up, tasks killed. */
  uint64_t copy_efaults = 0, fixups = 0, kills = 0;
  for (unsigned k = 0; k < (unsigned)m->layout.n_processes; k++) {
    struct apfsim_proc_stats ps;
    if (machine_read_proc(m, k, &ps)) copy_efaults += ps.efaults;
  }
  for (unsigned i = 0; i < m->n; i++) {
    struct apfsim_vcpu_stats gs;
    struct diag err;
    if (!guest_read_vcpu_stats(m->img, m->mem, m->ram_bytes, i, &gs, &err)) continue;
    fixups += gs.efault_fixups;
    kills += gs.sigbus_kills;
  }
  const uint64_t row[N_DAX_KEYS] = {d->gpa,        d->bytes,      dax_file_size(&d->file),
                                    d->hits,       d->reads_started, d->reads_done,
                                    d->reads_failed, d->file.stats.pages_truncated, d->efaults,
                                    copy_efaults,  fixups,        kills};
  _Static_assert(sizeof row == sizeof d->summary_row, "one value per key");
  memcpy(d->summary_row, row, sizeof row);
  *out = (struct report_section){"dax", dax_keys, N_DAX_KEYS, d->summary_row, 1, false};
  return true;
}
