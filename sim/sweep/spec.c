/* spec.c — loading a sweep file (see spec.h).
 *
 * Steps: read (size limit), parse with libxml2 (no network, no DTD), check
 * the root, validate against the embedded configs/sweep.xsd, then walk the
 * document: expand every parameter's values, check zips, duplicates, seeds,
 * window and metrics. Schema errors are reworded into "field: problem" with
 * the field named as in the sweep file, so messages do not depend on how
 * libxml2 phrases them (except for the element lists it suggests).
 *
 * Not for: the base config or the point grid's configs (plan.c). */
#include "sweep/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#include "sweep/quantity.h"
#include "sweep/row.h"
#include "sweep/series.h"

struct ctx {
  const char *name;
  struct diag *err;
  bool failed;
};

/* ------------------------------------------------------------ messages */

/* Control characters in a message would break the one-line format. */
static void escape(char *msg) {
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

__attribute__((format(printf, 4, 5))) static bool fail_at(struct ctx *c, long line,
                                                          const char *field, const char *fmt,
                                                          ...) {
  if (c->failed) return false; /* the first problem is the one reported */
  c->failed = true;
  char msg[DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  escape(msg);
  return diag_at(c->err, c->name, line, field, "%s", msg);
}

/* Elements that may repeat get a 1-based [k] in field paths. */
static bool repeats(const char *name) {
  static const char *const names[] = {"set", "param", "zip", "value", "metric"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i])) return true;
  return false;
}

static unsigned same_name_index(const xmlNode *n) {
  unsigned i = 1;
  for (const xmlNode *p = n->prev; p; p = p->prev)
    if (p->type == XML_ELEMENT_NODE && !strcmp((const char *)p->name, (const char *)n->name)) i++;
  return i;
}

/* Path of an element below the root ("zip[1]/param[2]/log"), plus
 * "/@attr" when attr is given. The root itself is "sweep". */
static void node_field(const xmlNode *elem, const char *attr, char *buf, size_t len) {
  const xmlNode *chain[64];
  size_t depth = 0;
  for (const xmlNode *n = elem; n && n->type == XML_ELEMENT_NODE && n->parent &&
                                n->parent->type == XML_ELEMENT_NODE && depth < 64;
       n = n->parent)
    chain[depth++] = n;
  size_t used = 0;
  buf[0] = '\0';
  if (depth == 0 && elem) used = (size_t)snprintf(buf, len, "%s", (const char *)elem->name);
  for (size_t i = depth; i-- > 0 && used < len;) {
    const char *name = (const char *)chain[i]->name;
    used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "/" : "", name);
    if (repeats(name) && used < len)
      used += (size_t)snprintf(buf + used, len - used, "[%u]", same_name_index(chain[i]));
  }
  if (attr && used < len) snprintf(buf + used, len - used, "%s@%s", used ? "/" : "", attr);
}

__attribute__((format(printf, 4, 5))) static bool fail_node(struct ctx *c, const xmlNode *elem,
                                                            const char *attr, const char *fmt,
                                                            ...) {
  if (c->failed) return false;
  char field[512], msg[DIAG_MAX];
  node_field(elem, attr, field, sizeof field);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return fail_at(c, elem ? xmlGetLineNo(elem) : 0, field, "%s", msg);
}

/* libxml2 messages end in a newline and a period. */
static void clean_message(const char *in, char *out, size_t len) {
  size_t n = 0;
  for (const char *p = in ? in : ""; *p && n + 1 < len; p++)
    out[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
  while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '.')) n--;
  out[n] = '\0';
}

/* ------------------------------------------------------------ DOM helpers */

static xmlNode *child(const xmlNode *elem, const char *name) {
  for (xmlNode *n = elem->children; n; n = n->next)
    if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name)) return n;
  return NULL;
}

/* Trimmed text of an element or attribute value; malloc'd. */
static char *trimmed(const char *s) {
  if (!s) s = "";
  const char *end = s + strlen(s);
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
    end--;
  char *out = malloc((size_t)(end - s) + 1);
  if (out) {
    memcpy(out, s, (size_t)(end - s));
    out[end - s] = '\0';
  }
  return out;
}

static char *node_text(const xmlNode *n) {
  xmlChar *raw = xmlNodeGetContent(n);
  char *t = trimmed((const char *)raw);
  xmlFree(raw);
  return t;
}

static char *attr_text(const xmlNode *n, const char *name) {
  xmlChar *raw = xmlGetProp(n, (const xmlChar *)name);
  if (!raw) return NULL;
  char *t = trimmed((const char *)raw);
  xmlFree(raw);
  return t;
}

/* ------------------------------------------------------------ libxml2 errors */

static void on_generic_error(void *data, const char *fmt, ...) {
  (void)data; /* routed through the structured handler; never to stderr */
  (void)fmt;
}

static void on_parse_error(void *data, xmlErrorPtr e) {
  struct ctx *c = data;
  if (c->failed || !e || e->level == XML_ERR_WARNING || e->domain == XML_FROM_SCHEMASV) return;
  char msg[DIAG_MAX];
  clean_message(e->message, msg, sizeof msg);
  if (e->domain == XML_FROM_SCHEMASP) {
    fail_at(c, e->line, "schema", "%s", msg);
    return;
  }
  if (e->code == XML_ERR_INVALID_ENCODING || strstr(msg, "not proper UTF-8")) {
    fail_at(c, e->line, "xml", "input is not valid UTF-8");
    return;
  }
  fail_at(c, e->line, "xml", "%s", msg);
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id) {
  (void)name;
  (void)external_id;
  (void)system_id;
  /* Entities could expand without bound or read files; a sweep needs none. */
  xmlParserCtxtPtr p = ctx;
  struct ctx *c = p->_private;
  fail_at(c, xmlSAX2GetLineNumber(ctx), "xml",
          "DOCTYPE declarations are not allowed in a sweep file");
  xmlStopParser(p);
}

/* What a value of each schema type looks like, for messages. */
static const char *expected_form(const char *name) {
  static const struct {
    const char *name, *form;
  } forms[] = {
      {"from", "a number with an optional unit (e.g. 10us, 64MiB, 4)"},
      {"to", "a number with an optional unit (e.g. 10us, 64MiB, 4)"},
      {"step", "a number with an optional unit (e.g. 10us, 64MiB, 4)"},
      {"per-decade", "a whole number"},
      {"points", "a whole number"},
      {"digits", "a whole number"},
      {"count", "a whole number"},
      {"first", "a whole number"},
      {"repetitions", "a whole number"},
      {"seeds", "a list of whole numbers"},
      {"warm-up", "a duration with a unit (ns, us, ms or s)"},
      {"measure", "a duration with a unit (ns, us, ms or s)"},
      {"path", "a config path as --set takes it (e.g. swap-device/latency/median)"},
      {"metric", "a summary key path (e.g. storage/mean_latency_ns)"},
      {"include-defaults", "true or false"},
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
    if (!strcmp(name, forms[i].name)) return forms[i].form;
  return NULL;
}

/* "Expected is ( a, b )" / "Expected is one of ( a, b )" -> "a, b". */
static bool expected_list(const char *problem, char *out, size_t len) {
  const char *p = strstr(problem, "Expected is ");
  if (!p) return false;
  p = strchr(p, '(');
  const char *q = p ? strchr(p, ')') : NULL;
  if (!p || !q) return false;
  p++;
  while (*p == ' ') p++;
  while (q > p && q[-1] == ' ') q--;
  snprintf(out, len, "%.*s", (int)(q - p), p);
  return true;
}

static void on_schema_error(void *data, xmlErrorPtr e) {
  struct ctx *c = data;
  if (c->failed || !e || e->level == XML_ERR_WARNING) return;
  char msg[DIAG_MAX], attr[128] = "", list[512];
  clean_message(e->message, msg, sizeof msg);
  const char *problem = msg;
  /* "Element 'x': ..." or "Element 'x', attribute 'y': ..." */
  if (!strncmp(msg, "Element '", 9)) {
    const char *q = strchr(msg + 9, '\'');
    if (q && !strncmp(q, "', attribute '", 14)) {
      const char *a = q + 14, *b = strchr(a, '\'');
      if (b) {
        snprintf(attr, sizeof attr, "%.*s", (int)(b - a), a);
        q = b;
      }
    }
    if (q && !strncmp(q, "': ", 3)) problem = q + 3;
  }
  xmlNode *elem = e->node;
  if (!elem || elem->type != XML_ELEMENT_NODE) {
    fail_at(c, e->line, "schema", "%s", problem);
    return;
  }
  const char *elem_name = (const char *)elem->name;
  if (e->code == XML_SCHEMAV_CVC_COMPLEX_TYPE_4 && e->str1) {
    fail_node(c, elem, (const char *)e->str1, "required attribute is missing");
    return;
  }
  if (e->code == XML_SCHEMAV_CVC_COMPLEX_TYPE_3_2_1 && attr[0]) {
    fail_node(c, elem, attr, "unknown attribute");
    return;
  }
  if (strstr(problem, "[facet") || strstr(problem, "is not a valid value of")) {
    const char *form = expected_form(attr[0] ? attr : elem_name);
    char *text = attr[0] ? attr_text(elem, attr) : node_text(elem);
    if (form)
      fail_node(c, elem, attr[0] ? attr : NULL, "'%s' is not %s", text ? text : "", form);
    else
      fail_node(c, elem, attr[0] ? attr : NULL, "%s", problem);
    free(text);
    return;
  }
  if (strstr(problem, "This element is not expected")) {
    if (expected_list(problem, list, sizeof list))
      fail_node(c, elem, NULL, "<%s> is not expected here (expected %s)", elem_name, list);
    else
      fail_node(c, elem, NULL, "<%s> is not expected here", elem_name);
    return;
  }
  if (strstr(problem, "Missing child element")) {
    if (expected_list(problem, list, sizeof list))
      fail_node(c, elem, NULL, "missing child element (expected %s)", list);
    else
      fail_node(c, elem, NULL, "missing child element");
    return;
  }
  if (strstr(problem, "Character content other than whitespace")) {
    fail_node(c, elem, NULL, "<%s> holds elements, not text", elem_name);
    return;
  }
  if (strstr(problem, "Element content is not allowed")) {
    fail_node(c, elem, NULL, "<%s> holds text, not elements", elem_name);
    return;
  }
  fail_node(c, elem, attr[0] ? attr : NULL, "%s", problem);
}

struct saved_handlers {
  xmlStructuredErrorFunc structured;
  void *structured_ctx;
  xmlGenericErrorFunc generic;
  void *generic_ctx;
};

/* libxml2 keeps default error handlers per thread: route them here for the
 * duration of a load and restore them after. */
static void handlers_enter(struct ctx *c, struct saved_handlers *s) {
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

static xmlDoc *parse(struct ctx *c, const char *xml, size_t len) {
  xmlParserCtxtPtr p = xmlCreateMemoryParserCtxt(xml, (int)len);
  if (!p) {
    fail_at(c, 0, NULL, "cannot create an XML parser (out of memory?)");
    return NULL;
  }
  xmlCtxtUseOptions(p, XML_PARSE_NONET | XML_PARSE_BIG_LINES | XML_PARSE_NOCDATA);
  p->_private = c;
  p->sax->internalSubset = on_doctype;
  xmlParseDocument(p);
  xmlDoc *doc = p->myDoc;
  bool ok = p->wellFormed && !c->failed;
  p->myDoc = NULL;
  xmlFreeParserCtxt(p);
  if (!ok) {
    if (!c->failed) fail_at(c, 0, "xml", "not well-formed XML");
    xmlFreeDoc(doc);
    return NULL;
  }
  return doc;
}

static bool validate(struct ctx *c, xmlDoc *doc) {
  xmlSchemaParserCtxtPtr pc =
      xmlSchemaNewMemParserCtxt(sweep_schema_xsd, (int)strlen(sweep_schema_xsd));
  if (!pc) return fail_at(c, 0, "schema", "cannot read the embedded sweep schema");
  struct ctx schema_ctx = {.name = "<embedded sweep schema>", .err = c->err};
  xmlSchemaSetParserStructuredErrors(pc, on_parse_error, &schema_ctx);
  xmlSchemaPtr schema = xmlSchemaParse(pc);
  xmlSchemaFreeParserCtxt(pc);
  if (!schema) {
    c->failed = true;
    if (!schema_ctx.failed) diag_set(c->err, "<embedded sweep schema>: not a usable schema");
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
  if (rc != 0 && !c->failed) fail_at(c, 0, "schema", "the document does not match the schema");
  return rc == 0 && !c->failed;
}

/* ------------------------------------------------------------ reading */

static bool push_str(char ***v, size_t *n, size_t *cap, char *s) {
  if (!s) return false;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    char **nv = realloc(*v, nc * sizeof *nv);
    if (!nv) {
      free(s);
      return false;
    }
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = s;
  return true;
}

static bool parse_count(struct ctx *c, const xmlNode *elem, const char *attr, const char *text,
                        uint64_t min, uint64_t max, uint64_t *out) {
  errno = 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (!*text || *end || errno || v < min || v > max)
    return fail_node(c, elem, attr, "'%s' is out of range (%llu..%llu)", text,
                     (unsigned long long)min, (unsigned long long)max);
  *out = v;
  return true;
}

/* A required attribute holding a number with an optional unit. */
static bool attr_quantity(struct ctx *c, const xmlNode *elem, const char *attr,
                          struct quantity *q) {
  char *text = attr_text(elem, attr);
  if (!text) return fail_node(c, elem, attr, "required attribute is missing");
  char why[512];
  bool ok = quantity_parse(text, q, why, sizeof why);
  if (!ok) fail_node(c, elem, attr, "%s", why);
  free(text);
  return ok;
}

static bool attr_count(struct ctx *c, const xmlNode *elem, const char *attr, uint64_t min,
                       uint64_t max, uint64_t dflt, uint64_t *out) {
  char *text = attr_text(elem, attr);
  if (!text) {
    *out = dflt;
    return true;
  }
  bool ok = parse_count(c, elem, attr, text, min, max, out);
  free(text);
  return ok;
}

static bool push_quantities(struct ctx *c, const xmlNode *elem, struct sweep_param *p,
                            const uint64_t *milli, size_t n, enum quantity_family family) {
  size_t cap = 0;
  for (size_t i = 0; i < n; i++) {
    char buf[64];
    struct quantity q = {.family = family, .milli = milli[i]};
    quantity_format(&q, buf, sizeof buf);
    if (!push_str(&p->values, &p->n_values, &cap, strdup(buf)))
      return fail_node(c, elem, NULL, "out of memory");
  }
  return true;
}

static bool read_range(struct ctx *c, const xmlNode *elem, struct sweep_param *p) {
  struct quantity from, to, step;
  if (!attr_quantity(c, elem, "from", &from) || !attr_quantity(c, elem, "to", &to) ||
      !attr_quantity(c, elem, "step", &step))
    return false;
  uint64_t *v;
  size_t n;
  char why[512];
  if (!series_linear(&from, &to, &step, &v, &n, why, sizeof why))
    return fail_node(c, elem, NULL, "%s", why);
  bool ok = push_quantities(c, elem, p, v, n, from.family);
  free(v);
  return ok;
}

static bool read_log(struct ctx *c, const xmlNode *elem, struct sweep_param *p) {
  struct quantity from, to;
  uint64_t per_decade, points, digits;
  if (!attr_quantity(c, elem, "from", &from) || !attr_quantity(c, elem, "to", &to) ||
      !attr_count(c, elem, "per-decade", 1, SERIES_MAX_PER_DECADE, 0, &per_decade) ||
      !attr_count(c, elem, "points", 2, SERIES_MAX_LOG_POINTS, 0, &points) ||
      !attr_count(c, elem, "digits", 1, SERIES_MAX_DIGITS, SERIES_DEFAULT_DIGITS, &digits))
    return false;
  if ((per_decade == 0) == (points == 0))
    return fail_node(c, elem, NULL, "give exactly one of per-decade and points");
  uint64_t *v;
  size_t n;
  char why[512];
  if (!series_log(&from, &to, (uint32_t)per_decade, (uint32_t)points, (uint32_t)digits, &v, &n,
                  why, sizeof why))
    return fail_node(c, elem, NULL, "%s", why);
  bool ok = push_quantities(c, elem, p, v, n, from.family);
  free(v);
  return ok;
}

static bool read_param(struct ctx *c, const xmlNode *elem, struct sweep_param *p) {
  char field[512];
  node_field(elem, NULL, field, sizeof field);
  p->field = strdup(field);
  p->path = attr_text(elem, "path");
  p->line = xmlGetLineNo(elem);
  if (!p->field || !p->path) return fail_node(c, elem, NULL, "out of memory");
  if (!strcmp(p->path, "seed"))
    return fail_node(c, elem, "path", "the seed varies with <seeds>, not a <param>");
  size_t cap = 0;
  for (xmlNode *k = elem->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE) continue;
    const char *name = (const char *)k->name;
    if (!strcmp(name, "value")) {
      char *v = node_text(k);
      if (v && !v[0]) {
        free(v);
        return fail_node(c, k, NULL, "empty value");
      }
      if (!push_str(&p->values, &p->n_values, &cap, v))
        return fail_node(c, k, NULL, "out of memory");
    } else if (!strcmp(name, "values")) {
      char *all = node_text(k);
      if (!all) return fail_node(c, k, NULL, "out of memory");
      for (char *save = NULL, *tok = strtok_r(all, " \t\r\n", &save); tok;
           tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (!push_str(&p->values, &p->n_values, &cap, strdup(tok))) {
          free(all);
          return fail_node(c, k, NULL, "out of memory");
        }
      }
      free(all);
      if (p->n_values == 0) return fail_node(c, k, NULL, "no values");
    } else if (!strcmp(name, "range")) {
      if (!read_range(c, k, p)) return false;
    } else if (!strcmp(name, "log")) {
      if (!read_log(c, k, p)) return false;
    }
  }
  if (p->n_values > SERIES_MAX_VALUES)
    return fail_node(c, elem, NULL, "%zu values; at most %u allowed", p->n_values,
                     SERIES_MAX_VALUES);
  for (size_t i = 0; i < p->n_values; i++)
    for (size_t j = 0; j < i; j++)
      if (!strcmp(p->values[i], p->values[j]))
        return fail_node(c, elem, NULL, "value '%s' is listed twice", p->values[i]);
  return true;
}

static bool read_seeds(struct ctx *c, const xmlNode *elem, struct sweep_spec *s) {
  char *list = node_text(elem);
  char *count_text = attr_text(elem, "count");
  char *first_text = attr_text(elem, "first");
  bool ok = true;
  if (!list) ok = fail_node(c, elem, NULL, "out of memory");
  else if (list[0] && (count_text || first_text))
    ok = fail_node(c, elem, NULL, "give either a list of seeds or count=, not both");
  else if (!list[0] && !count_text)
    ok = fail_node(c, elem, NULL, "give a list of seeds (<seeds>1 2 3</seeds>) or count=\"N\"");
  else if (list[0]) {
    size_t cap = 0;
    for (char *save = NULL, *tok = strtok_r(list, " \t\r\n", &save); tok && ok;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
      uint64_t v;
      if (!parse_count(c, elem, NULL, tok, 0, SWEEP_MAX_SEED, &v)) ok = false;
      else if (s->n_seeds == SWEEP_MAX_SEEDS)
        ok = fail_node(c, elem, NULL, "more than %u seeds", SWEEP_MAX_SEEDS);
      else {
        for (size_t i = 0; i < s->n_seeds && ok; i++)
          if (s->seeds[i] == v) ok = fail_node(c, elem, NULL, "seed %s is listed twice", tok);
        if (ok && s->n_seeds == cap) {
          cap = cap ? cap * 2 : 8;
          uint64_t *nv = realloc(s->seeds, cap * sizeof *nv);
          if (!nv) ok = fail_node(c, elem, NULL, "out of memory");
          else s->seeds = nv;
        }
        if (ok) s->seeds[s->n_seeds++] = v;
      }
    }
  } else {
    uint64_t count, first = 1;
    ok = parse_count(c, elem, "count", count_text, 1, SWEEP_MAX_SEEDS, &count) &&
         (!first_text || parse_count(c, elem, "first", first_text, 0, SWEEP_MAX_SEED, &first));
    if (ok && first > SWEEP_MAX_SEED - (count - 1))
      ok = fail_node(c, elem, NULL, "seeds %llu..%llu go beyond %llu", (unsigned long long)first,
                     (unsigned long long)(first + count - 1), (unsigned long long)SWEEP_MAX_SEED);
    if (ok) {
      s->seeds = malloc(count * sizeof *s->seeds);
      if (!s->seeds) ok = fail_node(c, elem, NULL, "out of memory");
      for (uint64_t i = 0; ok && i < count; i++) s->seeds[i] = first + i;
      if (ok) s->n_seeds = count;
    }
  }
  free(list);
  free(count_text);
  free(first_text);
  return ok;
}

/* "1.5ms" -> ns, for the window. */
static bool read_duration(struct ctx *c, const xmlNode *elem, uint64_t *ns) {
  char *text = node_text(elem);
  struct quantity q;
  char why[512];
  bool ok = text && quantity_parse(text, &q, why, sizeof why);
  if (!ok) fail_node(c, elem, NULL, "%s", text ? why : "out of memory");
  else if (q.family != QUANTITY_DURATION || q.milli % 1000)
    ok = fail_node(c, elem, NULL, "'%s' is not a whole number of ns", text);
  else *ns = q.milli / 1000;
  free(text);
  return ok;
}

/* Upper bound of limits/max-sim-time (docs/config.md). */
#define MAX_SIM_TIME_NS 1000000000000000ull

static bool read_window(struct ctx *c, const xmlNode *elem, struct sweep_spec *s) {
  s->has_window = true;
  s->window_line = xmlGetLineNo(elem);
  const xmlNode *w = child(elem, "warm-up"), *m = child(elem, "measure");
  if ((w && !read_duration(c, w, &s->warm_up_ns)) || !m || !read_duration(c, m, &s->measure_ns))
    return false;
  if (s->measure_ns == 0) return fail_node(c, m, NULL, "the measurement window must be above 0ns");
  if (s->warm_up_ns > MAX_SIM_TIME_NS - s->measure_ns)
    return fail_node(c, elem, NULL, "warm-up + measure is more than 1000000s");
  return true;
}

static bool reserved_metric(const char *m) {
  static const char *const names[] = {"point", "seed", "rep", "outcome", "apfsim_version",
                                      "guest_image_sha256", "trace_sha256", "sweep",
                                      "sweep_points"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(m, names[i])) return true;
  return false;
}

static bool read_metrics(struct ctx *c, const xmlNode *elem, struct sweep_spec *s) {
  char *inc = attr_text(elem, "include-defaults");
  bool defaults = inc && (!strcmp(inc, "true") || !strcmp(inc, "1"));
  free(inc);
  size_t cap = 0;
  if (defaults) {
    size_t nd;
    const char *const *d = sweep_default_metrics(&nd);
    for (size_t i = 0; i < nd; i++)
      if (!push_str(&s->metrics, &s->n_metrics, &cap, strdup(d[i])))
        return fail_node(c, elem, NULL, "out of memory");
  }
  for (xmlNode *k = elem->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE) continue;
    char *m = node_text(k);
    if (!m) return fail_node(c, k, NULL, "out of memory");
    if (reserved_metric(m)) {
      fail_node(c, k, NULL, "'%s' is always a column of its own; do not list it", m);
      free(m);
      return false;
    }
    for (size_t i = 0; i < s->n_metrics; i++)
      if (!strcmp(s->metrics[i], m)) {
        fail_node(c, k, NULL, "'%s' is listed twice%s", m,
                  defaults ? " (include-defaults already has it)" : "");
        free(m);
        return false;
      }
    if (!push_str(&s->metrics, &s->n_metrics, &cap, m))
      return fail_node(c, k, NULL, "out of memory");
  }
  return true;
}

static bool default_metrics(struct sweep_spec *s) {
  size_t nd, cap = 0;
  const char *const *d = sweep_default_metrics(&nd);
  for (size_t i = 0; i < nd; i++)
    if (!push_str(&s->metrics, &s->n_metrics, &cap, strdup(d[i]))) return false;
  return true;
}

/* Where an override path is already used: a <set> or another parameter. */
static bool check_unique_paths(struct ctx *c, struct sweep_spec *s) {
  for (size_t d = 0; d < s->n_dims; d++) {
    for (size_t i = 0; i < s->dims[d].n_params; i++) {
      const struct sweep_param *p = &s->dims[d].params[i];
      for (size_t k = 0; k < s->n_sets; k++)
        if (!strcmp(s->sets[k].path, p->path))
          return fail_at(c, p->line, p->field, "'%s' is also given by <set> on line %ld", p->path,
                         s->sets[k].line);
      for (size_t e = 0; e <= d; e++)
        for (size_t j = 0; j < (e == d ? i : s->dims[e].n_params); j++)
          if (!strcmp(s->dims[e].params[j].path, p->path))
            return fail_at(c, p->line, p->field, "'%s' is also varied by %s on line %ld",
                           p->path, s->dims[e].params[j].field, s->dims[e].params[j].line);
      if (s->has_window && (!strcmp(p->path, "limits/max-sim-time") || !strcmp(p->path, "limits/measure-from")))
        return fail_at(c, p->line, p->field, "%s is set by <window> (warm-up + measure)", p->path);
    }
  }
  for (size_t k = 0; k < s->n_sets; k++) {
    char field[32];
    snprintf(field, sizeof field, "set[%zu]", k + 1);
    for (size_t j = 0; j < k; j++)
      if (!strcmp(s->sets[k].path, s->sets[j].path))
        return fail_at(c, s->sets[k].line, field, "'%s' is also set on line %ld",
                       s->sets[k].path, s->sets[j].line);
    if (s->has_window &&
        (!strcmp(s->sets[k].path, "limits/max-sim-time") || !strcmp(s->sets[k].path, "limits/measure-from")))
      return fail_at(c, s->sets[k].line, field, "%s is set by <window> (warm-up + measure)", s->sets[k].path);
  }
  return true;
}

static bool resolve_base(struct ctx *c, const xmlNode *elem, struct sweep_spec *s) {
  s->base = node_text(elem);
  s->base_line = xmlGetLineNo(elem);
  if (!s->base) return fail_node(c, elem, NULL, "out of memory");
  if (!s->base[0]) return fail_node(c, elem, NULL, "empty (expected the path of a config)");
  const char *slash = strrchr(c->name, '/');
  size_t dir = s->base[0] == '/' || !slash ? 0 : (size_t)(slash - c->name) + 1;
  s->base_path = malloc(dir + strlen(s->base) + 1);
  if (!s->base_path) return fail_node(c, elem, NULL, "out of memory");
  memcpy(s->base_path, c->name, dir);
  strcpy(s->base_path + dir, s->base);
  return true;
}

static bool read_document(struct ctx *c, const xmlNode *root, struct sweep_spec *s) {
  size_t cap_sets = 0, cap_dims = 0;
  s->repetitions = 1;
  bool have_metrics = false;
  for (xmlNode *k = root->children; k; k = k->next) {
    if (k->type != XML_ELEMENT_NODE) continue;
    const char *name = (const char *)k->name;
    if (!strcmp(name, "base")) {
      if (!resolve_base(c, k, s)) return false;
    } else if (!strcmp(name, "set")) {
      if (s->n_sets == cap_sets) {
        cap_sets = cap_sets ? cap_sets * 2 : 8;
        struct sweep_set *nv = realloc(s->sets, cap_sets * sizeof *nv);
        if (!nv) return fail_node(c, k, NULL, "out of memory");
        s->sets = nv;
      }
      struct sweep_set *st = &s->sets[s->n_sets++];
      st->path = attr_text(k, "path");
      st->value = node_text(k);
      st->line = xmlGetLineNo(k);
      if (!st->path || !st->value) return fail_node(c, k, NULL, "out of memory");
      if (!strcmp(st->path, "seed"))
        return fail_node(c, k, "path", "the seed is chosen by <seeds>, not a <set>");
    } else if (!strcmp(name, "param") || !strcmp(name, "zip")) {
      if (s->n_dims == cap_dims) {
        cap_dims = cap_dims ? cap_dims * 2 : 8;
        struct sweep_dim *nv = realloc(s->dims, cap_dims * sizeof *nv);
        if (!nv) return fail_node(c, k, NULL, "out of memory");
        s->dims = nv;
      }
      struct sweep_dim *d = &s->dims[s->n_dims++];
      memset(d, 0, sizeof *d);
      size_t n = 1;
      if (!strcmp(name, "zip")) {
        n = 0;
        for (xmlNode *p = k->children; p; p = p->next) n += p->type == XML_ELEMENT_NODE;
      }
      d->params = calloc(n, sizeof *d->params);
      if (!d->params) return fail_node(c, k, NULL, "out of memory");
      if (!strcmp(name, "param")) {
        d->n_params = 1;
        if (!read_param(c, k, &d->params[0])) return false;
      } else {
        for (xmlNode *p = k->children; p; p = p->next) {
          if (p->type != XML_ELEMENT_NODE) continue;
          struct sweep_param *sp = &d->params[d->n_params++];
          if (!read_param(c, p, sp)) return false;
          if (sp->n_values != d->params[0].n_values)
            return fail_node(c, p, NULL,
                             "has %zu values but %s has %zu; zipped parameters vary together "
                             "and need the same number",
                             sp->n_values, d->params[0].field, d->params[0].n_values);
        }
      }
      d->n_values = d->params[0].n_values;
    } else if (!strcmp(name, "seeds")) {
      if (!read_seeds(c, k, s)) return false;
    } else if (!strcmp(name, "repetitions")) {
      char *t = node_text(k);
      if (!t) return fail_node(c, k, NULL, "out of memory");
      uint64_t r = 0;
      bool ok = parse_count(c, k, NULL, t, 1, SWEEP_MAX_REPETITIONS, &r);
      free(t);
      if (!ok) return false;
      s->repetitions = (uint32_t)r;
    } else if (!strcmp(name, "window")) {
      if (!read_window(c, k, s)) return false;
    } else if (!strcmp(name, "metrics")) {
      have_metrics = true;
      if (!read_metrics(c, k, s)) return false;
    }
  }
  if (!have_metrics && !default_metrics(s)) return fail_at(c, 0, NULL, "out of memory");
  if (!check_unique_paths(c, s)) return false;
  /* The grid must stay countable (and worth running). */
  uint64_t total = 1;
  for (size_t d = 0; d < s->n_dims; d++) {
    if (total > SWEEP_MAX_POINTS / s->dims[d].n_values)
      return fail_at(c, s->dims[d].params[0].line, s->dims[d].params[0].field,
                     "the sweep has more than %llu points", (unsigned long long)SWEEP_MAX_POINTS);
    total *= s->dims[d].n_values;
  }
  uint64_t seeds = s->n_seeds ? s->n_seeds : 1;
  if (total > SWEEP_MAX_POINTS / seeds || total * seeds > SWEEP_MAX_POINTS / s->repetitions)
    return fail_at(c, 0, NULL, "the sweep has more than %llu points",
                   (unsigned long long)SWEEP_MAX_POINTS);
  return true;
}

/* ------------------------------------------------------------ entry points */

void sweep_spec_free(struct sweep_spec *s) {
  if (!s) return;
  free(s->path);
  free(s->base);
  free(s->base_path);
  for (size_t i = 0; i < s->n_sets; i++) {
    free(s->sets[i].path);
    free(s->sets[i].value);
  }
  free(s->sets);
  for (size_t d = 0; d < s->n_dims; d++) {
    for (size_t i = 0; i < s->dims[d].n_params; i++) {
      struct sweep_param *p = &s->dims[d].params[i];
      for (size_t v = 0; v < p->n_values; v++) free(p->values[v]);
      free(p->values);
      free(p->path);
      free(p->field);
    }
    free(s->dims[d].params);
  }
  free(s->dims);
  free(s->seeds);
  for (size_t i = 0; i < s->n_metrics; i++) free(s->metrics[i]);
  free(s->metrics);
  free(s);
}

uint64_t sweep_spec_points(const struct sweep_spec *s) {
  uint64_t n = s->repetitions * (uint64_t)(s->n_seeds ? s->n_seeds : 1);
  for (size_t d = 0; d < s->n_dims; d++) n *= s->dims[d].n_values;
  return n;
}

static bool only_whitespace(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
  return true;
}

bool sweep_spec_load_buffer(const char *name, const char *xml, size_t len,
                            struct sweep_spec **out, struct diag *err) {
  struct diag scratch;
  struct ctx c = {.name = name ? name : "<buffer>", .err = err ? err : &scratch};
  c.err->msg[0] = '\0';
  *out = NULL;
  if (len > SWEEP_MAX_FILE_BYTES)
    return diag_at(c.err, c.name, 0, NULL, "file is %zu bytes, more than the 1 MiB a sweep may have",
                   len);
  if (only_whitespace(xml, len))
    return diag_at(c.err, c.name, 1, "xml", "document is empty (expected a <sweep> element)");
  struct sweep_spec *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(c.name))) {
    free(s);
    return diag_at(c.err, c.name, 0, NULL, "out of memory");
  }
  struct saved_handlers saved;
  handlers_enter(&c, &saved);
  bool ok = false;
  xmlDoc *doc = parse(&c, xml, len);
  xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (doc && !root) fail_at(&c, 1, "xml", "document has no root element");
  else if (root && root->ns)
    fail_node(&c, root, NULL, "root element is in a namespace; sweep files use none");
  else if (root && strcmp((const char *)root->name, "sweep") != 0)
    fail_node(&c, root, NULL, "root element is <%s>, expected <sweep>%s", root->name,
              !strcmp((const char *)root->name, "apfsim")
                  ? " (this is a scenario config: `apfsim run` takes it)"
                  : "");
  else if (root && validate(&c, doc))
    ok = read_document(&c, root, s);
  xmlFreeDoc(doc);
  handlers_leave(&saved);
  if (!ok) {
    sweep_spec_free(s);
    return false;
  }
  *out = s;
  return true;
}

bool sweep_spec_load(const char *path, struct sweep_spec **out, struct diag *err) {
  struct diag scratch;
  if (!err) err = &scratch;
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return diag_at(err, path, 0, NULL, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    close(fd);
    return diag_at(err, path, 0, NULL, "is a directory or cannot be read");
  }
  size_t cap = SWEEP_MAX_FILE_BYTES + 1, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return diag_at(err, path, 0, NULL, "out of memory");
  }
  for (;;) {
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return diag_at(err, path, 0, NULL, "cannot read: %s", strerror(e));
    }
    if (r == 0 || (len += (size_t)r) == cap) break;
  }
  close(fd);
  bool ok = sweep_spec_load_buffer(path, buf, len, out, err);
  free(buf);
  return ok;
}
