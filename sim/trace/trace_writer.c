/* trace_writer.c — writes the event trace (see trace.h, docs/trace-format.md).
 *
 * vCPUs run in quanta, so events reach the writer slightly out of order; they
 * wait in a buffer until the caller knows no earlier event can still come
 * (trace_flush_until), then go out sorted by (time, cpu, emission order).
 * Every written byte also feeds a running SHA-256, which is the run's
 * fingerprint even when no file is kept. */
#include "trace/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "trace/trace_format.h"

struct pending {
  uint64_t time_ns;
  uint64_t seq; /* emission order: the tie-break that makes the sort stable */
  size_t off, len;
  int cpu;
};

struct trace_writer {
  struct atomic_file out; /* out.f NULL when not writing a file */
  EVP_MD_CTX *md;

  struct pending *ev;
  size_t n_ev, cap_ev;
  char *arena; /* the buffered lines, back to back */
  size_t arena_len, arena_cap;
  uint64_t next_seq;
  uint64_t bound; /* events before it are on disk; earlier ones are too late */

  uint64_t written;
  uint64_t violations;
  bool io_failed;
  struct diag io_error;      /* the first I/O error */
  struct diag first_problem; /* the first rejected event */
};

static void note_problem(struct trace_writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_problem(struct trace_writer *w, const char *fmt, ...) {
  if (w->first_problem.msg[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->first_problem.msg, sizeof w->first_problem.msg, fmt, ap);
  va_end(ap);
}

static void emit(struct trace_writer *w, const char *bytes, size_t len) {
  EVP_DigestUpdate(w->md, bytes, len);
  if (w->out.f && !w->io_failed && fwrite(bytes, 1, len, w->out.f) != len) {
    w->io_failed = true;
    diag_set(&w->io_error, "%s: write failed: %s", w->out.path, strerror(errno));
  }
}

static void emit_str(struct trace_writer *w, const char *s) { emit(w, s, strlen(s)); }

static void free_writer(struct trace_writer *w) {
  atomic_file_abort(&w->out);
  EVP_MD_CTX_free(w->md);
  free(w->ev);
  free(w->arena);
  free(w);
}

static bool clean_value(const char *v) {
  size_t n = strlen(v);
  if (n > 0 && (v[0] == ' ' || v[n - 1] == ' ')) return false;
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return false;
  return true;
}

static bool check_header(const struct trace_kv *header, size_t n_header,
                         const struct trace_block *blocks, size_t n_blocks, struct diag *d) {
  for (size_t i = 0; i < n_header; i++) {
    const char *k = header[i].key, *v = header[i].value;
    if (!trace_valid_key(k))
      return diag_set(d, "trace header: invalid key \"%s\" (want [a-z0-9][a-z0-9._-]*)", k ? k : "(null)");
    if (trace_reserved_key(k)) return diag_set(d, "trace header: key \"%s\" is reserved", k);
    if (!v) return diag_set(d, "trace header: %s: no value", k);
    if (!clean_value(v))
      return diag_set(d, "trace header: %s: value has a control character or surrounding space", k);
    for (size_t j = 0; j < i; j++)
      if (strcmp(header[j].key, k) == 0) return diag_set(d, "trace header: %s: duplicate key", k);
  }
  for (size_t i = 0; i < n_blocks; i++) {
    const char *name = blocks[i].name;
    if (!name || !trace_valid_block_name(name, strlen(name)))
      return diag_set(d, "trace header: invalid block name \"%s\" (want [A-Za-z0-9._:/-]+)",
                      name ? name : "(null)");
    for (size_t j = 0; j < n_header; j++)
      if (strcmp(header[j].key, name) == 0)
        return diag_set(d, "trace header: block %s: name is also a header key", name);
    for (size_t j = 0; j < i; j++)
      if (strcmp(blocks[j].name, name) == 0) return diag_set(d, "trace header: block %s: duplicate", name);
    const char *text = blocks[i].text ? blocks[i].text : "";
    const char *cr = strchr(text, '\r');
    if (cr) {
      long line = 1;
      for (const char *p = text; p < cr; p++) line += *p == '\n';
      return diag_set(d, "trace header: block %s: line %ld: carriage return (normalize line endings first)",
                      name, line);
    }
  }
  return true;
}

static void write_block(struct trace_writer *w, const struct trace_block *b) {
  emit_str(w, "# begin ");
  emit_str(w, b->name);
  emit_str(w, "\n");
  const char *p = b->text ? b->text : "";
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    /* An empty line is "#|" alone: no trailing blank for editors to strip. */
    if (len == 0) {
      emit_str(w, "#|\n");
    } else {
      emit_str(w, TRACE_BLOCK_LINE_PREFIX);
      emit(w, p, len);
      emit_str(w, "\n");
    }
    p += len + (nl ? 1 : 0);
  }
  emit_str(w, "# end ");
  emit_str(w, b->name);
  emit_str(w, "\n");
}

struct trace_writer *trace_writer_open(const char *path, const struct trace_kv *header,
                                       size_t n_header, const struct trace_block *blocks,
                                       size_t n_blocks, struct diag *d) {
  if (!check_header(header, n_header, blocks, n_blocks, d)) return NULL;
  struct trace_writer *w = calloc(1, sizeof *w);
  if (!w) {
    diag_set(d, "trace: out of memory");
    return NULL;
  }
  w->md = EVP_MD_CTX_new();
  if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
    diag_set(d, "trace: cannot initialise SHA-256");
    free_writer(w);
    return NULL;
  }
  if (path && !atomic_file_open(&w->out, path, "trace", d)) {
    free_writer(w);
    return NULL;
  }
  char line[64];
  snprintf(line, sizeof line, "# %s %d\n", TRACE_MAGIC_KEY, TRACE_FORMAT_VERSION);
  emit_str(w, line);
  for (size_t i = 0; i < n_header; i++) {
    emit_str(w, "# ");
    emit_str(w, header[i].key);
    if (header[i].value[0]) {
      emit_str(w, " ");
      emit_str(w, header[i].value);
    }
    emit_str(w, "\n");
  }
  for (size_t i = 0; i < n_blocks; i++) write_block(w, &blocks[i]);
  emit_str(w, "# header-end\n");
  if (w->io_failed) {
    if (d) *d = w->io_error;
    free_writer(w);
    return NULL;
  }
  return w;
}

static bool reserve_arena(struct trace_writer *w, size_t more) {
  if (w->arena_cap - w->arena_len >= more) return true;
  size_t cap = w->arena_cap ? w->arena_cap : 4096;
  while (cap - w->arena_len < more) {
    if (cap > SIZE_MAX / 2) return false;
    cap *= 2;
  }
  char *a = realloc(w->arena, cap);
  if (!a) return false;
  w->arena = a;
  w->arena_cap = cap;
  return true;
}

static bool reserve_events(struct trace_writer *w) {
  if (w->n_ev < w->cap_ev) return true;
  size_t cap = w->cap_ev ? w->cap_ev * 2 : 256;
  struct pending *e = realloc(w->ev, cap * sizeof *e);
  if (!e) return false;
  w->ev = e;
  w->cap_ev = cap;
  return true;
}

static bool reject(struct trace_writer *w) {
  w->violations++;
  return false;
}

bool trace_event(struct trace_writer *w, uint64_t time_ns, int cpu, const char *name,
                 const char *fmt, ...) {
  if (!w) return false;
  char label[TRACE_CPU_LABEL_MAX];
  size_t name_len = name ? strlen(name) : 0;
  if (!trace_valid_event_name(name, name_len)) {
    note_problem(w, "trace: invalid event name \"%s\" at t=%" PRIu64 " ns (want [a-z0-9_]+)",
                 name ? name : "(null)", time_ns);
    return reject(w);
  }
  if (!trace_cpu_label(cpu, label)) {
    note_problem(w, "trace: event %s at t=%" PRIu64 " ns: invalid source id %d", name, time_ns, cpu);
    return reject(w);
  }
  if (time_ns < w->bound) {
    note_problem(w,
                 "trace: event %s at t=%" PRIu64 " ns (%s) arrived after the trace was flushed up "
                 "to t=%" PRIu64 " ns; it can no longer be placed in order",
                 name, time_ns, label, w->bound);
    return reject(w);
  }

  size_t prefix_max = 24 + TRACE_CPU_LABEL_MAX + name_len + 2;
  if (!reserve_arena(w, prefix_max + 128) || !reserve_events(w)) {
    note_problem(w, "trace: out of memory buffering events");
    return reject(w);
  }
  char *start = w->arena + w->arena_len;
  int n = snprintf(start, prefix_max, "%*" PRIu64 " %-*s %s", TRACE_TIME_WIDTH, time_ns,
                   TRACE_CPU_WIDTH, label, name);
  size_t len = (size_t)n;

  if (fmt && fmt[0]) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    size_t room = w->arena_cap - w->arena_len - len;
    int m = vsnprintf(start + len + 1, room - 1, fmt, ap);
    va_end(ap);
    if (m < 0) {
      va_end(ap2);
      note_problem(w, "trace: event %s: fields could not be formatted", name);
      return reject(w);
    }
    if ((size_t)m + 2 > room) { /* + separator and newline */
      if (!reserve_arena(w, len + (size_t)m + 3)) {
        va_end(ap2);
        note_problem(w, "trace: out of memory buffering events");
        return reject(w);
      }
      start = w->arena + w->arena_len;
      vsnprintf(start + len + 1, (size_t)m + 1, fmt, ap2);
    }
    va_end(ap2);
    const unsigned char *f = (const unsigned char *)start + len + 1;
    for (int i = 0; i < m; i++) {
      if (f[i] < 0x20 || f[i] == 0x7f) {
        note_problem(w, "trace: event %s at t=%" PRIu64 " ns: fields contain control character 0x%02x",
                     name, time_ns, f[i]);
        return reject(w);
      }
    }
    if (m > 0) {
      start[len] = ' ';
      len += (size_t)m + 1;
    }
  }
  start[len++] = '\n';

  w->ev[w->n_ev++] = (struct pending){
      .time_ns = time_ns, .seq = w->next_seq++, .off = w->arena_len, .len = len, .cpu = cpu};
  w->arena_len += len;
  return true;
}

static int cmp_pending(const void *pa, const void *pb) {
  const struct pending *a = pa, *b = pb;
  if (a->time_ns != b->time_ns) return a->time_ns < b->time_ns ? -1 : 1;
  if (a->cpu != b->cpu) return a->cpu < b->cpu ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Writes the events before bound (all of them when `all`), keeping the rest
 * buffered, compacted into a fresh arena. */
static bool flush(struct trace_writer *w, uint64_t bound, bool all, struct diag *d) {
  if (w->n_ev > 0) {
    qsort(w->ev, w->n_ev, sizeof *w->ev, cmp_pending);
    size_t k = 0;
    while (k < w->n_ev && (all || w->ev[k].time_ns < bound)) {
      emit(w, w->arena + w->ev[k].off, w->ev[k].len);
      k++;
    }
    w->written += k;
    size_t rest = w->n_ev - k, rest_bytes = 0;
    for (size_t i = k; i < w->n_ev; i++) rest_bytes += w->ev[i].len;
    if (rest == 0) {
      w->arena_len = 0;
    } else if (k > 0) {
      char *fresh = malloc(w->arena_cap);
      if (!fresh) return diag_set(d, "trace: out of memory");
      size_t off = 0;
      for (size_t i = k; i < w->n_ev; i++) {
        memcpy(fresh + off, w->arena + w->ev[i].off, w->ev[i].len);
        w->ev[i - k] = w->ev[i];
        w->ev[i - k].off = off;
        off += w->ev[i].len;
      }
      free(w->arena);
      w->arena = fresh;
      w->arena_len = rest_bytes;
    }
    w->n_ev = rest;
  }
  if (bound > w->bound) w->bound = bound;
  if (w->io_failed) {
    if (d) *d = w->io_error;
    return false;
  }
  return true;
}

bool trace_flush_until(struct trace_writer *w, uint64_t bound_ns, struct diag *d) {
  return flush(w, bound_ns, false, d);
}

void trace_sha256_hex(const struct trace_writer *w, char out[TRACE_SHA256_HEX_LEN + 1]) {
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_MD_CTX *copy = EVP_MD_CTX_new();
  /* Finalizing a copy leaves the running digest usable for more bytes. */
  if (!copy || EVP_MD_CTX_copy_ex(copy, w->md) != 1 || EVP_DigestFinal_ex(copy, digest, &len) != 1) {
    memset(out, '0', TRACE_SHA256_HEX_LEN);
    out[TRACE_SHA256_HEX_LEN] = '\0';
  } else {
    trace_hex32(digest, out);
  }
  EVP_MD_CTX_free(copy);
}

uint64_t trace_buffer_bytes(const struct trace_writer *w) {
  return w ? (uint64_t)w->arena_cap + (uint64_t)w->cap_ev * sizeof *w->ev : 0;
}

uint64_t trace_events_written(const struct trace_writer *w) { return w->written; }
uint64_t trace_violations(const struct trace_writer *w) { return w->violations; }

bool trace_close(struct trace_writer *w, char sha256_hex[TRACE_SHA256_HEX_LEN + 1], struct diag *d) {
  if (!w) return diag_set(d, "trace: no writer");
  if (w->violations > 0) {
    diag_set(d, "%s (%" PRIu64 " event%s rejected in all); trace not written", w->first_problem.msg,
             w->violations, w->violations == 1 ? "" : "s");
    free_writer(w);
    return false;
  }
  if (!flush(w, UINT64_MAX, true, d)) {
    free_writer(w);
    return false;
  }
  char line[64];
  snprintf(line, sizeof line, "# trace-end %" PRIu64 "\n", w->written);
  emit_str(w, line);
  if (sha256_hex) trace_sha256_hex(w, sha256_hex);
  if (w->out.f) {
    if (w->io_failed) {
      *d = w->io_error;
      free_writer(w);
      return false;
    }
    if (!atomic_file_commit(&w->out, "trace", d)) {
      free_writer(w);
      return false;
    }
  }
  free_writer(w);
  return true;
}

void trace_abort(struct trace_writer *w) {
  if (w) free_writer(w);
}
