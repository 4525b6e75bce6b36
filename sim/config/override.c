/* override.c — `--set PATH=VALUE` applied to the parsed document.
 *
 * PATH is a slash path from the root element, without the root:
 *   machine/vcpus=4                    element value
 *   swap-device/latency/@dist=fixed    attribute (last step only)
 *   workload/process[2]/count=3        1-based index among same-named siblings
 * Missing elements on the way are created; `name[k]` may add the next entry
 * of a repeated element (k = existing + 1). Every step is checked against
 * the format table, so a misspelt path fails here, naming the override.
 * Overrides run before schema validation, so their values are checked exactly
 * like values in the file; nodes they touch are marked so later messages say
 * "--set PATH" instead of a line number.
 *
 * Not for: reading values into the struct (load.c).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/chvalid.h>
#include <libxml/xmlstring.h>

#include "config/internal.h"

__attribute__((format(printf, 4, 5))) static bool fail(struct load_ctx *c, const char *path,
                                                       size_t path_len, const char *fmt, ...) {
  if (c->failed) return false;
  c->failed = true;
  char msg[DIAG_MAX], where[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  config_message_escape(msg, sizeof msg);
  snprintf(where, sizeof where, "--set %.*s", (int)path_len, path);
  /* The path is quoted as typed; a control character in it must not break
   * the one-line message either. */
  config_message_escape(where, sizeof where);
  return diag_at(c->err, c->name, 0, where, "%s", msg);
}

static void mark(void **private_slot, size_t index) {
  *private_slot = (void *)(uintptr_t)(index + 1);
}

static uint32_t count_children(xmlNode *elem, const char *name) {
  uint32_t n = 0;
  for (xmlNode *k = elem->children; k; k = k->next)
    if (k->type == XML_ELEMENT_NODE && !strcmp((const char *)k->name, name)) n++;
  return n;
}

/* Name of the first value below a section, for "e.g. machine/vcpus". */
static const char *first_leaf(const struct field *f) {
  for (const struct field *k = f->children; k && k->name; k++)
    if (k->node == N_LEAF && k->name[0] != '@') return k->name;
  return f->children && f->children->name ? f->children->name : "";
}

/* The first character of `s` that XML 1.0 cannot hold (its Char
 * production), or -1 when `s` is not strict UTF-8, or 0 when all is well.
 * The value ends up in the canonical config a trace header carries, and the
 * parser refuses there what xmlCheckUTF8 lets through here: overlong forms,
 * surrogates, code points above U+10FFFF, U+FFFE and U+FFFF. */
static int non_xml_char(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned b = p[0], cp, min;
    int n;
    if (b < 0x80) {
      n = 1, cp = b, min = 0;
    } else if ((b & 0xe0) == 0xc0) {
      n = 2, cp = b & 0x1f, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
      n = 3, cp = b & 0x0f, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
      n = 4, cp = b & 0x07, min = 0x10000;
    } else {
      return -1;
    }
    for (int i = 1; i < n; i++) {
      if ((p[i] & 0xc0) != 0x80) return -1; /* also stops at the terminating NUL */
      cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    if (!xmlIsCharQ(cp)) return (int)cp;
    p += n;
  }
  return 0;
}

static bool apply_one(struct load_ctx *c, xmlDoc *doc, size_t index) {
  const char *o = c->overrides[index];
  const char *eq = strchr(o, '=');
  if (!eq) return fail(c, o, strlen(o), "expected PATH=VALUE (e.g. machine/vcpus=4)");
  size_t plen = (size_t)(eq - o);
  const char *value = eq + 1;
  /* The value ends up in the canonical XML of the run; it must be text that
   * XML can carry and read back unchanged. */
  if (!xmlCheckUTF8((const xmlChar *)value))
    return fail(c, o, plen, "value is not valid UTF-8");
  for (const char *p = value; *p; p++)
    if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n')
      return fail(c, o, plen, "value contains control character 0x%02x", (unsigned)*p);
  int bad = non_xml_char(value);
  if (bad < 0) return fail(c, o, plen, "value is not valid UTF-8");
  if (bad > 0) return fail(c, o, plen, "value contains U+%04X, which XML cannot hold", (unsigned)bad);
  if (plen == 0) return fail(c, o, strlen(o), "empty path before '='");
  if (o[plen - 1] == '/') return fail(c, o, plen, "path ends with '/'");
  if (o[0] == '/')
    return fail(c, o, plen, "paths start below <%s>, without a leading '/' (e.g. machine/vcpus)",
                config_root.name);

  xmlNode *elem = xmlDocGetRootElement(doc);
  const struct field *at = &config_root;
  const char *step = o;
  const char *end = o + plen;
  while (step < end) {
    const char *slash = memchr(step, '/', (size_t)(end - step));
    const char *step_end = slash ? slash : end;
    bool last = step_end == end;
    size_t slen = (size_t)(step_end - step);
    if (slen == 0) return fail(c, o, plen, "empty step in path");

    if (step[0] == '@') {
      char name[128];
      if (!last)
        return fail(c, o, plen, "an attribute (%.*s) must be the last step", (int)slen, step);
      if (slen >= sizeof name) return fail(c, o, plen, "name too long");
      memcpy(name, step, slen);
      name[slen] = '\0';
      if (!field_find(at->children, name)) {
        char names[512];
        field_names(at->children, true, names, sizeof names);
        return fail(c, o, plen, "unknown attribute '%s' on <%s> (expected %s)", name + 1,
                    elem->name, names[0] ? names : "no attributes");
      }
      xmlAttr *attr = xmlSetProp(elem, (const xmlChar *)name + 1, (const xmlChar *)value);
      if (!attr) return fail(c, o, plen, "out of memory");
      mark(&attr->_private, index);
      return true;
    }

    /* name or name[k] */
    const char *bracket = memchr(step, '[', slen);
    size_t nlen = bracket ? (size_t)(bracket - step) : slen;
    uint64_t k = 0;
    if (bracket) {
      const char *p = bracket + 1;
      while (p < step_end && *p >= '0' && *p <= '9' && k < 1000000)
        k = k * 10 + (uint64_t)(*p++ - '0');
      if (p == bracket + 1 || p + 1 != step_end || *p != ']' || k == 0)
        return fail(c, o, plen, "bad index in '%.*s' (expected name[1], name[2], ...)", (int)slen,
                    step);
    }
    char name[128];
    if (nlen == 0 || nlen >= sizeof name)
      return fail(c, o, plen, "bad step '%.*s'", (int)slen, step);
    memcpy(name, step, nlen);
    name[nlen] = '\0';
    const struct field *f = field_find(at->children, name);
    if (!f || name[0] == '@') {
      char names[512];
      field_names(at->children, false, names, sizeof names);
      return fail(c, o, plen, "unknown element '%s' in <%s> (expected %s)", name, elem->name,
                  names[0] ? names : "no child elements");
    }
    if (f->node == N_LEAF && !last)
      return fail(c, o, plen, "<%s> holds a value and has no children", name);
    if (f->node != N_LEAF && last)
      return fail(c, o, plen, "<%s> is a section; set one of its values (e.g. %.*s/%s)", name,
                  (int)plen, o, first_leaf(f));
    if (k > 1 && f->node != N_LIST)
      return fail(c, o, plen, "<%s> occurs at most once; there is no %s[%" PRIu64 "]", name, name,
                  k);

    uint32_t have = count_children(elem, name);
    xmlNode *next = NULL;
    if (f->node == N_LIST) {
      if (k == 0) {
        if (have > 1)
          return fail(c, o, plen, "there are %" PRIu32 " <%s> elements; say which, e.g. %s[1]",
                      have, name, name);
        k = 1;
      }
      if (k > (uint64_t)have + 1 && have == 0)
        return fail(c, o, plen, "there is no <%s> element yet; use %s[1] to add one", name, name);
      if (k > (uint64_t)have + 1)
        return fail(c, o, plen,
                    "there %s only %" PRIu32 " <%s> element%s; use %s[%" PRIu32 "] to add one",
                    have == 1 ? "is" : "are", have, name, have == 1 ? "" : "s", name, have + 1);
      if (k <= have) next = config_nth_child(elem, name, (uint32_t)(k - 1));
    } else {
      next = config_child(elem, name);
    }
    if (!next) {
      next = xmlNewChild(elem, NULL, (const xmlChar *)name, NULL);
      if (!next) return fail(c, o, plen, "out of memory");
      mark(&next->_private, index);
    }
    elem = next;
    at = f;
    step = last ? end : step_end + 1;
    if (last) {
      /* Replace the element's content with the literal text (no entity
       * interpretation: the value is data, not markup). */
      xmlNodeSetContent(elem, NULL);
      xmlNodeAddContent(elem, (const xmlChar *)value);
      mark(&elem->_private, index);
    }
  }
  return true;
}

bool config_apply_overrides(struct load_ctx *c, xmlDoc *doc) {
  for (size_t i = 0; i < c->n_overrides; i++) {
    if (!c->overrides[i]) return fail(c, "(null)", 6, "missing override");
    if (!apply_one(c, doc, i)) return false;
  }
  return true;
}
