/* internal.h — what the config module's files share with each other (and with
 * its white-box tests). Not a public interface: the rest of apfsim includes
 * config.h only.
 *
 * The module is driven by one description of the format, `config_root_fields`
 * (fields.c): every element and attribute of configs/apfsim.xsd with the C
 * field it fills, its value type, range and flags. The loader (load.c), the
 * override applier (override.c) and the canonical writer (write.c) all walk
 * that table, so reading and writing cannot drift apart.
 */
#ifndef APFSIM_CONFIG_INTERNAL_H
#define APFSIM_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include "config/config.h"

#define CONFIG_PAGE_SIZE 4096u
#define CONFIG_MAX_FILE_BYTES (16u * 1024u * 1024u)
#define CONFIG_MAX_HISTOGRAM_FILE_BYTES (1024u * 1024u)
/* Durations are capped so that SystemC's default 1 ps resolution still holds
 * them in 64 bits (2^64 ps is about 213 days). */
#define CONFIG_MAX_DURATION_NS 1000000000000000ull /* 10^6 s */

/* ---- value syntax (units.c) ---- */

enum value_type {
  T_UINT,      /* decimal, or 0x hex where F_HEX */
  T_BOOL,      /* true/false/1/0 */
  T_DURATION,  /* -> ns */
  T_SIZE,      /* -> bytes */
  T_FREQ,      /* -> MHz */
  T_BANDWIDTH, /* -> bytes/s */
  T_MILLI,     /* decimal with <= 3 fraction digits -> x1000 */
  T_ENUM,
  T_STRING,
  T_HIST_FILE, /* path of a latency histogram, read and inlined */
};

#define F_UNLIMITED 0x1u /* "unlimited" means 0 and is how 0 is written */
#define F_HEX 0x2u       /* accepts and is written as 0x... hexadecimal */
#define F_HEX_IN 0x4u    /* accepts 0x... hexadecimal, written in decimal */
#define F_REQUIRED 0x8u  /* attribute the schema requires */
#define F_PAGE 0x10u     /* multiple of CONFIG_PAGE_SIZE */
#define F_PRESENCE 0x20u /* "@enabled": true when its element is present at all */

struct enum_name {
  const char *name;
  int value;
};

/* Parses `text` (already trimmed) as `type`; on failure writes a sentence
 * fragment like "'20' has no unit (expected ns, us, ms or s)" into why. */
bool value_parse(enum value_type type, unsigned flags, const struct enum_name *enums,
                 const char *text, uint64_t *out, char *why, size_t why_len);

/* Canonical text of a value: the largest unit that represents it exactly. */
void value_format(enum value_type type, unsigned flags, const struct enum_name *enums, uint64_t v,
                  char *buf, size_t len);

/* ---- the format description (fields.c) ---- */

enum field_node { N_LEAF, N_GROUP, N_LIST };

struct load_ctx;

struct field {
  const char *name; /* element name, or "@name" for an attribute */
  enum field_node node;
  enum value_type type;
  unsigned flags;
  size_t offset; /* from the base of the enclosing group or list entry */
  size_t size;   /* bytes of the C field; capacity for strings */
  uint64_t min, max;
  const struct enum_name *enums; /* T_ENUM: terminated by a NULL name */
  /* T_STRING: extra syntax (event and symbol names); NULL accepts any text. */
  bool (*valid)(const char *text, char *why, size_t why_len);
  /* Runs after a leaf is stored, with the enclosing group's base (presets). */
  void (*after)(void *base);
  /* N_GROUP, N_LIST: the fields of the element, terminated by a NULL name. */
  const struct field *children;
  /* N_LIST: `offset` is the array; entries follow at entry_size. */
  size_t count_offset;
  size_t entry_size;
  uint32_t max_entries;
  void (*entry_defaults)(void *entry);
  /* Semantic checks once the element's children are read. `base` is the
   * group's (or list entry's) base. */
  bool (*check)(struct load_ctx *c, xmlNode *elem, const char *path, void *base);
};

/* The root element, <apfsim>, whose children describe everything. */
extern const struct field config_root;

/* The child named `name` (element, or "@attr") of a field list, or NULL. */
const struct field *field_find(const struct field *list, const char *name);

/* "a, b or c" from the element (not attribute) names of a field list. */
void field_names(const struct field *list, bool attributes, char *buf, size_t len);

/* Stores / fetches a leaf's value in the struct at `base`. */
void field_store(const struct field *f, void *base, uint64_t v);
uint64_t field_value(const struct field *f, const void *base);

/* ---- loading (load.c) ---- */

struct load_ctx {
  const char *name;               /* file name used in messages */
  char base_dir[CONFIG_PATH_MAX]; /* relative histogram paths start here */
  const char *const *overrides;   /* as given, "path=value" */
  size_t n_overrides;
  struct sim_config *out; /* filled only when everything passed */
  struct diag *err;
  bool failed;
};

/* Reports a problem with `node` (element or attribute; NULL when the value is
 * a default): "FILE:LINE: field: problem", or, when an override set the
 * node, "FILE: --set PATH: [field: ]problem". Always returns false. */
bool config_fail(struct load_ctx *c, xmlNode *node, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same, for a problem known only by file and line (0: none), e.g. XML
 * syntax or a line of a histogram file. Always returns false. */
bool config_fail_in(struct load_ctx *c, const char *file, long line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Makes a message one printable line: control characters quoted from the
 * input (a newline inside a value) become \n, \t, \xNN. In place. */
void config_message_escape(char *msg, size_t cap);

/* First child element of `elem` called `name`, or NULL. */
xmlNode *config_child(xmlNode *elem, const char *name);

/* The `index`-th (0-based) child element called `name`, or NULL. */
xmlNode *config_nth_child(xmlNode *elem, const char *name, uint32_t index);

/* ---- histograms (histogram.c) ---- */

/* Reads `file` (relative to c->base_dir unless absolute) into lat->bins.
 * `node`/`field` locate the reference for messages about the file as a whole;
 * problems inside it are reported at the histogram file's own line. */
bool histogram_read_file(struct load_ctx *c, xmlNode *node, const char *field, const char *file,
                         struct latency_config *lat);

/* Bin bounds strictly increasing, counts summing to a non-zero uint64. On
 * failure returns the index of the offending bin (HISTOGRAM_WHOLE when the
 * problem is the histogram as a whole) and a reason. */
#define HISTOGRAM_WHOLE UINT32_MAX
bool histogram_check_bins(const struct latency_config *lat, uint32_t *bad, char *why, size_t len);

/* ---- overrides (override.c) ---- */

/* Applies c->overrides to the document; marks each node it sets or creates
 * (node->_private = override index + 1) so later errors name the override. */
bool config_apply_overrides(struct load_ctx *c, xmlDoc *doc);

#endif
