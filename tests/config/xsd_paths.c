/* xsd_paths.c — walks an XSD of the shape configs/apfsim.xsd uses: one
 * global element, named or anonymous complex types holding xs:all /
 * xs:sequence of xs:element, and xs:attribute. Enough for the tests; not a
 * general XSD reader. */
#include "xsd_paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

struct walk {
  xmlNode *schema;
  struct xsd_leaf *out;
  size_t n, max;
};

static bool is_xs(xmlNode *n, const char *name) {
  return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static xmlNode *named_type(struct walk *w, const char *name) {
  for (xmlNode *n = w->schema->children; n; n = n->next)
    if (is_xs(n, "complexType")) {
      xmlChar *nm = xmlGetProp(n, (const xmlChar *)"name");
      bool hit = nm && !strcmp((const char *)nm, name);
      xmlFree(nm);
      if (hit) return n;
    }
  return NULL;
}

static void add(struct walk *w, const char *path, bool required) {
  if (w->n >= w->max) return;
  snprintf(w->out[w->n].path, sizeof w->out[w->n].path, "%s", path);
  w->out[w->n].required = required;
  w->n++;
}

static void walk_type(struct walk *w, xmlNode *ct, const char *path);

static void walk_element(struct walk *w, xmlNode *el, const char *path) {
  xmlChar *name = xmlGetProp(el, (const xmlChar *)"name");
  xmlChar *type = xmlGetProp(el, (const xmlChar *)"type");
  char sub[256];
  snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "/" : "", name ? (const char *)name : "?");
  xmlNode *ct = type ? named_type(w, (const char *)type) : NULL;
  if (!ct && !type)
    for (xmlNode *k = el->children; k; k = k->next)
      if (is_xs(k, "complexType")) ct = k;
  if (ct)
    walk_type(w, ct, sub);
  else
    add(w, sub, false);
  xmlFree(name);
  xmlFree(type);
}

static void walk_type(struct walk *w, xmlNode *ct, const char *path) {
  for (xmlNode *k = ct->children; k; k = k->next) {
    if (is_xs(k, "attribute")) {
      xmlChar *name = xmlGetProp(k, (const xmlChar *)"name");
      xmlChar *use = xmlGetProp(k, (const xmlChar *)"use");
      char sub[256];
      snprintf(sub, sizeof sub, "%s/@%s", path, name ? (const char *)name : "?");
      add(w, sub, use && !strcmp((const char *)use, "required"));
      xmlFree(name);
      xmlFree(use);
    } else if (is_xs(k, "all") || is_xs(k, "sequence") || is_xs(k, "choice")) {
      for (xmlNode *e = k->children; e; e = e->next)
        if (is_xs(e, "element")) walk_element(w, e, path);
    }
  }
}

size_t xsd_leaves(const char *xsd_text, struct xsd_leaf *out, size_t max) {
  xmlDoc *doc = xmlReadMemory(xsd_text, (int)strlen(xsd_text), "schema.xsd", NULL, XML_PARSE_NONET);
  if (!doc) return 0;
  struct walk w = {.schema = xmlDocGetRootElement(doc), .out = out, .max = max};
  for (xmlNode *n = w.schema ? w.schema->children : NULL; n; n = n->next)
    if (is_xs(n, "element"))
      for (xmlNode *k = n->children; k; k = k->next)
        if (is_xs(k, "complexType")) walk_type(&w, k, "");
  xmlFreeDoc(doc);
  return w.n;
}

char *read_text_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    char *nb = realloc(buf, cap * 2 + 1);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  if (!buf) return NULL;
  buf[n] = '\0';
  if (len) *len = n;
  return buf;
}
