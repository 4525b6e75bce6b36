/* write.c — struct sim_config -> canonical XML.
 *
 * The effective configuration, as a trace header carries it: every field
 * written (defaults included) in the order of the format table, each value in
 * its canonical text (largest exact unit), histograms inlined as <bin>
 * elements with @inlined-from naming the file they came from. Only empty
 * strings and empty sections are left out, which load back as the same
 * (default) values. Two equal structs always give byte-identical text.
 *
 * Not for: pretty-printing user files (comments and layout are not kept).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

struct strbuf {
  char *p;
  size_t len, cap;
  bool oom;
};

static void sb_reserve(struct strbuf *b, size_t extra) {
  if (b->oom || b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return;
  }
  b->p = p;
  b->cap = cap;
}

static void sb_puts(struct strbuf *b, const char *s) {
  size_t n = strlen(s);
  sb_reserve(b, n);
  if (b->oom) return;
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct strbuf *b, const char *fmt,
                                                            ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = true;
    return;
  }
  sb_reserve(b, (size_t)n);
  if (b->oom) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void sb_escaped(struct strbuf *b, const char *s, bool attribute) {
  char one[2] = {0, 0};
  for (; *s; s++) {
    switch (*s) {
    case '&': sb_puts(b, "&amp;"); break;
    case '<': sb_puts(b, "&lt;"); break;
    case '>': sb_puts(b, "&gt;"); break;
    case '"': sb_puts(b, attribute ? "&quot;" : "\""); break;
    /* Attribute values would have these normalized to spaces on reading. */
    case '\n': sb_puts(b, attribute ? "&#10;" : "\n"); break;
    case '\r': sb_puts(b, "&#13;"); break;
    case '\t': sb_puts(b, attribute ? "&#9;" : "\t"); break;
    default: one[0] = *s; sb_puts(b, one);
    }
  }
}

static void indent(struct strbuf *b, int depth) {
  for (int i = 0; i < depth; i++) sb_puts(b, "  ");
}

/* The text of a leaf, or false when it is an empty string (left out). */
static bool leaf_text(const struct field *f, const void *base, char *buf, size_t len) {
  if (f->type == T_STRING || f->type == T_HIST_FILE) {
    const char *s = (const char *)base + f->offset;
    if (f->type == T_HIST_FILE || !s[0]) return false;
    snprintf(buf, len, "%s", s);
    return true;
  }
  value_format(f->type, f->flags, f->enums, field_value(f, base), buf, len);
  return true;
}

static void write_element(struct strbuf *out, const struct field *fields, const char *name,
                          const void *base, int depth, bool keep_empty);

static void write_children(struct strbuf *b, const struct field *fields, const void *base,
                           int depth) {
  char text[CONFIG_PATH_MAX];
  for (const struct field *f = fields; f->name; f++) {
    if (f->name[0] == '@') continue;
    const void *fbase = (const char *)base + (f->node == N_GROUP ? f->offset : 0);
    switch (f->node) {
    case N_LEAF:
      if (!leaf_text(f, base, text, sizeof text)) break;
      indent(b, depth);
      sb_printf(b, "<%s>", f->name);
      sb_escaped(b, text, false);
      sb_printf(b, "</%s>\n", f->name);
      break;
    case N_GROUP: write_element(b, f->children, f->name, fbase, depth, false); break;
    case N_LIST: {
      uint32_t count;
      memcpy(&count, (const char *)base + f->count_offset, sizeof count);
      for (uint32_t i = 0; i < count && i < f->max_entries; i++)
        write_element(b, f->children, f->name,
                      (const char *)base + f->offset + (size_t)i * f->entry_size, depth, true);
      break;
    }
    }
  }
}

static void write_element(struct strbuf *out, const struct field *fields, const char *name,
                          const void *base, int depth, bool keep_empty) {
  struct strbuf attrs = {0}, body = {0};
  char text[CONFIG_PATH_MAX];
  for (const struct field *f = fields; f->name; f++) {
    if (f->name[0] != '@' || !leaf_text(f, base, text, sizeof text)) continue;
    sb_printf(&attrs, " %s=\"", f->name + 1);
    sb_escaped(&attrs, text, true);
    sb_puts(&attrs, "\"");
  }
  write_children(&body, fields, base, depth + 1);
  if (attrs.oom || body.oom) out->oom = true;
  if (keep_empty || attrs.len || body.len) {
    indent(out, depth);
    sb_printf(out, "<%s%s", name, attrs.len ? attrs.p : "");
    if (body.len) {
      sb_puts(out, ">\n");
      sb_puts(out, body.p);
      indent(out, depth);
      sb_printf(out, "</%s>\n", name);
    } else {
      sb_puts(out, "/>\n");
    }
  }
  free(attrs.p);
  free(body.p);
}

char *config_to_xml(const struct sim_config *cfg) {
  struct strbuf b = {0};
  sb_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  sb_puts(&b, "<!-- apfsim effective configuration, canonical form (docs/config.md) -->\n");
  write_element(&b, config_root.children, config_root.name, cfg, 0, true);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}
