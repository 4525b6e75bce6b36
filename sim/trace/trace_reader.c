/* trace_reader.c — reads a trace back (see trace.h, docs/trace-format.md).
 *
 * Strict on purpose: a trace is evidence, so anything the writer would not
 * have produced (a missing header, a bad line, events out of order, a
 * missing or wrong "# trace-end") is reported as "FILE:LINE: field:
 * problem" rather than guessed around. The whole header is parsed at open;
 * events are read one line at a time so huge traces need no memory. */
#include "trace/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "trace/trace_format.h"

struct trace_reader {
  char *path;
  FILE *f;
  char *line; /* current line, newline stripped */
  size_t line_cap;
  size_t line_len;
  long line_no;
  char *work; /* copy of an event line, cut into name and fields */
  size_t work_cap;

  struct trace_kv *hdr;
  size_t n_hdr;
  struct trace_block *blocks;
  size_t n_blocks;

  uint64_t events;
  uint64_t last_time;
  int last_cpu;
  long last_line;
  bool ended;
};

enum line_status { LINE_ERROR = -1, LINE_EOF = 0, LINE_OK = 1 };

/* diag_at, with control characters shown as \xNN: messages quote the
 * offending text, which in a corrupt file can be anything but a newline, and
 * a message must stay one printable line (DESIGN.md §4). */
static bool reader_fail(struct diag *d, const char *file, long line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool reader_fail(struct diag *d, const char *file, long line, const char *field, const char *fmt, ...) {
  char raw[DIAG_MAX], msg[DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  size_t n = 0;
  for (const char *p = raw; *p && n + 5 < sizeof msg; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch < 0x20 || ch == 0x7f)
      n += (size_t)snprintf(msg + n, sizeof msg - n, "\\x%02x", ch);
    else
      msg[n++] = (char)ch;
  }
  msg[n] = '\0';
  return diag_at(d, file, line, field, "%s", msg);
}

static enum line_status read_line(struct trace_reader *r, struct diag *d) {
  errno = 0;
  ssize_t n = getline(&r->line, &r->line_cap, r->f);
  if (n < 0) {
    if (ferror(r->f)) {
      reader_fail(d, r->path, r->line_no + 1, NULL, "read error: %s", strerror(errno));
      return LINE_ERROR;
    }
    return LINE_EOF;
  }
  r->line_no++;
  size_t len = (size_t)n;
  if (memchr(r->line, '\0', len)) {
    reader_fail(d, r->path, r->line_no, "line", "NUL byte (binary data, not a trace)");
    return LINE_ERROR;
  }
  if (r->line[len - 1] != '\n') {
    reader_fail(d, r->path, r->line_no, "line", "no newline at the end of the file (truncated?)");
    return LINE_ERROR;
  }
  r->line[--len] = '\0';
  if (memchr(r->line, '\r', len)) {
    reader_fail(d, r->path, r->line_no, "line", "carriage return (CRLF line endings?)");
    return LINE_ERROR;
  }
  r->line_len = len;
  return LINE_OK;
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const struct trace_kv *find_key(const struct trace_reader *r, const char *key) {
  for (size_t i = 0; i < r->n_hdr; i++)
    if (strcmp(r->hdr[i].key, key) == 0) return &r->hdr[i];
  return NULL;
}

static const struct trace_block *find_block(const struct trace_reader *r, const char *name) {
  for (size_t i = 0; i < r->n_blocks; i++)
    if (strcmp(r->blocks[i].name, name) == 0) return &r->blocks[i];
  return NULL;
}

static bool oom(struct trace_reader *r, struct diag *d) {
  return reader_fail(d, r->path, r->line_no, NULL, "out of memory");
}

static bool add_field(struct trace_reader *r, const char *key, size_t key_len, const char *value,
                      struct diag *d) {
  struct trace_kv *h = realloc(r->hdr, (r->n_hdr + 1) * sizeof *h);
  if (!h) return oom(r, d);
  r->hdr = h;
  char *k = strndup(key, key_len), *v = strdup(value);
  if (!k || !v) {
    free(k);
    free(v);
    return oom(r, d);
  }
  r->hdr[r->n_hdr++] = (struct trace_kv){.key = k, .value = v, .line = r->line_no};
  return true;
}

/* Growing text of the block being read. */
struct text {
  char *s;
  size_t len, cap;
};

static bool text_append_line(struct text *t, const char *s, size_t n) {
  if (t->cap - t->len < n + 2) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap - t->len < n + 2) cap *= 2;
    char *p = realloc(t->s, cap);
    if (!p) return false;
    t->s = p;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len++] = '\n';
  t->s[t->len] = '\0';
  return true;
}

/* Lines from "# begin NAME" (already read) through "# end NAME". */
static bool read_block(struct trace_reader *r, const char *name, struct diag *d) {
  long begin_line = r->line_no;
  struct text t = {.s = strdup(""), .len = 0, .cap = 1}; /* an empty block is "", not NULL */
  if (!t.s) return oom(r, d);
  for (;;) {
    enum line_status st = read_line(r, d);
    if (st == LINE_ERROR) goto fail;
    if (st == LINE_EOF) {
      reader_fail(d, r->path, r->line_no, name,
              "file ends inside the block begun on line %ld (no \"# end %s\"; truncated?)", begin_line,
              name);
      goto fail;
    }
    const char *l = r->line;
    if (strcmp(l, "#|") == 0 || starts_with(l, TRACE_BLOCK_LINE_PREFIX)) {
      size_t skip = l[2] ? 3 : 2;
      if (!text_append_line(&t, l + skip, r->line_len - skip)) {
        oom(r, d);
        goto fail;
      }
      continue;
    }
    if (starts_with(l, "# end ")) {
      if (strcmp(l + 6, name) != 0) {
        reader_fail(d, r->path, r->line_no, name, "\"%s\" closes a different block than \"# begin %s\" (line %ld)",
                l, name, begin_line);
        goto fail;
      }
      break;
    }
    reader_fail(d, r->path, r->line_no, name,
            "expected a block line (\"#| text\") or \"# end %s\" (block begun on line %ld)", name,
            begin_line);
    goto fail;
  }
  struct trace_block *b = realloc(r->blocks, (r->n_blocks + 1) * sizeof *b);
  char *n = strdup(name);
  if (!b || !n) {
    if (b) r->blocks = b;
    free(n);
    oom(r, d);
    goto fail;
  }
  r->blocks = b;
  r->blocks[r->n_blocks++] = (struct trace_block){.name = n, .text = t.s, .line = begin_line};
  return true;
fail:
  free(t.s);
  return false;
}

static bool parse_header(struct trace_reader *r, struct diag *d) {
  enum line_status st = read_line(r, d);
  if (st == LINE_ERROR) return false;
  if (st == LINE_EOF) return reader_fail(d, r->path, 0, "header", "empty file, not an apfsim trace");
  static const char magic[] = "# " TRACE_MAGIC_KEY " ";
  if (!starts_with(r->line, magic))
    return reader_fail(d, r->path, 1, "header", "not an apfsim trace (the first line must be \"# %s %d\")",
                   TRACE_MAGIC_KEY, TRACE_FORMAT_VERSION);
  const char *ver = r->line + strlen(magic);
  char expected[16];
  snprintf(expected, sizeof expected, "%d", TRACE_FORMAT_VERSION);
  if (strcmp(ver, expected) != 0)
    return reader_fail(d, r->path, 1, TRACE_MAGIC_KEY, "format version \"%s\" is not supported (this build reads %d)",
                   ver, TRACE_FORMAT_VERSION);

  for (;;) {
    st = read_line(r, d);
    if (st == LINE_ERROR) return false;
    if (st == LINE_EOF)
      return reader_fail(d, r->path, r->line_no, "header", "file ends inside the header (no \"# header-end\"; truncated?)");
    const char *l = r->line;
    if (strcmp(l, "# header-end") == 0) return true;
    if (!starts_with(l, "# "))
      return reader_fail(d, r->path, r->line_no, "header",
                     "expected \"# key value\", \"# begin NAME\" or \"# header-end\", got \"%.40s\"", l);
    const char *key = l + 2;
    size_t key_len = strcspn(key, " ");
    const char *value = key[key_len] ? key + key_len + 1 : "";
    if (key_len == 5 && starts_with(key, "begin")) {
      if (!trace_valid_block_name(value, strlen(value)))
        return reader_fail(d, r->path, r->line_no, "header", "invalid block name \"%s\"", value);
      if (find_block(r, value) || find_key(r, value))
        return reader_fail(d, r->path, r->line_no, value, "block name used twice in the header");
      /* The line buffer is reused for the block's lines: keep the name. */
      char *name = strdup(value);
      if (!name) return oom(r, d);
      bool ok = read_block(r, name, d);
      free(name);
      if (!ok) return false;
      continue;
    }
    char keybuf[128];
    snprintf(keybuf, sizeof keybuf, "%.*s", (int)(key_len < 100 ? key_len : 100), key);
    if (key_len == 0 || key_len >= 100 || !trace_valid_key(keybuf))
      return reader_fail(d, r->path, r->line_no, "header", "invalid header key \"%s\"", keybuf);
    if (trace_reserved_key(keybuf))
      return reader_fail(d, r->path, r->line_no, keybuf, "misplaced \"# %s\" line in the header", keybuf);
    const struct trace_kv *prev = find_key(r, keybuf);
    if (prev) return reader_fail(d, r->path, r->line_no, keybuf, "duplicate header field (first on line %ld)", prev->line);
    if (find_block(r, keybuf))
      return reader_fail(d, r->path, r->line_no, keybuf, "header field has the name of a block");
    if (!add_field(r, key, key_len, value, d)) return false;
  }
}

struct trace_reader *trace_reader_open(const char *path, struct diag *d) {
  struct trace_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    free(r);
    diag_set(d, "%s: out of memory", path);
    return NULL;
  }
  r->f = fopen(path, "r");
  if (!r->f) {
    reader_fail(d, path, 0, NULL, "cannot open trace: %s", strerror(errno));
    trace_reader_close(r);
    return NULL;
  }
  r->last_cpu = TRACE_CPU_DEV;
  if (!parse_header(r, d)) {
    trace_reader_close(r);
    return NULL;
  }
  return r;
}

const char *trace_reader_path(const struct trace_reader *r) { return r->path; }
size_t trace_reader_header_count(const struct trace_reader *r) { return r->n_hdr; }
const struct trace_kv *trace_reader_header_at(const struct trace_reader *r, size_t i) {
  return i < r->n_hdr ? &r->hdr[i] : NULL;
}
const struct trace_kv *trace_reader_header(const struct trace_reader *r, const char *key) {
  return find_key(r, key);
}
size_t trace_reader_block_count(const struct trace_reader *r) { return r->n_blocks; }
const struct trace_block *trace_reader_block_at(const struct trace_reader *r, size_t i) {
  return i < r->n_blocks ? &r->blocks[i] : NULL;
}
const struct trace_block *trace_reader_block(const struct trace_reader *r, const char *name) {
  return find_block(r, name);
}

static bool parse_u64(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    unsigned digit = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

static enum trace_read_status read_trailer(struct trace_reader *r, struct trace_record *rec, struct diag *d) {
  static const char prefix[] = "# trace-end ";
  uint64_t n;
  const char *num = r->line + strlen(prefix);
  if (!parse_u64(num, strlen(num), &n)) {
    reader_fail(d, r->path, r->line_no, "trace-end", "\"%s\" is not an event count", num);
    return TRACE_READ_ERROR;
  }
  if (n != r->events) {
    reader_fail(d, r->path, r->line_no, "trace-end", "says %" PRIu64 " events, the file has %" PRIu64, n, r->events);
    return TRACE_READ_ERROR;
  }
  *rec = (struct trace_record){.line = r->line, .line_no = r->line_no, .name = "", .fields = ""};
  long trailer_line = r->line_no;
  size_t keep_cap = r->work_cap;
  /* The trailer stays visible in rec->line: park it in the work buffer
   * before checking that nothing follows it. */
  if (keep_cap < r->line_len + 1) {
    char *w = realloc(r->work, r->line_len + 1);
    if (!w) {
      reader_fail(d, r->path, r->line_no, NULL, "out of memory");
      return TRACE_READ_ERROR;
    }
    r->work = w;
    r->work_cap = r->line_len + 1;
  }
  memcpy(r->work, r->line, r->line_len + 1);
  rec->line = r->work;
  enum line_status st = read_line(r, d);
  if (st == LINE_ERROR) return TRACE_READ_ERROR;
  if (st == LINE_OK) {
    reader_fail(d, r->path, r->line_no, "trace-end", "text after \"# trace-end\" (line %ld)", trailer_line);
    return TRACE_READ_ERROR;
  }
  r->ended = true;
  r->line_no = trailer_line;
  return TRACE_READ_END;
}

enum trace_read_status trace_reader_next(struct trace_reader *r, struct trace_record *rec, struct diag *d) {
  if (r->ended) {
    *rec = (struct trace_record){.line = r->work, .line_no = r->line_no, .name = "", .fields = ""};
    return TRACE_READ_END;
  }
  enum line_status st = read_line(r, d);
  if (st == LINE_ERROR) return TRACE_READ_ERROR;
  if (st == LINE_EOF) {
    reader_fail(d, r->path, r->line_no + 1, "trace-end",
            "missing: the file ends after %" PRIu64 " events without \"# trace-end\" (truncated?)", r->events);
    return TRACE_READ_ERROR;
  }
  const char *l = r->line;
  if (l[0] == '#') {
    if (starts_with(l, "# trace-end ")) return read_trailer(r, rec, d);
    reader_fail(d, r->path, r->line_no, "event", "header line after \"# header-end\": \"%.40s\"", l);
    return TRACE_READ_ERROR;
  }

  if (r->work_cap < r->line_len + 1) {
    char *w = realloc(r->work, r->line_len + 1);
    if (!w) {
      reader_fail(d, r->path, r->line_no, NULL, "out of memory");
      return TRACE_READ_ERROR;
    }
    r->work = w;
    r->work_cap = r->line_len + 1;
  }
  memcpy(r->work, l, r->line_len + 1);
  char *p = r->work;

  while (*p == ' ') p++;
  size_t n = strcspn(p, " ");
  uint64_t time_ns;
  if (!parse_u64(p, n, &time_ns)) {
    reader_fail(d, r->path, r->line_no, "time", "\"%.*s\" is not a time in ns", (int)(n < 40 ? n : 40), p);
    return TRACE_READ_ERROR;
  }
  p += n;
  while (*p == ' ') p++;
  n = strcspn(p, " ");
  int cpu;
  if (!trace_cpu_parse(p, n, &cpu)) {
    reader_fail(d, r->path, r->line_no, "cpu", "\"%.*s\" is not an event source (cpuN, host or dev)",
            (int)(n < 40 ? n : 40), p);
    return TRACE_READ_ERROR;
  }
  p += n;
  while (*p == ' ') p++;
  char *name = p;
  n = strcspn(p, " ");
  if (!trace_valid_event_name(name, n)) {
    reader_fail(d, r->path, r->line_no, "name", "\"%.*s\" is not an event name ([a-z0-9_]+)", (int)(n < 40 ? n : 40),
            name);
    return TRACE_READ_ERROR;
  }
  char *fields = name + n;
  if (*fields == ' ') *fields++ = '\0';

  if (r->events > 0 && (time_ns < r->last_time || (time_ns == r->last_time && cpu < r->last_cpu))) {
    char now[TRACE_CPU_LABEL_MAX], before[TRACE_CPU_LABEL_MAX];
    trace_cpu_label(cpu, now);
    trace_cpu_label(r->last_cpu, before);
    reader_fail(d, r->path, r->line_no, "time",
            "event at %" PRIu64 " ns (%s) comes after one at %" PRIu64 " ns (%s, line %ld): not in (time, cpu) order",
            time_ns, now, r->last_time, before, r->last_line);
    return TRACE_READ_ERROR;
  }
  r->events++;
  r->last_time = time_ns;
  r->last_cpu = cpu;
  r->last_line = r->line_no;
  *rec = (struct trace_record){
      .time_ns = time_ns, .cpu = cpu, .name = name, .fields = fields, .line = r->line, .line_no = r->line_no};
  return TRACE_READ_EVENT;
}

void trace_reader_close(struct trace_reader *r) {
  if (!r) return;
  if (r->f) fclose(r->f);
  for (size_t i = 0; i < r->n_hdr; i++) {
    free((char *)r->hdr[i].key);
    free((char *)r->hdr[i].value);
  }
  for (size_t i = 0; i < r->n_blocks; i++) {
    free((char *)r->blocks[i].name);
    free((char *)r->blocks[i].text);
  }
  free(r->hdr);
  free(r->blocks);
  free(r->line);
  free(r->work);
  free(r->path);
  free(r);
}
