/* host.c — the host (KVM) side of memory: what happens on an EPT violation (docs/mmu.md
 * "What the host layer does on an EPT violation"), the synchronous fault path (the vCPU
 * blocks in simulated time until its page is read from the swap device), reclaim under
 * the host memory limit with write-back of dirty victims, and scripted evictions.
 * Not for: the APF decision (sim/apf, through machine_fault_hooks), device timing (the
 * binding's swap device, through machine_io_ops). */
#include "machine_internal.h"

static const char *access_word(enum vcpu_access a) {
  switch (a) {
    case VCPU_ACCESS_READ: return "read";
    case VCPU_ACCESS_WRITE: return "write";
    case VCPU_ACCESS_FETCH: return "fetch";
  }
  return "?";
}

void machine_apply_flush(struct machine *m, const struct shadow_flush *f) {
  if (shadow_flush_needed(f)) vcpu_apply_shadow_flush(m->peers, m->n, f);
}

/* Every eviction reclaim makes: drop the page from every vCPU's TLB and, if the guest
 * wrote it since it came in, write it to the swap device (host/writeback-dirty).
 * CLOCK's aged vCPUs get a full TLB flush although Linux skips it on x86: an accessed bit
 * is set only when Unicorn walks the shadow tables, and which translations its TLB still
 * holds depends on its dynamic TLB sizing, which follows the host's wall clock. Without
 * the flush, CLOCK's victims (and so the whole run) would differ between a fast and a
 * slow host; with it, a page counts as accessed exactly when it was used since it aged. */
static void evicted(void *ctx, const struct reclaim_eviction *ev) {
  struct machine *m = ctx;
  const struct ept_change *ch = &ev->change;
  machine_apply_flush(m, &ch->flush);
  const struct shadow_flush aged = {.full_tlb_vcpus = ev->aged_vcpus};
  machine_apply_flush(m, &aged);
  m->evictions++;
  const bool write = ch->dirty && m->cfg->host.writeback_dirty;
  if (ch->dirty) m->evictions_dirty++;
  trace_event(m->trace, m->host_now_ps / PS_PER_NS, TRACE_CPU_HOST, "host_evict", "gpa %#llx dirty %d writeback %d",
              (unsigned long long)(ch->gfn << 12), ch->dirty, write);
  if (write && m->io.submit) {
    m->writebacks++;
    m->io.submit(m->io.ctx, MACHINE_IO_WRITEBACK, ch->gfn << 12, (uint32_t)PAGE_BYTES, m->host_now_ps);
  }
}

static void balance(struct machine *m, uint64_t protect) {
  if (m->reclaim) reclaim_balance(m->reclaim, protect, evicted, m);
}

bool machine_host_setup(struct machine *m, struct diag *err) {
  const struct host_config *h = &m->cfg->host;
  if (!h->memory_limit_bytes && !h->n_evictions) return true;
  struct reclaim_params p = {h->memory_limit_bytes, h->reclaim, m->cfg->seed, 0};
  m->reclaim = reclaim_create(m->ept, &p, err);
  if (!m->reclaim) return false;
  return reclaim_set_script(m->reclaim, h->evictions, h->n_evictions, err);
}

uint64_t machine_next_timed_event_ps(const struct machine *m) {
  /* the explorer's run end (window.c) is one: the host thread ends the run there even
   * when every vCPU waits for ever */
  const uint64_t end = machine_window_end_ps(m), dax = machine_dax_next_event_ps(m);
  const uint64_t first = end < dax ? end : dax;
  if (!m->reclaim) return first;
  uint64_t t = reclaim_script_next_ns(m->reclaim);
  t = t > MACHINE_NEVER / PS_PER_NS ? MACHINE_NEVER : t * PS_PER_NS;
  return t < first ? t : first;
}

void machine_deliver_due(struct machine *m, uint64_t now_ps) {
  if (m->ended || machine_window_end_due(m, now_ps)) return;
  machine_fetches_due(m, now_ps); /* swap-in completions whose time the device told */
  machine_dax_deliver_due(m, now_ps); /* page-cache read completions, the host truncate */
  if (!m->reclaim || m->ended) return;
  if (!m->started) {
    /* The image the simulator loaded may not fit the limit: reclaim it at time 0, now
     * that the device can take write-backs (the caller is running). */
    m->started = true;
    m->host_now_ps = 0;
    balance(m, EPT_NO_GFN);
  }
  if (machine_next_timed_event_ps(m) > now_ps) return;
  m->host_now_ps = now_ps;
  struct reclaim_range_result res = {0};
  size_t ran = reclaim_script_run_due(m->reclaim, now_ps / PS_PER_NS, evicted, m, &res);
  m->scripted_runs += ran;
  struct shadow_flush all = {.full_tlb_vcpus = res.tlb_vcpus};
  machine_apply_flush(m, &all);
  trace_event(m->trace, now_ps / PS_PER_NS, TRACE_CPU_HOST, "scripted_evict",
              "entries %zu evicted %llu declared_swapped %llu skipped %llu", ran, (unsigned long long)res.evicted,
              (unsigned long long)res.declared_swapped,
              (unsigned long long)(res.skipped_pinned + res.skipped_in_flight + res.skipped_other));
}

/* The vCPU waits for the read of its page: KVM's synchronous fault (DESIGN.md §2). */
bool machine_block_on_fetch(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                            uint64_t now_ps) {
  struct diag d = {{0}};
  const uint64_t gfn = f->gfn;
  bool ok;
  if (f->kind == EPT_FAULT_SWAP_IN) {
    if (!machine_fetch_start(m, gfn, c->id, now_ps)) return false;
    ok = true;
  } else {
    ok = ept_join_fetch(m->ept, gfn, c->id, &d);
  }
  if (!ok) {
    machine_fail(m, now_ps, "%s", d.msg);
    return false;
  }
  c->state = MV_BLOCKED;
  c->io_ready = false;
  c->since_ps = now_ps;
  c->fault_gpa = ex->ept.gpa;
  c->fault_rip = ex->rip;
  c->fault_during_delivery = ex->ept.during_delivery;
  c->sync_faults++;
  trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "sync_fault_start", "gpa %#llx rip %#llx access %s kind %s",
              (unsigned long long)ex->ept.gpa, (unsigned long long)ex->rip, access_word(ex->ept.access),
              f->kind == EPT_FAULT_SWAP_IN ? "swap_in" : "in_flight");
  mv_show_state(m, c, now_ps, ex->ept.gpa);
  return false;
}

void machine_efault_exit(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex, const struct ept_fault *f,
                         uint64_t now_ps) {
  char why[256], sym[160];
  ept_describe_fault(f, why, sizeof why);
  guest_image_symbolize(m->img, ex->rip, sym, sizeof sym);
  machine_end(m, now_ps, OUTCOME_EFAULT_EXIT, "KVM_RUN failed with EFAULT (\"kvm run failed: Bad address\") on "
              "vCPU %u: %s access to gpa %#llx at rip %#llx = %s: %s", c->id, access_word(ex->ept.access),
              (unsigned long long)ex->ept.gpa, (unsigned long long)ex->rip, sym, why);
}

bool machine_ept_violation(struct machine *m, struct mvcpu *c, const struct vcpu_exit *ex) {
  const uint64_t now_ps = mv_local_ps(m, c);
  const uint64_t gfn = ex->ept.gpa >> 12;
  struct ept_fault f;
  ept_classify(m->ept, gfn, &f);
  c->ept_violations++;
  trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "ept_violation", "gpa %#llx rip %#llx access %s kind %s%s",
              (unsigned long long)ex->ept.gpa, (unsigned long long)ex->rip, access_word(ex->ept.access),
              ept_fault_kind_name(f.kind), ex->ept.during_delivery ? " during_delivery" : "");
  if (++c->faults_without_progress >= MACHINE_LIVELOCK_FAULTS) {
    char sym[160];
    guest_image_symbolize(m->img, ex->rip, sym, sizeof sym);
    machine_end(m, now_ps, OUTCOME_LIVELOCK, "vCPU %u retired no instruction through %u host faults in a row (last "
                "gpa %#llx at rip %#llx = %s): the host memory limit (%llu KiB) is below what one instruction needs",
                c->id, MACHINE_LIVELOCK_FAULTS, (unsigned long long)ex->ept.gpa, (unsigned long long)ex->rip, sym,
                (unsigned long long)(m->cfg->host.memory_limit_bytes >> 10));
    return false;
  }
  m->host_now_ps = now_ps;
  struct diag d = {{0}};
  switch (f.kind) {
    case EPT_FAULT_RETRY:
      return true;
    case EPT_FAULT_ZERO_FILL:
      if (!ept_zero_fill(m->ept, gfn, &d)) {
        machine_fail(m, now_ps, "%s", d.msg);
        return false;
      }
      c->zero_fills++;
      balance(m, gfn);
      return true;
    case EPT_FAULT_SWAP_IN:
    case EPT_FAULT_IN_FLIGHT:
      if (m->apf) return machine_apf_fault(m, c, ex, &f, now_ps);
      if (m->hooks.decide && !ex->ept.during_delivery) {
        struct machine_host_fault hf = {c->id, ex->ept.gpa, ex->ept.gva, ex->rip, ex->ept.access, false, f, now_ps};
        if (m->hooks.decide(m->hooks.ctx, m, &hf) == MACHINE_FAULT_ASYNC) {
          if (f.kind == EPT_FAULT_SWAP_IN && m->io.submit && !machine_fetch_start(m, gfn, EPT_NO_VCPU, now_ps))
            return false;
          return !m->ended;
        }
      }
      return machine_block_on_fetch(m, c, ex, &f, now_ps);
    case EPT_FAULT_DAX:
      return machine_dax_fault(m, c, ex, &f, now_ps);
    case EPT_FAULT_UNRESOLVABLE:
      if (f.dax && !machine_apf_async(m)) {
        machine_dax_efault(m, c, ex, &f, now_ps);
        return false;
      }
      if (m->apf) return machine_apf_fault(m, c, ex, &f, now_ps); /* EFAULT, #VE or an async fault */
      /* fall through */
    case EPT_FAULT_NOT_MEMORY:
      machine_efault_exit(m, c, ex, &f, now_ps);
      return false;
  }
  return false;
}

void machine_io_done(struct machine *m, enum machine_io_kind kind, uint64_t gpa, uint64_t now_ps) {
  if (kind == MACHINE_IO_WRITEBACK) {
    m->writebacks_done++;
    return;
  }
  machine_fetch_reported(m, gpa >> 12, now_ps);
}

void machine_wake_io_waiters(struct machine *m, uint64_t waiters, uint64_t at_ps) {
  for (unsigned i = 0; i < m->n; i++) {
    if (!(waiters >> i & 1)) continue;
    struct mvcpu *c = &m->cpu[i];
    c->io_ready = true;
    /* A vCPU runs its slice ahead of the caller's time: it may have joined this read at
     * a local time past the completion. It waited for nothing then, and resumes where it
     * blocked. */
    const uint64_t at = at_ps > c->since_ps ? at_ps : c->since_ps;
    const uint64_t latency = at - c->since_ps;
    latency_hist_add(&c->sync_latency, latency / PS_PER_NS);
    c->sync_latency_sum_ns += latency / PS_PER_NS;
    trace_event(m->trace, at / PS_PER_NS, (int)i, "sync_fault_end", "gpa %#llx latency_ns %llu",
                (unsigned long long)c->fault_gpa, (unsigned long long)(latency / PS_PER_NS));
    if (m->io.kick) m->io.kick(m->io.ctx, i, at);
  }
}

void machine_page_in(struct machine *m, uint64_t gfn, uint64_t now_ps) {
  struct ept_change ch;
  struct diag d = {{0}};
  if (!ept_complete_fetch(m->ept, gfn, &ch, &d)) {
    machine_fail(m, now_ps, "%s", d.msg);
    return;
  }
  machine_apply_flush(m, &ch.flush);
  m->host_now_ps = now_ps;
  balance(m, gfn);
  machine_wake_io_waiters(m, ch.waiters, now_ps);
  machine_apf_fetch_done(m, gfn, false, now_ps);
  if (m->hooks.page_in) m->hooks.page_in(m->hooks.ctx, m, gfn, now_ps);
}
