/* ftrace_line.c — one line of ftrace text → struct ftrace_record.
 *
 * Line layout (kernel/trace/trace_output.c prints the first part, the
 * tracepoint's TP_printk the rest):
 *   COMM-PID [ (TGID) ] [CPU] [FLAGS] SECS.FRAC: EVENT: FIELDS
 * COMM may contain spaces and dashes ("CPU 0/KVM-4145"), so the line is
 * anchored on the "[CPU]" column, and the PID is the digits after the last
 * dash before it. FLAGS is absent in `trace-cmd report` output. FRAC has 6
 * digits (µs) by default, up to 9 with ns timestamps; it is read as an
 * integer, never through a double.
 *
 * Field formats, from Linux include/trace/events/kvm.h and
 * arch/x86/kvm/trace.h (docs/ftrace-import.md has the versions). Each
 * event lists its formats newest first; the first that matches wins, and
 * text after a match (fields a later kernel appends) is accepted. */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#include "ftrace/ftrace.h"

static const char *const event_names[FTRACE_EV_COUNT] = {
    [FTRACE_EV_OTHER] = "other",
    [FTRACE_EV_TRY_ASYNC_GET_PAGE] = "kvm_try_async_get_page",
    [FTRACE_EV_REPEATED_FAULT] = "kvm_async_pf_repeated_fault",
    [FTRACE_EV_NOT_PRESENT] = "kvm_async_pf_not_present",
    [FTRACE_EV_READY] = "kvm_async_pf_ready",
    [FTRACE_EV_COMPLETED] = "kvm_async_pf_completed",
    [FTRACE_EV_PAGE_FAULT] = "kvm_page_fault",
    [FTRACE_EV_EXIT] = "kvm_exit",
};

const char *ftrace_event_name(enum ftrace_event kind) {
  return kind < FTRACE_EV_COUNT ? event_names[kind] : "other";
}

static enum ftrace_event kind_of(const char *name) {
  /* Renamed from kvm_async_pf_doublefault (same class, same fields). */
  if (!strcmp(name, "kvm_async_pf_doublefault")) return FTRACE_EV_REPEATED_FAULT;
  for (int k = FTRACE_EV_OTHER + 1; k < FTRACE_EV_COUNT; k++)
    if (!strcmp(name, event_names[k])) return (enum ftrace_event)k;
  return FTRACE_EV_OTHER;
}

/* ---- a tiny field matcher --------------------------------------------------
 * fmt is literal text with conversions:
 *   %x  hexadecimal, with or without 0x (TP_printk's %#llx, 0x%016llx and %lx
 *       all print that way; %#llx prints plain "0" for zero)  -> uint64_t *
 *   %u  decimal                                                -> uint64_t *
 *   %R  text up to the literal that follows in fmt (kvm_exit's reason, which
 *       may be several words: "EPT_VIOLATION" or "... FAILED_VMENTRY")
 *                                                              -> char *, size_t
 * A space in fmt matches one or more blanks. After the whole fmt, the text
 * must end or go on with a blank or a comma (a later kernel's extra fields). */

static const char *skip_blanks(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return s;
}

static const char *number(const char *s, unsigned base, uint64_t *out) {
  if (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isxdigit((unsigned char)s[2]))
    s += 2;
  uint64_t v = 0;
  const char *start = s;
  for (;; s++) {
    unsigned c = (unsigned char)*s, d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else break;
    if (v > (UINT64_MAX - d) / base) return NULL;
    v = v * base + d;
  }
  if (s == start) return NULL;
  *out = v;
  return s;
}

static bool match(const char *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bool ok = true;
  while (ok && *fmt) {
    if (*fmt == ' ') {
      if (*s != ' ' && *s != '\t') ok = false;
      s = skip_blanks(s);
      fmt++;
    } else if (fmt[0] == '%' && (fmt[1] == 'x' || fmt[1] == 'u')) {
      s = number(s, fmt[1] == 'x' ? 16 : 10, va_arg(ap, uint64_t *));
      ok = s != NULL;
      fmt += 2;
    } else if (fmt[0] == '%' && fmt[1] == 'R') {
      char *buf = va_arg(ap, char *);
      size_t len = va_arg(ap, size_t);
      fmt += 2;
      /* The literal after %R, up to the next conversion. */
      size_t lit = strcspn(fmt, "%");
      char stop[64];
      if (lit == 0 || lit >= sizeof stop) {
        ok = false;
        break;
      }
      memcpy(stop, fmt, lit);
      stop[lit] = '\0';
      const char *end = strstr(s, stop);
      if (!end || end == s || (size_t)(end - s) >= len) {
        ok = false;
        break;
      }
      memcpy(buf, s, (size_t)(end - s));
      buf[end - s] = '\0';
      s = end;
    } else {
      if (*s != *fmt) ok = false;
      s++;
      fmt++;
    }
  }
  va_end(ap);
  return ok && (*s == '\0' || *s == ' ' || *s == '\t' || *s == ',');
}

/* ---- per-event formats ----------------------------------------------------- */

static bool fields_of(struct ftrace_record *r, const char *f) {
  uint64_t a, b, c;
  switch (r->kind) {
    case FTRACE_EV_TRY_ASYNC_GET_PAGE:
    case FTRACE_EV_REPEATED_FAULT:
      /* kvm_async_get_page_class: "gva = %#llx, gfn = %#llx" */
      return match(f, "gva = %x, gfn = %x", &r->gva, &r->gfn);
    case FTRACE_EV_NOT_PRESENT:
    case FTRACE_EV_READY:
      /* kvm_async_pf_nopresent_ready: "token %#llx gva %#llx" */
      return match(f, "token %x gva %x", &r->token, &r->gva);
    case FTRACE_EV_COMPLETED:
      /* "gva %#llx address %#lx pfn %#llx" (early kernels), then without pfn */
      if (match(f, "gva %x address %x pfn %x", &r->gva, &r->address, &r->pfn))
        return r->has_pfn = true;
      return match(f, "gva %x address %x", &r->gva, &r->address);
    case FTRACE_EV_PAGE_FAULT:
      /* 6.1+: "vcpu %u rip 0x%lx address 0x%016llx error_code 0x%llx";
       * posted 2022 without the padding: "... address 0x%lx error_code %x";
       * before: "address %lx error_code %x" (all hex, even without 0x) */
      if (match(f, "vcpu %u rip %x address %x error_code %x", &a, &r->rip, &r->address,
                 &r->error_code)) {
        r->vcpu = (uint32_t)a;
        return r->has_vcpu = r->has_rip = a <= UINT32_MAX;
      }
      return match(f, "address %x error_code %x", &r->address, &r->error_code);
    case FTRACE_EV_EXIT:
      /* 5.10+: "vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx info2
       * 0x%016llx intr_info 0x%08x error_code 0x%08x"; before 5.10:
       * "vcpu %u reason %s rip 0x%lx info %llx %llx"; before the vcpu
       * field: "reason %s rip 0x%lx info %llx %llx" */
      if (match(f, "vcpu %u reason %R rip %x info1 %x info2 %x intr_info %x error_code %x", &a,
                r->reason, sizeof r->reason, &r->rip, &r->info1, &r->info2, &b, &c)) {
        if (a > UINT32_MAX || b > UINT32_MAX || c > UINT32_MAX) return false;
        r->vcpu = (uint32_t)a;
        r->intr_info = (uint32_t)b;
        r->exit_error_code = (uint32_t)c;
        return r->has_vcpu = r->has_rip = r->has_intr_info = true;
      }
      if (match(f, "vcpu %u reason %R rip %x info %x %x", &a, r->reason, sizeof r->reason,
                &r->rip, &r->info1, &r->info2)) {
        r->vcpu = (uint32_t)a;
        return r->has_vcpu = r->has_rip = a <= UINT32_MAX;
      }
      if (match(f, "reason %R rip %x info %x %x", r->reason, sizeof r->reason, &r->rip,
                &r->info1, &r->info2))
        return r->has_rip = true;
      return false;
    default: return true;
  }
}

static const char *expected_format(enum ftrace_event k) {
  switch (k) {
    case FTRACE_EV_TRY_ASYNC_GET_PAGE:
    case FTRACE_EV_REPEATED_FAULT: return "\"gva = %#llx, gfn = %#llx\"";
    case FTRACE_EV_NOT_PRESENT:
    case FTRACE_EV_READY: return "\"token %#llx gva %#llx\"";
    case FTRACE_EV_COMPLETED: return "\"gva %#llx address %#lx [pfn %#llx]\"";
    case FTRACE_EV_PAGE_FAULT:
      return "\"vcpu %u rip 0x%lx address 0x%016llx error_code 0x%llx\" or \"address %lx "
             "error_code %x\"";
    case FTRACE_EV_EXIT:
      return "\"vcpu %u reason %s rip 0x%lx info1 0x%016llx info2 0x%016llx intr_info 0x%08x "
             "error_code 0x%08x\" or \"[vcpu %u ]reason %s rip 0x%lx info %llx %llx\"";
    default: return "";
  }
}

/* ---- the line -------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static enum ftrace_line_status bad(char *why, size_t len,
                                                                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
  return FTRACE_LINE_BAD;
}

static bool starts_with(const char *s, const char *prefix) {
  return !strncmp(s, prefix, strlen(prefix));
}

/* "SECS.FRAC:" with 1..9 fraction digits, exactly, into ns. */
static const char *timestamp(const char *s, uint64_t *ns) {
  uint64_t secs;
  const char *p = number(s, 10, &secs);
  if (!p || p[0] != '.' || !isdigit((unsigned char)p[1])) return NULL;
  p++;
  uint64_t frac = 0;
  int digits = 0;
  for (; isdigit((unsigned char)*p); p++, digits++) {
    if (digits == 9) return NULL;
    frac = frac * 10 + (uint64_t)(*p - '0');
  }
  if (*p != ':') return NULL;
  for (; digits < 9; digits++) frac *= 10;
  if (secs > (UINT64_MAX - frac) / 1000000000u) return NULL;
  *ns = secs * 1000000000u + frac;
  return p + 1;
}

/* The "[CPU]" column: '[' after a blank, digits, ']' then a blank. */
static const char *cpu_column(const char *line, int *cpu, const char **after) {
  for (const char *q = strchr(line, '['); q; q = strchr(q + 1, '[')) {
    if (q == line || (q[-1] != ' ' && q[-1] != '\t')) continue;
    uint64_t v;
    const char *e = number(q + 1, 10, &v);
    if (!e || *e != ']' || (e[1] != ' ' && e[1] != '\t') || v > 100000) continue;
    *cpu = (int)v;
    *after = e + 1;
    return q;
  }
  return NULL;
}

static enum ftrace_line_status task_column(const char *start, const char *end,
                                           struct ftrace_record *r, char *why, size_t len) {
  while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
  /* The optional TGID column, "(  123)" or "(-----)". */
  if (end > start && end[-1] == ')') {
    const char *open = end - 1;
    while (open > start && *open != '(') open--;
    if (*open == '(') {
      end = open;
      while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    }
  }
  const char *digits = end;
  while (digits > start && isdigit((unsigned char)digits[-1])) digits--;
  if (digits == end || digits == start || digits[-1] != '-' || end - digits > 9)
    return bad(why, len, "line: expected COMM-PID before the [CPU] column");
  uint64_t pid;
  number(digits, 10, &pid);
  r->pid = (int)pid;
  size_t n = (size_t)(digits - 1 - start);
  if (n >= sizeof r->comm) n = sizeof r->comm - 1;
  memcpy(r->comm, start, n);
  r->comm[n] = '\0';
  return FTRACE_LINE_EVENT;
}

enum ftrace_line_status ftrace_parse_line(const char *line, struct ftrace_record *r, char *why,
                                          size_t why_len) {
  memset(r, 0, sizeof *r);
  char buf[4096];
  size_t n = strcspn(line, "\r\n");
  if (n >= sizeof buf) return bad(why, why_len, "line: longer than %zu bytes", sizeof buf - 1);
  memcpy(buf, line, n);
  buf[n] = '\0';
  const char *p = skip_blanks(buf);
  if (!*p || *p == '#') return FTRACE_LINE_SKIP;
  /* trace-cmd report's header lines and the tracer's own notes. */
  if (starts_with(p, "cpus=") || starts_with(p, "version =") || starts_with(p, "version=") ||
      (starts_with(p, "CPU ") && strstr(p, " is empty")) ||
      (strstr(p, "[LOST ") && strstr(p, " EVENTS]")))
    return FTRACE_LINE_SKIP;

  const char *after;
  const char *bracket = cpu_column(p, &r->cpu, &after);
  if (!bracket)
    return bad(why, why_len,
               "line: not an ftrace event line (expected \"COMM-PID [CPU] FLAGS SECS.USECS: "
               "EVENT: FIELDS\")");
  enum ftrace_line_status st = task_column(p, bracket, r, why, why_len);
  if (st != FTRACE_LINE_EVENT) return st;

  const char *s = skip_blanks(after);
  const char *rest = timestamp(s, &r->time_ns);
  if (!rest) {
    /* The flags column: irqs-off, need-resched, hardirq/softirq, preempt
     * depth and (5.x+) migrate-disable: 4 or 5 characters. */
    const char *f = s;
    while (*s && *s != ' ' && *s != '\t') s++;
    size_t fl = (size_t)(s - f);
    if (fl < 4 || fl > 6)
      return bad(why, why_len, "timestamp: expected SECS.USECS: after the [CPU] column");
    for (size_t i = 0; i < fl; i++)
      if (!isalnum((unsigned char)f[i]) && f[i] != '.')
        return bad(why, why_len, "flags: \"%.*s\" is not an ftrace flags column", (int)fl, f);
    memcpy(r->flags, f, fl);
    r->flags[fl] = '\0';
    r->has_flags = true;
    s = skip_blanks(s);
    rest = timestamp(s, &r->time_ns);
    if (!rest) {
      size_t tl = strcspn(s, " \t");
      return bad(why, why_len,
                 "timestamp: \"%.*s\" is not SECS.FRAC: (1 to 9 fraction digits, at most "
                 "18446744073 s)",
                 (int)(tl > 40 ? 40 : tl), s);
    }
  }
  s = skip_blanks(rest);
  const char *name = s;
  while (isalnum((unsigned char)*s) || *s == '_') s++;
  size_t nl = (size_t)(s - name);
  if (nl == 0 || *s != ':' || nl >= sizeof r->event)
    return bad(why, why_len, "event: expected \"EVENT:\" after the timestamp");
  memcpy(r->event, name, nl);
  r->event[nl] = '\0';
  r->kind = kind_of(r->event);
  const char *fields = skip_blanks(s + 1);
  if (!fields_of(r, fields))
    return bad(why, why_len, "%s: fields \"%.80s\" match no known format (expected %s)", r->event,
               fields, expected_format(r->kind));
  return FTRACE_LINE_EVENT;
}
