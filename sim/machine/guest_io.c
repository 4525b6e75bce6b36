/* guest_io.c — what the guest kernel tells the host through its ports (docs/guest.md
 * §1.7): console lines, panic records, "every process exited", process exits, task
 * switches, hung tasks;
 * and how a run ends: outcome and the one-sentence verdict a person reads.
 * Not for: running vCPUs (run.c), host faults (host.c), the JSON summary (summary.c). */
#include <stdarg.h>
#include <string.h>

#include "machine_internal.h"

void format_ms(uint64_t ps, char *buf, size_t len) {
  uint64_t us = ps / PS_PER_US;
  snprintf(buf, len, "%llu.%03llu ms", (unsigned long long)(us / 1000), (unsigned long long)(us % 1000));
}

const char *workload_kind_word(uint32_t kind) {
  switch (kind) {
    case APFSIM_WORK_COMPUTE: return "compute";
    case APFSIM_WORK_MEMORY: return "memory";
    case APFSIM_WORK_MIXED: return "mixed";
    case APFSIM_WORK_DAX_READ: return "dax-read";
    case APFSIM_WORK_DAX_COPY: return "dax-copy";
  }
  return "unknown";
}

/* Mnemonics of the architectural exception vectors (SDM vol. 3A table 6-1). */
static const char *vector_name(uint32_t v) {
  static const char *const names[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO",
                                      "#TS", "#NP", "#SS", "#GP", "#PF", "reserved", "#MF", "#AC", "#MC",
                                      "#XM", "#VE", "#CP"};
  return v < sizeof names / sizeof *names ? names[v] : v < 32 ? "reserved" : "interrupt";
}

static void stop(struct machine *m) {
  if (m->io.stop) m->io.stop(m->io.ctx);
}

void machine_end(struct machine *m, uint64_t at_ps, enum run_outcome o, const char *fmt, ...) {
  if (m->ended) return;
  m->ended = true;
  m->outcome = o;
  m->end_ps = at_ps;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->verdict, sizeof m->verdict, fmt, ap);
  va_end(ap);
  trace_event(m->trace, at_ps / PS_PER_NS, TRACE_CPU_HOST, "run_end", "outcome %s", outcome_name(o));
  stop(m);
}

void machine_fail(struct machine *m, uint64_t at_ps, const char *fmt, ...) {
  if (m->failed) return;
  m->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->failure, sizeof m->failure, fmt, ap);
  va_end(ap);
  if (m->ended) return;
  m->ended = true;
  m->end_ps = at_ps;
  m->outcome = OUTCOME_TIMEOUT; /* unused: a failed run has no outcome */
  snprintf(m->verdict, sizeof m->verdict, "internal error: %s", m->failure);
  stop(m);
}

bool machine_read_proc(const struct machine *m, unsigned k, struct apfsim_proc_stats *ps) {
  struct diag d;
  return guest_read_proc_stats(m->img, m->mem, m->ram_bytes, k, ps, &d);
}

/* ---------- console ---------- */

/* Trace fields carry no control characters: escape them (and the backslash), as \xNN. */
static void escape(const char *in, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t k = 0; k < n && o + 5 < cap; k++) {
    unsigned char ch = (unsigned char)in[k];
    if (ch == '\\' || ch == '"') {
      out[o++] = '\\';
      out[o++] = (char)ch;
    } else if (ch < 0x20 || ch >= 0x7f) {
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    } else {
      out[o++] = (char)ch;
    }
  }
  out[o] = '\0';
}

/* "text" in double quotes, escaped. */
static void quote(const char *in, size_t n, char *out, size_t cap) {
  out[0] = '"';
  escape(in, n, out + 1, cap - 2);
  size_t o = strlen(out);
  out[o++] = '"';
  out[o] = '\0';
}

static void console_line(struct machine *m, struct mvcpu *c, uint64_t at_ps) {
  char q[4 * MACHINE_CONSOLE_LINE + 8];
  quote(c->line, c->line_len, q, sizeof q);
  trace_event(m->trace, at_ps / PS_PER_NS, (int)c->id, "console", "vcpu %u text %s", c->id, q);
  if (m->console) {
    fprintf(m->console, "%.*s\n", (int)c->line_len, c->line);
    fflush(m->console);
  }
  c->line_len = 0;
}

static void console_byte(struct machine *m, struct mvcpu *c, uint8_t ch, uint64_t at_ps) {
  if (ch == '\n') {
    console_line(m, c, at_ps);
    return;
  }
  if (ch == '\r') return;
  c->line[c->line_len++] = (char)ch;
  if (c->line_len == sizeof c->line) console_line(m, c, at_ps); /* an over-long line is split */
}

/* ---------- verdicts ---------- */

size_t machine_appendf(char *buf, size_t len, size_t at, const char *fmt, ...) {
  if (at >= len) return at;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + at, len - at, fmt, ap);
  va_end(ap);
  return n < 0 ? at : at + (size_t)n;
}

/* "pid 1 compute 2000 ops, pid 2 ..." (or per class when there are many processes).
 * only_unfinished: processes with a target that have not exited, as "1234 of 5000 ops". */
static size_t describe_processes(const struct machine *m, char *buf, size_t len, bool only_unfinished,
                                 unsigned *listed) {
  size_t at = 0;
  *listed = 0;
  if (len) buf[0] = '\0'; /* no process listed: an empty list, not stack garbage */
  const unsigned n = (unsigned)m->layout.n_processes;
  const bool by_class = n > 8 && !only_unfinished;
  if (by_class) {
    unsigned k = 0;
    for (uint32_t cl = 0; cl < m->bi.n_classes; cl++) {
      const struct apfsim_workload_class *wc = &m->bi.classes[cl];
      uint64_t ops = 0;
      for (uint32_t j = 0; j < wc->count; j++, k++) {
        struct apfsim_proc_stats ps;
        if (machine_read_proc(m, k, &ps)) ops += ps.ops_done;
      }
      at = machine_appendf(buf, len, at, "%s%u %s (%llu ops)", cl ? ", " : "", wc->count, workload_kind_word(wc->kind),
                   (unsigned long long)ops);
      *listed += wc->count;
    }
    return at;
  }
  for (unsigned k = 0; k < n; k++) {
    struct apfsim_proc_stats ps;
    if (!machine_read_proc(m, k, &ps)) continue;
    const bool unfinished = ps.ops_target && ps.state != APFSIM_PROC_EXITED;
    if (only_unfinished && !unfinished) continue;
    const char *sep = *listed ? ", " : "";
    if (only_unfinished)
      at = machine_appendf(buf, len, at, "%spid %u %s %llu of %llu ops", sep, ps.pid, workload_kind_word(ps.kind),
                   (unsigned long long)ps.ops_done, (unsigned long long)ps.ops_target);
    else
      at = machine_appendf(buf, len, at, "%spid %u %s %llu ops", sep, ps.pid, workload_kind_word(ps.kind),
                   (unsigned long long)ps.ops_done);
    (*listed)++;
  }
  return at;
}

static uint64_t total_sync_faults(const struct machine *m, uint64_t *blocked_ps) {
  uint64_t n = 0, b = 0;
  for (unsigned i = 0; i < m->n; i++) {
    n += m->cpu[i].sync_faults;
    b += m->cpu[i].blocked_ps;
  }
  *blocked_ps = b;
  return n;
}

/* "; 1234 synchronous host faults blocked the vCPUs for 12.3 ms in all" or "". */
static void host_fault_note(const struct machine *m, char *buf, size_t len) {
  uint64_t blocked;
  uint64_t n = total_sync_faults(m, &blocked);
  buf[0] = '\0';
  if (!n) return;
  char b[32];
  format_ms(blocked, b, sizeof b);
  snprintf(buf, len, "; %llu synchronous host faults blocked the vCPUs for %s in all (%llu page reads, %llu "
           "write-backs)", (unsigned long long)n, b, (unsigned long long)m->fetches,
           (unsigned long long)m->writebacks);
}

static void end_all_exited(struct machine *m, struct mvcpu *c, uint64_t at_ps) {
  char procs[700], t[32], note[200];
  unsigned listed;
  describe_processes(m, procs, sizeof procs, false, &listed);
  format_ms(at_ps, t, sizeof t);
  host_fault_note(m, note, sizeof note);
  trace_event(m->trace, at_ps / PS_PER_NS, (int)c->id, "guest_shutdown", "processes %u", listed);
  char race[400];
  machine_race_note(m, race, sizeof race);
  machine_end(m, at_ps, OUTCOME_OK, "all %u processes finished: %s in %s simulated%s%s", listed, procs, t, note, race);
}

void machine_time_limit(struct machine *m, uint64_t end_ps, bool host_limit) {
  if (m->ended) return;
  /* A wait nothing can end is a hang at whatever horizon the run stopped (race_watch.c). */
  if (machine_race_judge_end(m, end_ps)) return;
  char procs[700], t[32], note[200];
  unsigned unfinished;
  describe_processes(m, procs, sizeof procs, true, &unfinished);
  format_ms(end_ps, t, sizeof t);
  host_fault_note(m, note, sizeof note);
  const unsigned n = (unsigned)m->layout.n_processes;
  if (host_limit) {
    /* Where the run stopped depends on the host: the trace says why it ends here. */
    trace_event(m->trace, end_ps / PS_PER_NS, TRACE_CPU_HOST, "host_limit", "limit max-host-seconds seconds %llu",
                (unsigned long long)m->cfg->limits.max_host_seconds);
    machine_end(m, end_ps, OUTCOME_TIMEOUT, "the host time limit (%llu s, limits/max-host-seconds) stopped the run "
                "at %s simulated with %u of %u processes unfinished%s%s%s",
                (unsigned long long)m->cfg->limits.max_host_seconds, t, unfinished, n, unfinished ? ": " : "",
                procs, note);
  } else if (unfinished) {
    machine_end(m, end_ps, OUTCOME_TIMEOUT, "the simulated time limit (%s, limits/max-sim-time) was reached with "
                "%u of %u processes unfinished: %s%s", t, unfinished, n, procs, note);
  } else {
    unsigned listed;
    describe_processes(m, procs, sizeof procs, false, &listed);
    machine_end(m, end_ps, OUTCOME_OK, "ran to the simulated time limit (%s) with no process left unfinished "
                "(unbounded ones run until the end): %s%s", t, listed ? procs : "no process started", note);
  }
}

void machine_memory_limit(struct machine *m, uint64_t end_ps, uint64_t trace_bytes, uint64_t share) {
  if (m->ended) return;
  char procs[700], t[32];
  unsigned unfinished;
  describe_processes(m, procs, sizeof procs, true, &unfinished);
  format_ms(end_ps, t, sizeof t);
  trace_event(m->trace, end_ps / PS_PER_NS, TRACE_CPU_HOST, "host_limit", "limit max-host-memory bytes %llu",
              (unsigned long long)trace_bytes);
  machine_end(m, end_ps, OUTCOME_TIMEOUT, "the host memory limit (%llu bytes, limits/max-host-memory) stopped the run "
              "at %s simulated: the trace buffer holds %llu bytes, more than the %llu left after guest RAM and the "
              "DAX window; %u of %u processes unfinished%s%s",
              (unsigned long long)m->cfg->limits.max_host_memory_bytes, t, (unsigned long long)trace_bytes,
              (unsigned long long)share, unfinished, (unsigned)m->layout.n_processes, unfinished ? ": " : "", procs);
}

static void end_panic(struct machine *m, struct mvcpu *c, uint32_t gpa, uint64_t at_ps) {
  struct apfsim_panic_record r;
  struct diag d = {{0}};
  char t[32];
  format_ms(at_ps, t, sizeof t);
  if (!guest_read_panic_record(m->mem, m->ram_bytes, gpa, &r, &d)) {
    trace_event(m->trace, at_ps / PS_PER_NS, (int)c->id, "guest_panic", "record %#x unreadable", gpa);
    machine_end(m, at_ps, OUTCOME_GUEST_PANIC, "guest panic on vCPU %u at %s, but its panic record is unreadable: %s",
                c->id, t, d.msg);
    return;
  }
  char sym[160], task[64], where[512];
  guest_image_symbolize(m->img, r.rip, sym, sizeof sym);
  const char *mode = (r.cs & 3) == 3 ? "user mode" : "kernel mode";
  struct apfsim_proc_stats ps;
  if (r.pid == APFSIM_PANIC_NO_PID || !machine_read_proc(m, r.pid - 1, &ps))
    snprintf(task, sizeof task, "no task (idle or boot)");
  else
    snprintf(task, sizeof task, "task pid %u (%s)", r.pid, workload_kind_word(ps.kind));
  if (r.vector == APFSIM_PANIC_NO_VECTOR)
    snprintf(where, sizeof where, "panic() called from %s (%s), %s", sym, mode, task);
  else
    snprintf(where, sizeof where, "%s (vector %u) at rip %#llx = %s (%s), %s, error code %#llx, CR2 %#llx",
             vector_name(r.vector), r.vector, (unsigned long long)r.rip, sym, mode, task,
             (unsigned long long)r.error_code, (unsigned long long)r.cr2);
  /* msg is the rest of the line (docs/trace-format.md); escaped, never quoted */
  char q[4 * APFSIM_PANIC_MSG_BYTES + 8], vec[32] = "";
  escape(r.message, strnlen(r.message, sizeof r.message), q, sizeof q);
  if (r.vector != APFSIM_PANIC_NO_VECTOR) snprintf(vec, sizeof vec, " vector %u", r.vector);
  trace_event(m->trace, at_ps / PS_PER_NS, (int)c->id, "guest_panic", "vcpu %u pid %u%s rip %#llx sym %s cr2 %#llx "
              "msg %s", c->id, r.pid, vec, (unsigned long long)r.rip, sym, (unsigned long long)r.cr2, q);
  char race[700];
  machine_race_panic_prefix(m, c, &r, race, sizeof race);
  machine_end(m, at_ps, OUTCOME_GUEST_PANIC, "%sguest panic on vCPU %u at %s: \"%s\"; %s", race, c->id, t, r.message,
              where);
}

/* Port 0xEE: the guest kernel is killing task `pid` with SIGBUS for a host page error it
 * could not recover from (docs/guest.md §1.7); its statistics say why. The guest would go
 * on; the run's outcome is this kill (docs/truncation.md). */
static void end_sigbus(struct machine *m, struct mvcpu *c, uint32_t pid, uint64_t at_ps) {
  struct apfsim_proc_stats ps;
  char t[32], sym[160], how[200];
  format_ms(at_ps, t, sizeof t);
  if (!pid || !machine_read_proc(m, pid - 1, &ps)) {
    trace_event(m->trace, at_ps / PS_PER_NS, (int)c->id, "sigbus", "pid %u unreadable", pid);
    machine_end(m, at_ps, OUTCOME_SIGBUS, "the guest kernel on vCPU %u killed task pid %u with SIGBUS at %s, but its "
                "statistics are unreadable", c->id, pid, t);
    return;
  }
  guest_image_symbolize(m->img, ps.sig_rip, sym, sizeof sym);
  if (ps.sig_code == APFSIM_SIGBUS_APF_PAGE_ERROR)
    snprintf(how, sizeof how, "page-ready reported a host page error (ready_flags PAGE_ERROR) for APF token %#llx; "
             "the address is unknown to the guest, a #PF-delivered APF carries only the token",
             (unsigned long long)ps.sig_token);
  else if (ps.sig_code == APFSIM_SIGBUS_VE_PAGE_ERROR)
    snprintf(how, sizeof how, "a synchronous #VE reported a host page error at address %#llx",
             (unsigned long long)ps.sig_addr);
  else
    snprintf(how, sizeof how, "signal code %u, address %#llx, token %#llx", ps.sig_code,
             (unsigned long long)ps.sig_addr, (unsigned long long)ps.sig_token);
  trace_event(m->trace, at_ps / PS_PER_NS, (int)c->id, "sigbus",
              "pid %u code %u addr %#llx token %#llx rip %#llx sym %s", pid, ps.sig_code, (unsigned long long)ps.sig_addr, (unsigned long long)ps.sig_token,
              (unsigned long long)ps.sig_rip, sym);
  machine_end(m, at_ps, OUTCOME_SIGBUS, "the guest kernel on vCPU %u killed task pid %u (%s) with SIGBUS at %s: %s; "
              "its access at rip %#llx = %s (user mode) cannot complete", c->id, pid, workload_kind_word(ps.kind), t,
              how, (unsigned long long)ps.sig_rip, sym);
}

enum vcpu_cb machine_port_out(void *ctx, struct vcpu *v, uint16_t port, unsigned bytes, uint32_t value) {
  struct machine *m = ctx;
  struct mvcpu *c = mv_of(m, v);
  (void)bytes;
  const uint64_t now_ps = mv_local_ps(m, c);
  switch (port) {
    case APFSIM_PORT_CONSOLE:
      console_byte(m, c, (uint8_t)value, now_ps);
      return VCPU_CB_OK;
    case APFSIM_PORT_PANIC:
      end_panic(m, c, value, now_ps);
      return VCPU_CB_EXIT;
    case APFSIM_PORT_SHUTDOWN:
      end_all_exited(m, c, now_ps);
      return VCPU_CB_EXIT;
    case APFSIM_PORT_PROC_EXIT: {
      struct apfsim_proc_stats ps;
      uint64_t ops = value && machine_read_proc(m, value - 1, &ps) ? ps.ops_done : 0;
      trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "task_exit", "pid %u ops %llu", value,
                  (unsigned long long)ops);
      return VCPU_CB_OK;
    }
    case APFSIM_PORT_TASK_SWITCH: {
      /* The guest's comm is its workload kind (guest/kernel/process.c); idle tasks are pid 0. */
      struct apfsim_proc_stats ps;
      const char *comm = !value                               ? "idle"
                         : machine_read_proc(m, value - 1, &ps) ? workload_kind_word(ps.kind)
                                                                : "unknown";
      trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "task_switch", "pid %u comm %s", value, comm);
      return VCPU_CB_OK;
    }
    case APFSIM_PORT_HUNG_TASK: {
      struct apfsim_proc_stats ps;
      const char *kind = value && machine_read_proc(m, value - 1, &ps) ? workload_kind_word(ps.kind) : "unknown";
      char t[32], limit[32];
      format_ms(now_ps, t, sizeof t);
      format_ms(m->cfg->guest.hung_task_timeout_ns * PS_PER_NS, limit, sizeof limit);
      trace_event(m->trace, now_ps / PS_PER_NS, (int)c->id, "hung_task", "pid %u", value);
      machine_end(m, now_ps, OUTCOME_HUNG_TASK, "the guest's hung-task watchdog on vCPU %u reported task pid %u (%s) "
                  "asleep longer than %s (guest/hung-task-timeout) at %s", c->id, value, kind, limit, t);
      return VCPU_CB_EXIT;
    }
    case APFSIM_PORT_SIGBUS:
      end_sigbus(m, c, value, now_ps);
      return VCPU_CB_EXIT;
    default:
      return VCPU_CB_OK; /* like an unclaimed ISA port: the write goes nowhere */
  }
}
