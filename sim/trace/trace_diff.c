/* trace_diff.c — finds the first place two traces differ and shows it the way
 * a person reads diffs: a unified-diff excerpt with the lines just before it.
 *
 * Only the first divergence matters: after it, everything is downstream of
 * the difference. Required header fields and blocks are compared before any
 * event, because two runs of different configs are not expected to agree. */
#include "trace/trace.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_format.h"

#define CONTEXT_LINES 3

/* A line both traces share, as it appears in each file. */
struct common_line {
  char *text;
  size_t cap;
  long line_a, line_b;
};

struct context {
  struct common_line ring[CONTEXT_LINES];
  size_t n;    /* lines held, up to CONTEXT_LINES */
  size_t next; /* ring slot the next line goes into */
};

static bool context_push(struct context *c, const char *prefix, const char *text, size_t len,
                         long line_a, long line_b) {
  struct common_line *l = &c->ring[c->next];
  size_t plen = strlen(prefix);
  if (l->cap < plen + len + 1) {
    char *t = realloc(l->text, plen + len + 1);
    if (!t) return false;
    l->text = t;
    l->cap = plen + len + 1;
  }
  memcpy(l->text, prefix, plen);
  memcpy(l->text + plen, text, len);
  l->text[plen + len] = '\0';
  l->line_a = line_a;
  l->line_b = line_b;
  c->next = (c->next + 1) % CONTEXT_LINES;
  if (c->n < CONTEXT_LINES) c->n++;
  return true;
}

static void context_free(struct context *c) {
  for (size_t i = 0; i < CONTEXT_LINES; i++) free(c->ring[i].text);
}

/* One side of the divergence: the line at that point, or a note when the
 * side has no such line at all (line 0). */
struct side {
  const char *text;
  long line;
};

static void print_hunk(FILE *out, const char *label_a, const char *label_b, const struct context *c,
                       struct side a, struct side b) {
  if (!out) return;
  fprintf(out, "--- %s\n+++ %s\n", label_a, label_b);
  long start_a = a.line, start_b = b.line;
  size_t first = (c->next + CONTEXT_LINES - c->n) % CONTEXT_LINES;
  if (c->n > 0) {
    start_a = c->ring[first].line_a;
    start_b = c->ring[first].line_b;
  }
  fprintf(out, "@@ -%ld,%zu +%ld,%zu @@\n", start_a, c->n + (a.line > 0), start_b, c->n + (b.line > 0));
  for (size_t i = 0; i < c->n; i++) fprintf(out, " %s\n", c->ring[(first + i) % CONTEXT_LINES].text);
  fprintf(out, "-%s\n+%s\n", a.text, b.text);
}

static void set_where(struct trace_divergence *w, long la, long lb, uint64_t ev, bool in_header,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void set_where(struct trace_divergence *w, long la, long lb, uint64_t ev, bool in_header,
                      const char *fmt, ...) {
  if (!w) return;
  w->line_a = la;
  w->line_b = lb;
  w->event_index = ev;
  w->in_header = in_header;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->what, sizeof w->what, fmt, ap);
  va_end(ap);
}

/* The n-th line of a block's text (0-based), as pointer + length; false past
 * the end. */
static bool block_line(const char *text, size_t n, const char **s, size_t *len) {
  const char *p = text;
  for (size_t i = 0; i < n; i++) {
    const char *nl = strchr(p, '\n');
    if (!nl) return false;
    p = nl + 1;
  }
  if (!*p) return false;
  *s = p;
  *len = strcspn(p, "\n");
  return true;
}

/* "#| text" or "#|" as the writer prints a block line. */
static char *block_line_as_written(const char *s, size_t len) {
  char *out = malloc(len + 4);
  if (!out) return NULL;
  if (len == 0)
    strcpy(out, "#|");
  else
    snprintf(out, len + 4, "%s%.*s", TRACE_BLOCK_LINE_PREFIX, (int)len, s);
  return out;
}

static enum trace_diff_result diff_block(const struct trace_reader *ra, const struct trace_reader *rb,
                                         const struct trace_block *a, const struct trace_block *b, FILE *out,
                                         struct trace_divergence *where, struct diag *d) {
  struct context c = {0};
  enum trace_diff_result res = TRACE_DIFF_IDENTICAL;
  char *ta = NULL, *tb = NULL;
  char end_a[160], end_b[160];
  snprintf(end_a, sizeof end_a, "# end %s", a->name);
  snprintf(end_b, sizeof end_b, "# end %s", b->name);
  for (size_t i = 0;; i++) {
    const char *sa, *sb;
    size_t la, lb;
    bool ha = block_line(a->text, i, &sa, &la), hb = block_line(b->text, i, &sb, &lb);
    if (!ha && !hb) break;
    long line_a = a->line + 1 + (long)i, line_b = b->line + 1 + (long)i;
    if (ha && hb && la == lb && memcmp(sa, sb, la) == 0) {
      char *t = block_line_as_written(sa, la);
      bool ok = t && context_push(&c, "", t, strlen(t), line_a, line_b);
      free(t);
      if (!ok) {
        diag_set(d, "trace diff: out of memory");
        res = TRACE_DIFF_ERROR;
        break;
      }
      continue;
    }
    ta = ha ? block_line_as_written(sa, la) : NULL;
    tb = hb ? block_line_as_written(sb, lb) : NULL;
    if ((ha && !ta) || (hb && !tb)) {
      diag_set(d, "trace diff: out of memory");
      res = TRACE_DIFF_ERROR;
      break;
    }
    if (out)
      fprintf(out, "traces differ in header block \"%s\", which must match: %s line %ld, %s line %ld\n", a->name,
              trace_reader_path(ra), line_a, trace_reader_path(rb), line_b);
    print_hunk(out, trace_reader_path(ra), trace_reader_path(rb), &c, (struct side){ta ? ta : end_a, line_a},
               (struct side){tb ? tb : end_b, line_b});
    set_where(where, line_a, line_b, 0, true, "header block %s", a->name);
    res = TRACE_DIFF_DIVERGED;
    break;
  }
  free(ta);
  free(tb);
  context_free(&c);
  return res;
}

static enum trace_diff_result diff_required(const struct trace_reader *ra, const struct trace_reader *rb,
                                            const char *name, FILE *out, struct trace_divergence *where,
                                            struct diag *d) {
  const struct trace_kv *ka = trace_reader_header(ra, name), *kb = trace_reader_header(rb, name);
  const struct trace_block *ba = trace_reader_block(ra, name), *bb = trace_reader_block(rb, name);
  if (ba && bb) return diff_block(ra, rb, ba, bb, out, where, d);
  if (!ka && !kb && !ba && !bb) return TRACE_DIFF_IDENTICAL;
  if (ka && kb && strcmp(ka->value, kb->value) == 0) return TRACE_DIFF_IDENTICAL;

  /* Differs, or present on one side only (as a field or a block). */
  char text_a[1200], text_b[1200];
  long line_a = 0, line_b = 0;
  if (ka) {
    snprintf(text_a, sizeof text_a, "# %s%s%s", ka->key, ka->value[0] ? " " : "", ka->value);
    line_a = ka->line;
  } else if (ba) {
    snprintf(text_a, sizeof text_a, "# begin %s", ba->name);
    line_a = ba->line;
  } else {
    snprintf(text_a, sizeof text_a, "(no \"%s\" in the header)", name);
  }
  if (kb) {
    snprintf(text_b, sizeof text_b, "# %s%s%s", kb->key, kb->value[0] ? " " : "", kb->value);
    line_b = kb->line;
  } else if (bb) {
    snprintf(text_b, sizeof text_b, "# begin %s", bb->name);
    line_b = bb->line;
  } else {
    snprintf(text_b, sizeof text_b, "(no \"%s\" in the header)", name);
  }
  if (out) fprintf(out, "traces differ in header field \"%s\", which must match\n", name);
  struct context none = {0};
  print_hunk(out, trace_reader_path(ra), trace_reader_path(rb), &none, (struct side){text_a, line_a},
             (struct side){text_b, line_b});
  set_where(where, line_a, line_b, 0, true, "header field %s", name);
  return TRACE_DIFF_DIVERGED;
}

static enum trace_diff_result diff_events(struct trace_reader *ra, struct trace_reader *rb, FILE *out,
                                          struct trace_divergence *where, struct diag *d) {
  struct context c = {0};
  enum trace_diff_result res = TRACE_DIFF_IDENTICAL;
  for (uint64_t index = 0;; index++) {
    struct trace_record ea, eb;
    enum trace_read_status sa = trace_reader_next(ra, &ea, d);
    if (sa == TRACE_READ_ERROR) {
      res = TRACE_DIFF_ERROR;
      break;
    }
    enum trace_read_status sb = trace_reader_next(rb, &eb, d);
    if (sb == TRACE_READ_ERROR) {
      res = TRACE_DIFF_ERROR;
      break;
    }
    if (sa == TRACE_READ_END && sb == TRACE_READ_END) break;
    if (sa == TRACE_READ_EVENT && sb == TRACE_READ_EVENT && strcmp(ea.line, eb.line) == 0) {
      if (!context_push(&c, "", ea.line, strlen(ea.line), ea.line_no, eb.line_no)) {
        diag_set(d, "trace diff: out of memory");
        res = TRACE_DIFF_ERROR;
        break;
      }
      continue;
    }
    if (out) {
      if (sa == TRACE_READ_END)
        fprintf(out, "traces diverge at event %" PRIu64 ": %s ends after %" PRIu64 " events, %s continues at line %ld\n",
                index, trace_reader_path(ra), index, trace_reader_path(rb), eb.line_no);
      else if (sb == TRACE_READ_END)
        fprintf(out, "traces diverge at event %" PRIu64 ": %s ends after %" PRIu64 " events, %s continues at line %ld\n",
                index, trace_reader_path(rb), index, trace_reader_path(ra), ea.line_no);
      else
        fprintf(out, "traces diverge at event %" PRIu64 ": %s line %ld, %s line %ld\n", index, trace_reader_path(ra),
                ea.line_no, trace_reader_path(rb), eb.line_no);
    }
    print_hunk(out, trace_reader_path(ra), trace_reader_path(rb), &c, (struct side){ea.line, ea.line_no},
               (struct side){eb.line, eb.line_no});
    set_where(where, ea.line_no, eb.line_no, index, false, "event %" PRIu64, index);
    res = TRACE_DIFF_DIVERGED;
    break;
  }
  context_free(&c);
  return res;
}

enum trace_diff_result trace_diff(const char *path_a, const char *path_b, const char *const *required,
                                  size_t n_required, FILE *out, struct trace_divergence *where, struct diag *d) {
  if (where) memset(where, 0, sizeof *where);
  struct trace_reader *ra = trace_reader_open(path_a, d);
  if (!ra) return TRACE_DIFF_ERROR;
  struct trace_reader *rb = trace_reader_open(path_b, d);
  if (!rb) {
    trace_reader_close(ra);
    return TRACE_DIFF_ERROR;
  }
  enum trace_diff_result res = TRACE_DIFF_IDENTICAL;
  for (size_t i = 0; i < n_required && res == TRACE_DIFF_IDENTICAL; i++)
    res = diff_required(ra, rb, required[i], out, where, d);
  if (res == TRACE_DIFF_IDENTICAL) res = diff_events(ra, rb, out, where, d);
  trace_reader_close(ra);
  trace_reader_close(rb);
  return res;
}
