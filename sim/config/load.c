/* load.c — XML file -> struct sim_config.
 *
 * Steps: read (size limit), parse with libxml2 (no network, no DTD, no entity
 * expansion, libxml2's depth and text limits), apply --set overrides to the
 * DOM, validate against the XSD, then fill the struct by walking the format
 * table (fields.c), checking ranges and cross-field rules. The first problem
 * found is returned as "FILE:LINE: field: problem"; libxml2 never prints.
 *
 * Not for: writing XML (write.c) or the override syntax (override.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#include "config/internal.h"

/* ------------------------------------------------------------ messages */

void config_message_escape(char *msg, size_t cap) {
  char out[DIAG_MAX];
  size_t n = 0;
  for (const char *p = msg; *p && n + 5 < sizeof out; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch >= 0x20 && ch != 0x7f) out[n++] = (char)ch;
    else if (ch == '\n') n += (size_t)snprintf(out + n, sizeof out - n, "\\n");
    else if (ch == '\t') n += (size_t)snprintf(out + n, sizeof out - n, "\\t");
    else if (ch == '\r') n += (size_t)snprintf(out + n, sizeof out - n, "\\r");
    else n += (size_t)snprintf(out + n, sizeof out - n, "\\x%02x", ch);
  }
  out[n] = '\0';
  snprintf(msg, cap, "%s", out);
}

/* Formats the first problem of a load into msg (one printable line); false
 * when a problem was already reported, since the first one is the one the
 * user sees. */
static bool first_failure(struct load_ctx *c, char msg[DIAG_MAX], const char *fmt, va_list ap) {
  if (c->failed) return false;
  c->failed = true;
  vsnprintf(msg, DIAG_MAX, fmt, ap);
  config_message_escape(msg, DIAG_MAX);
  return true;
}

bool config_fail(struct load_ctx *c, xmlNode *node, const char *field, const char *fmt, ...) {
  char msg[DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  bool first = first_failure(c, msg, fmt, ap);
  va_end(ap);
  if (!first) return false;

  size_t override = 0;
  long line = 0;
  if (node) {
    override = (size_t)(uintptr_t)node->_private;
    xmlNode *at = node->type == XML_ATTRIBUTE_NODE ? node->parent : node;
    line = at ? xmlGetLineNo(at) : 0;
  }
  if (override > 0 && override <= c->n_overrides) {
    /* A value that came from the command line has no line; name the
     * override as the user wrote it. */
    const char *o = c->overrides[override - 1];
    const char *eq = strchr(o, '=');
    int plen = eq ? (int)(eq - o) : (int)strlen(o);
    char where[600];
    snprintf(where, sizeof where, "--set %.*s", plen, o);
    config_message_escape(where, sizeof where); /* the path as typed: keep the message one line */
    if (field && (int)strlen(field) == plen && strncmp(field, o, (size_t)plen) == 0)
      return diag_at(c->err, c->name, 0, where, "%s", msg);
    if (field) return diag_at(c->err, c->name, 0, where, "%s: %s", field, msg);
    return diag_at(c->err, c->name, 0, where, "%s", msg);
  }
  return diag_at(c->err, c->name, line, field, "%s", msg);
}

bool config_fail_in(struct load_ctx *c, const char *file, long line, const char *field, const char *fmt,
                    ...) {
  char msg[DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  bool first = first_failure(c, msg, fmt, ap);
  va_end(ap);
  return first ? diag_at(c->err, file, line, field, "%s", msg) : false;
}

/* libxml2 messages end in newlines and sometimes carry a second line. */
static void clean_message(const char *in, char *out, size_t len) {
  size_t n = 0;
  for (const char *p = in ? in : ""; *p && n + 1 < len; p++)
    out[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
  while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '.')) n--;
  out[n] = '\0';
}

/* ------------------------------------------------------------ DOM helpers */

xmlNode *config_child(xmlNode *elem, const char *name) {
  return config_nth_child(elem, name, 0);
}

xmlNode *config_nth_child(xmlNode *elem, const char *name, uint32_t index) {
  if (!elem) return NULL;
  for (xmlNode *n = elem->children; n; n = n->next)
    if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) && index-- == 0)
      return n;
  return NULL;
}

/* The trimmed text of an element or attribute (caller frees with xmlFree). */
static char *config_node_text(xmlNode *node) {
  xmlChar *raw = xmlNodeGetContent(node);
  if (!raw) raw = xmlStrdup((const xmlChar *)"");
  if (!raw) return NULL;
  char *s = (char *)raw;
  size_t len = strlen(s), start = 0;
  while (len > 0 &&
         (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
    len--;
  while (start < len &&
         (s[start] == ' ' || s[start] == '\t' || s[start] == '\n' || s[start] == '\r'))
    start++;
  memmove(s, s + start, len - start);
  s[len - start] = '\0';
  return s;
}

static uint32_t same_name_index(xmlNode *n) {
  uint32_t i = 0;
  for (xmlNode *p = n->prev; p; p = p->prev)
    if (p->type == XML_ELEMENT_NODE && !strcmp((const char *)p->name, (const char *)n->name)) i++;
  return i;
}

static bool has_same_name_sibling(xmlNode *n) {
  if (same_name_index(n) > 0) return true;
  for (xmlNode *p = n->next; p; p = p->next)
    if (p->type == XML_ELEMENT_NODE && !strcmp((const char *)p->name, (const char *)n->name))
      return true;
  return false;
}

/* Field path of a DOM node ("workload/process[2]/count", ".../@dist") and
 * its description, or NULL when the format has no such element. */
static const struct field *config_node_path(xmlNode *node, char *buf, size_t len) {
  enum { MAX_DEPTH = 32 };
  xmlNode *chain[MAX_DEPTH];
  size_t depth = 0;
  xmlNode *attr = NULL;
  if (node && node->type == XML_ATTRIBUTE_NODE) {
    attr = node;
    node = node->parent;
  }
  /* Everything below the root element, outermost first. */
  for (xmlNode *n = node;
       n && n->type == XML_ELEMENT_NODE && n->parent && n->parent->type == XML_ELEMENT_NODE;
       n = n->parent) {
    if (depth == MAX_DEPTH) {
      snprintf(buf, len, "(nested too deep)");
      return NULL;
    }
    chain[depth++] = n;
  }
  const struct field *f = &config_root;
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = depth; i-- > 0;) {
    xmlNode *n = chain[i];
    const struct field *child = f ? field_find(f->children, (const char *)n->name) : NULL;
    if (child && child->node == N_LEAF) child = NULL; /* a leaf holds no elements */
    bool indexed = child ? child->node == N_LIST : has_same_name_sibling(n);
    if (used < len)
      used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "/" : "", n->name);
    if (indexed && used < len)
      used += (size_t)snprintf(buf + used, len - used, "[%" PRIu32 "]", same_name_index(n) + 1);
    f = child ? child : field_find(f ? f->children : NULL, (const char *)n->name);
    if (i > 0 && f && f->node == N_LEAF) f = NULL;
  }
  if (attr) {
    char at[128];
    snprintf(at, sizeof at, "@%s", attr->name);
    if (used < len) snprintf(buf + used, len - used, "%s%s", used ? "/" : "", at);
    return f ? field_find(f->children, at) : NULL;
  }
  if (depth == 0) snprintf(buf, len, "%s", config_root.name);
  return f;
}

/* ------------------------------------------------------------ extraction */

static void join_path(char *buf, size_t len, const char *path, const char *name) {
  snprintf(buf, len, "%s%s%s", path, *path ? "/" : "", name);
}

static bool has_element_children(xmlNode *n) {
  for (xmlNode *k = n->children; k; k = k->next)
    if (k->type == XML_ELEMENT_NODE) return true;
  return false;
}

/* Parses a leaf's text with its type, range and alignment. */
static bool leaf_value(const struct field *f, const char *text, uint64_t *v, char *why,
                       size_t why_len) {
  if (f->type == T_STRING || f->type == T_HIST_FILE) {
    *v = 0;
    if (strlen(text) >= f->size) {
      snprintf(why, why_len, "value is %zu bytes long; at most %zu bytes allowed", strlen(text),
               f->size - 1);
      return false;
    }
    return !f->valid || !*text || f->valid(text, why, why_len);
  }
  if (!value_parse(f->type, f->flags, f->enums, text, v, why, why_len)) return false;
  if (f->type == T_ENUM || f->type == T_BOOL) return true;
  if ((f->flags & F_UNLIMITED) && *v == 0) return true;
  if (*v < f->min || *v > f->max) {
    char lo[40], hi[40];
    value_format(f->type, f->flags & ~F_UNLIMITED, f->enums, f->min, lo, sizeof lo);
    value_format(f->type, f->flags & ~F_UNLIMITED, f->enums, f->max, hi, sizeof hi);
    snprintf(why, why_len, "'%s' is out of range (%s..%s)", text, lo, hi);
    return false;
  }
  if ((f->flags & F_PAGE) && *v % CONFIG_PAGE_SIZE != 0) {
    snprintf(why, why_len, "'%s' is not a multiple of 4KiB", text);
    return false;
  }
  return true;
}

static bool read_leaf(struct load_ctx *c, const struct field *f, xmlNode *node, const char *path,
                      void *base) {
  if (node->type == XML_ELEMENT_NODE && has_element_children(node))
    return config_fail(c, node, path, "expects a value, not child elements");
  char *text = config_node_text(node);
  if (!text) return config_fail(c, node, path, "out of memory");
  bool ok = true;
  char why[512];
  char *dst = (char *)base + f->offset;
  if (f->type == T_STRING || f->type == T_HIST_FILE) {
    size_t n = strlen(text);
    uint64_t unused;
    if (!leaf_value(f, text, &unused, why, sizeof why)) {
      ok = config_fail(c, node, path, "%s", why);
    } else if (f->type == T_HIST_FILE) {
      xmlNode *elem = node->parent;
      if (config_child(elem, "bin"))
        ok = config_fail(c, node, path, "give either @file or <bin> elements, not both");
      else if (xmlHasProp(elem, (const xmlChar *)"inlined-from"))
        ok = config_fail(c, node, path, "give either @file or @inlined-from, not both");
      else if (n == 0)
        ok = config_fail(c, node, path, "missing value");
      else {
        memset(dst, 0, f->size);
        memcpy(dst, text, n);
        ok = histogram_read_file(c, node, path, text, base);
      }
    } else {
      memset(dst, 0, f->size);
      memcpy(dst, text, n);
    }
  } else {
    uint64_t v;
    if (!leaf_value(f, text, &v, why, sizeof why))
      ok = config_fail(c, node, path, "%s", why);
    else {
      field_store(f, base, v);
      if (f->after) f->after(base);
    }
  }
  xmlFree(text);
  return ok;
}

static bool read_group(struct load_ctx *c, const struct field *fields, xmlNode *elem,
                       const char *path, void *base);

static bool read_child(struct load_ctx *c, const struct field *f, xmlNode *child, const char *path,
                       void *base) {
  char sub[512];
  join_path(sub, sizeof sub, path, f->name);
  if (f->node == N_LEAF) return read_leaf(c, f, child, sub, base);
  if (f->node == N_GROUP) {
    void *gbase = (char *)base + f->offset;
    return read_group(c, f->children, child, sub, gbase) &&
           (!f->check || f->check(c, child, sub, gbase));
  }
  uint32_t count;
  memcpy(&count, (char *)base + f->count_offset, sizeof count);
  snprintf(sub + strlen(sub), sizeof sub - strlen(sub), "[%" PRIu32 "]", count + 1);
  if (count >= f->max_entries)
    return config_fail(c, child, sub, "more than %" PRIu32 " <%s> entries", f->max_entries,
                       f->name);
  void *entry = (char *)base + f->offset + (size_t)count * f->entry_size;
  if (f->entry_defaults) f->entry_defaults(entry);
  count++;
  memcpy((char *)base + f->count_offset, &count, sizeof count);
  return read_group(c, f->children, child, sub, entry) &&
         (!f->check || f->check(c, child, sub, entry));
}

static bool read_group(struct load_ctx *c, const struct field *fields, xmlNode *elem,
                       const char *path, void *base) {
  for (const struct field *f = fields; f->name; f++)
    if (f->flags & F_PRESENCE) field_store(f, base, 1);
  /* Attributes first: they choose what the child elements mean (a preset
   * sets defaults that explicit elements then override). */
  for (xmlAttr *a = elem->properties; a; a = a->next) {
    if (a->ns) continue; /* xsi:noNamespaceSchemaLocation and the like */
    char name[128], sub[512];
    snprintf(name, sizeof name, "@%s", a->name);
    join_path(sub, sizeof sub, path, name);
    const struct field *f = field_find(fields, name);
    if (!f) return config_fail(c, (xmlNode *)a, sub, "unknown attribute");
    if (!read_leaf(c, f, (xmlNode *)a, sub, base)) return false;
  }
  for (xmlNode *n = elem->children; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) continue;
    const struct field *f = field_find(fields, (const char *)n->name);
    if (!f) {
      char sub[512];
      join_path(sub, sizeof sub, path, (const char *)n->name);
      return config_fail(c, n, sub, "unknown element");
    }
    if (!read_child(c, f, n, path, base)) return false;
  }
  return true;
}

/* ------------------------------------------------------------ libxml2 errors */

static void on_generic_error(void *data, const char *fmt, ...) {
  /* Only reached for messages libxml2 does not route through the structured
   * handler; they must not reach stderr. The structured error that follows
   * (or the failed return value) is what gets reported. */
  (void)data;
  (void)fmt;
}

static void on_parse_error(void *data, xmlErrorPtr e) {
  struct load_ctx *c = data;
  if (c->failed || !e || e->level == XML_ERR_WARNING) return;
  char msg[DIAG_MAX];
  clean_message(e->message, msg, sizeof msg);
  if (e->domain == XML_FROM_SCHEMASV) return; /* on_schema_error's */
  if (e->domain == XML_FROM_SCHEMASP) {
    config_fail_in(c, c->name, e->line, "schema", "%s", msg);
    return;
  }
  if (strstr(msg, "not proper UTF-8") || e->code == XML_ERR_INVALID_ENCODING) {
    const char *bytes = strstr(msg, "Bytes:");
    config_fail_in(c, c->name, e->line, "xml",
                     "input is not valid UTF-8%s%s (declare the encoding if the file is not UTF-8)",
                     bytes ? " at bytes " : "", bytes ? bytes + 7 : "");
    return;
  }
  if (strstr(msg, "Excessive depth")) {
    config_fail_in(c, c->name, e->line, "xml", "elements nested more than %u levels deep",
                     xmlParserMaxDepth);
    return;
  }
  config_fail_in(c, c->name, e->line, "xml", "%s", msg);
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id) {
  (void)name;
  (void)external_id;
  (void)system_id;
  /* A DTD could declare entities (expansion bombs, external files); a config
   * never needs one, so refuse before the internal subset is parsed. */
  xmlParserCtxtPtr p = ctx;
  struct load_ctx *c = p->_private;
  config_fail_in(c, c->name, xmlSAX2GetLineNumber(ctx), "xml",
                   "DOCTYPE declarations are not allowed in a config");
  xmlStopParser(p);
}

/* libxml2 names an attribute only in its message: "Element 'x', attribute
 * 'y': ...". Returns 'y' (in buf) and the rest of the message. */
static const char *split_schema_message(const char *msg, char *attr, size_t len) {
  attr[0] = '\0';
  if (strncmp(msg, "Element '", 9) != 0) return msg;
  const char *p = strchr(msg + 9, '\'');
  if (!p) return msg;
  if (!strncmp(p, "', attribute '", 14)) {
    const char *name = p + 14, *q = strchr(name, '\'');
    if (!q) return msg;
    snprintf(attr, len, "%.*s", (int)(q - name), name);
    p = q;
  }
  return !strncmp(p, "': ", 3) ? p + 3 : msg;
}

/* Turns a schema-validation error into the field-and-problem form, worded
 * the way the loader words the same problem (the format table knows each
 * value's type), so a message does not depend on libxml2's phrasing. */
static void on_schema_error(void *data, xmlErrorPtr e) {
  struct load_ctx *c = data;
  if (c->failed || !e || e->level == XML_ERR_WARNING) return;
  char msg[DIAG_MAX], attr[128], path[1024], owner_path[512], names[512];
  clean_message(e->message, msg, sizeof msg);
  const char *problem = split_schema_message(msg, attr, sizeof attr);
  xmlNode *elem = e->node;
  if (!elem || elem->type != XML_ELEMENT_NODE) {
    config_fail_in(c, c->name, e->line, "schema", "%s", problem);
    return;
  }
  const struct field *owner = config_node_path(elem, owner_path, sizeof owner_path);
  if (owner && owner->node == N_LEAF) owner = NULL;

  if (e->code == XML_SCHEMAV_CVC_COMPLEX_TYPE_4 && e->str1) {
    snprintf(path, sizeof path, "%s/@%s", owner_path, (const char *)e->str1);
    config_fail(c, elem, path, "required attribute is missing");
    return;
  }
  xmlNode *node = elem;
  if (attr[0]) {
    xmlAttr *a = xmlHasProp(elem, (const xmlChar *)attr);
    if (a) node = (xmlNode *)a;
  }
  const struct field *f = config_node_path(node, path, sizeof path);
  if (attr[0] && node == elem) /* e.g. a namespaced attribute */
    snprintf(path, sizeof path, "%s/@%s", owner_path, attr);

  if (e->code == XML_SCHEMAV_CVC_COMPLEX_TYPE_3_2_1 && attr[0]) {
    names[0] = '\0';
    if (owner) field_names(owner->children, true, names, sizeof names);
    config_fail(c, node, path, "unknown attribute '%s' on <%s> (expected %s)", attr, elem->name,
                names[0] ? names : "no attributes");
    return;
  }
  if (f && f->node == N_LEAF) {
    if (node->type == XML_ELEMENT_NODE && has_element_children(node)) {
      config_fail(c, node, path, "expects a value, not child elements");
      return;
    }
    char *text = config_node_text(node);
    uint64_t v;
    char why[512];
    bool bad = text && !leaf_value(f, text, &v, why, sizeof why);
    xmlFree(text);
    if (bad) {
      config_fail(c, node, path, "%s", why);
      return;
    }
  }
  if (!attr[0] && strstr(problem, "This element is not expected")) {
    char parent_path[512];
    const struct field *parent =
        elem->parent && elem->parent->type == XML_ELEMENT_NODE
            ? config_node_path(elem->parent, parent_path, sizeof parent_path)
            : NULL;
    if (parent && parent->node != N_LEAF) {
      const char *holder = (const char *)elem->parent->name;
      field_names(parent->children, false, names, sizeof names);
      if (!field_find(parent->children, (const char *)elem->name))
        config_fail(c, elem, path, "unknown element <%s> in <%s> (expected %s)", elem->name, holder,
                    names[0] ? names : "no child elements");
      else
        config_fail(c, elem, path, "<%s> given more than once in <%s>", elem->name, holder);
      return;
    }
  }
  if (e->code == XML_SCHEMAV_CVC_COMPLEX_TYPE_2_3) {
    /* Show the stray text, which is usually a value put one level too high
     * (<machine>4</machine>). */
    xmlNode *text = elem->children;
    char *stray = NULL;
    for (; text && !stray; text = text->next) {
      if (text->type != XML_TEXT_NODE) continue;
      stray = config_node_text(text);
      if (stray && !stray[0]) {
        xmlFree(stray);
        stray = NULL;
      }
    }
    bool cut = stray && strlen(stray) > 40;
    if (cut) {
      size_t i = 40; /* on a UTF-8 character boundary */
      while (i > 0 && ((unsigned char)stray[i] & 0xc0) == 0x80) i--;
      stray[i] = '\0';
    }
    config_fail(c, elem, path, "<%s> holds elements, not text (found '%s%s')", elem->name,
                stray ? stray : "", cut ? "..." : "");
    xmlFree(stray);
    return;
  }
  config_fail(c, node, path, "%s", problem);
}

/* ------------------------------------------------------------ loading */

struct saved_handlers {
  xmlStructuredErrorFunc structured;
  void *structured_ctx;
  xmlGenericErrorFunc generic;
  void *generic_ctx;
};

/* libxml2 keeps its default error handlers per thread; route them into this
 * load for its duration and put them back afterwards. */
static void handlers_enter(struct load_ctx *c, struct saved_handlers *s) {
  s->structured = xmlStructuredError;
  s->structured_ctx = xmlStructuredErrorContext;
  s->generic = xmlGenericError;
  s->generic_ctx = xmlGenericErrorContext;
  xmlSetStructuredErrorFunc(c, on_parse_error);
  xmlSetGenericErrorFunc(c, on_generic_error);
}

static void handlers_leave(const struct saved_handlers *s) {
  xmlSetStructuredErrorFunc(s->structured_ctx, s->structured);
  xmlSetGenericErrorFunc(s->generic_ctx, s->generic);
}

static xmlDoc *parse(struct load_ctx *c, const char *xml, size_t len) {
  xmlParserCtxtPtr p = xmlCreateMemoryParserCtxt(xml, (int)len);
  if (!p) {
    config_fail_in(c, c->name, 0, NULL, "cannot create an XML parser (out of memory?)");
    return NULL;
  }
  /* No network, no entity substitution, no DTD loading, no XML_PARSE_HUGE:
   * libxml2's default limits (depth 256, 10 MB text nodes) stay on. */
  xmlCtxtUseOptions(p, XML_PARSE_NONET | XML_PARSE_BIG_LINES | XML_PARSE_NOCDATA);
  p->_private = c;
  p->sax->internalSubset = on_doctype;
  xmlParseDocument(p);
  xmlDoc *doc = p->myDoc;
  bool ok = p->wellFormed && !c->failed;
  p->myDoc = NULL;
  xmlFreeParserCtxt(p);
  if (!ok) {
    if (!c->failed) config_fail_in(c, c->name, 0, "xml", "not well-formed XML");
    xmlFreeDoc(doc);
    return NULL;
  }
  return doc;
}

static bool validate(struct load_ctx *c, xmlDoc *doc, const char *schema_path) {
  xmlSchemaParserCtxtPtr pc =
      schema_path ? xmlSchemaNewParserCtxt(schema_path)
                  : xmlSchemaNewMemParserCtxt(config_schema_xsd, (int)strlen(config_schema_xsd));
  if (!pc) {
    c->failed = true;
    return diag_at(c->err, schema_path ? schema_path : "<embedded schema>", 0, "schema",
                   "cannot read the schema");
  }
  struct load_ctx schema_ctx = {.name = schema_path ? schema_path : "<embedded schema>",
                                .err = c->err};
  xmlSchemaSetParserStructuredErrors(pc, on_parse_error, &schema_ctx);
  xmlSchemaPtr schema = xmlSchemaParse(pc);
  xmlSchemaFreeParserCtxt(pc);
  if (!schema) {
    c->failed = true;
    if (!schema_ctx.failed)
      diag_at(c->err, schema_ctx.name, 0, "schema", "not a usable XML schema");
    return false;
  }
  xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
  int rc = -1;
  if (vc) {
    xmlSchemaSetValidStructuredErrors(vc, on_schema_error, c);
    rc = xmlSchemaValidateDoc(vc, doc);
    xmlSchemaFreeValidCtxt(vc);
  }
  xmlSchemaFree(schema);
  if (rc != 0 && !c->failed)
    config_fail_in(c, c->name, 0, "schema", "the document does not match the schema");
  return rc == 0 && !c->failed;
}

static bool only_whitespace(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
  return true;
}

static bool load_document(struct load_ctx *c, const char *xml, size_t len,
                          const char *schema_path) {
  if (len > CONFIG_MAX_FILE_BYTES)
    return diag_at(c->err, c->name, 0, NULL,
                   "file is %zu bytes, more than the 16 MiB a config may have", len);
  if (only_whitespace(xml, len))
    return diag_at(c->err, c->name, 1, "xml", "document is empty (expected an <apfsim> element)");

  struct sim_config *tmp = calloc(1, sizeof *tmp);
  if (!tmp) return diag_at(c->err, c->name, 0, NULL, "out of memory");
  struct saved_handlers saved;
  handlers_enter(c, &saved);
  bool ok = false;
  xmlDoc *doc = parse(c, xml, len);
  xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (doc && !root) {
    config_fail_in(c, c->name, 1, "xml", "document has no root element");
  } else if (root && (root->ns || strcmp((const char *)root->name, config_root.name) != 0)) {
    if (root->ns)
      config_fail(c, root, config_root.name,
                  "root element is in namespace '%s'; apfsim configs use no namespace",
                  root->ns->href ? (const char *)root->ns->href : "");
    else
      config_fail(c, root, config_root.name, "root element is <%s>, expected <%s>", root->name,
                  config_root.name);
  } else if (root && config_apply_overrides(c, doc) && validate(c, doc, schema_path)) {
    config_defaults(tmp);
    ok = read_group(c, config_root.children, root, "", tmp) && config_root.check(c, root, "", tmp);
  }
  xmlFreeDoc(doc);
  handlers_leave(&saved);
  if (ok) {
    size_t n = strlen(c->name);
    if (n >= sizeof tmp->source_path) n = sizeof tmp->source_path - 1;
    memcpy(tmp->source_path, c->name, n);
    memcpy(c->out, tmp, sizeof *tmp);
  }
  free(tmp);
  return ok;
}

static void set_base_dir(struct load_ctx *c, const char *name) {
  const char *slash = strrchr(name, '/');
  size_t n = slash ? (size_t)(slash - name) + 1 : 0;
  if (n >= sizeof c->base_dir) n = 0;
  memcpy(c->base_dir, name, n);
  c->base_dir[n] = '\0';
}

bool config_load_buffer(const char *name, const char *xml, size_t len, const char *const *overrides,
                        size_t n_overrides, const char *schema_path, struct sim_config *cfg,
                        struct diag *err) {
  struct diag scratch;
  struct load_ctx c = {.name = name ? name : "<buffer>",
                       .overrides = overrides,
                       .n_overrides = n_overrides,
                       .err = err ? err : &scratch,
                       .out = cfg};
  set_base_dir(&c, c.name);
  c.err->msg[0] = '\0';
  return load_document(&c, xml, len, schema_path);
}

bool config_load(const char *path, const char *const *overrides, size_t n_overrides,
                 const char *schema_path, struct sim_config *cfg, struct diag *err) {
  struct diag scratch;
  if (!err) err = &scratch;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return diag_at(err, path, 0, NULL, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return diag_at(err, path, 0, NULL, "cannot stat: %s", strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return diag_at(err, path, 0, NULL, "is a directory, not a config file");
  }
  if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > CONFIG_MAX_FILE_BYTES) {
    close(fd);
    return diag_at(err, path, 0, NULL,
                   "file is %" PRIu64 " bytes, more than the 16 MiB a config may have",
                   (uint64_t)st.st_size);
  }
  /* Read at most one byte past the limit so pipes are bounded too. */
  size_t cap = CONFIG_MAX_FILE_BYTES + 1, len = 0;
  size_t want = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
  char *buf = malloc(want);
  if (!buf) {
    close(fd);
    return diag_at(err, path, 0, NULL, "out of memory");
  }
  size_t size = want;
  for (;;) {
    if (len == size) {
      size_t grow = size * 2 > cap ? cap : size * 2;
      if (grow == size) break;
      char *nb = realloc(buf, grow);
      if (!nb) {
        free(buf);
        close(fd);
        return diag_at(err, path, 0, NULL, "out of memory");
      }
      buf = nb;
      size = grow;
    }
    ssize_t r = read(fd, buf + len, size - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return diag_at(err, path, 0, NULL, "cannot read: %s", strerror(e));
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  if (len > CONFIG_MAX_FILE_BYTES) {
    free(buf);
    return diag_at(err, path, 0, NULL, "input is larger than the 16 MiB a config may have");
  }
  bool ok = config_load_buffer(path, buf, len, overrides, n_overrides, schema_path, cfg, err);
  free(buf);
  return ok;
}
