/* units.c — the text of a config value <-> its fixed-unit integer.
 *
 * Quantities are written with their unit ("10us", "64MiB", "2GHz", "500MB/s")
 * and stored as integers of the base unit (ns, bytes, MHz, bytes/s). A decimal
 * fraction is accepted when the result is exact, computed without floating
 * point so that "1.5ms" is 1500000 ns on every machine.
 *
 * Not for: ranges of particular fields (fields.c) or where a value sits in
 * the document (load.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/internal.h"

struct unit {
  const char *symbol;
  uint64_t mult;
};

static const struct unit duration_units[] = {
    {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}, {NULL, 0}};
static const struct unit size_units[] = {
    {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
    {NULL, 0}};
static const struct unit freq_units[] = {{"MHz", 1}, {"GHz", 1000}, {NULL, 0}};
static const struct unit bandwidth_units[] = {{"B/s", 1},
                                              {"kB/s", 1000},
                                              {"MB/s", 1000000},
                                              {"GB/s", 1000000000},
                                              {"KiB/s", 1ull << 10},
                                              {"MiB/s", 1ull << 20},
                                              {"GiB/s", 1ull << 30},
                                              {NULL, 0}};
/* Written back with decimal units only: a bandwidth reads as a rate. */
static const struct unit bandwidth_write_units[] = {
    {"B/s", 1}, {"kB/s", 1000}, {"MB/s", 1000000}, {"GB/s", 1000000000}, {NULL, 0}};

struct quantity {
  const char *noun;      /* "'x' is not a <noun>" */
  const char *base_unit; /* "not a whole number of <base_unit>" */
  const struct unit *units;
  bool unit_required;
  uint64_t bare_mult; /* multiplier of a number without unit */
  enum value_type type;
};

static const struct quantity *quantity_of(enum value_type type) {
  static const struct quantity duration = {"duration", "ns", duration_units, true, 0, T_DURATION};
  static const struct quantity size = {"size", "bytes", size_units, false, 1, T_SIZE};
  static const struct quantity freq = {"frequency", "MHz", freq_units, true, 0, T_FREQ};
  static const struct quantity bandwidth = {"bandwidth", "bytes/s", bandwidth_units,
                                            true,        0,         T_BANDWIDTH};
  static const struct unit no_units[] = {{NULL, 0}};
  static const struct quantity milli = {"decimal number", "thousandths", no_units, false, 1000,
                                        T_MILLI};
  switch (type) {
  case T_DURATION: return &duration;
  case T_SIZE: return &size;
  case T_FREQ: return &freq;
  case T_BANDWIDTH: return &bandwidth;
  case T_MILLI: return &milli;
  default: return NULL;
  }
}

/* What a value of this type may end in, for messages. */
static const char *value_expected(enum value_type type) {
  switch (type) {
  case T_DURATION: return "ns, us, ms or s";
  case T_SIZE: return "B, KiB, MiB, GiB or TiB";
  case T_FREQ: return "MHz or GHz";
  case T_BANDWIDTH: return "B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s";
  default: return "";
  }
}

static uint64_t gcd(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static bool is_digit(char ch) {
  return ch >= '0' && ch <= '9';
}

/* digits[.digits]unit, exact, without floating point. */
static bool parse_quantity(const struct quantity *q, const char *text, uint64_t *out, char *why,
                           size_t why_len) {
  const char *s = text;
  if (!is_digit(*s)) {
    if (*s == '-' && is_digit(s[1]))
      snprintf(why, why_len, "'%s' is negative", text);
    else
      snprintf(why, why_len, "'%s' is not a %s", text, q->noun);
    return false;
  }
  uint64_t ip = 0;
  bool overflow = false;
  for (; is_digit(*s); s++) {
    unsigned d = (unsigned)(*s - '0');
    if (ip > (UINT64_MAX - d) / 10)
      overflow = true;
    else
      ip = ip * 10 + d;
  }
  uint64_t frac = 0, scale = 1;
  if (*s == '.') {
    s++;
    if (!is_digit(*s)) {
      snprintf(why, why_len, "'%s' is not a %s", text, q->noun);
      return false;
    }
    const char *f0 = s;
    while (is_digit(*s)) s++;
    const char *f1 = s;
    while (f1 > f0 && f1[-1] == '0') f1--; /* trailing zeros change nothing */
    if (f1 - f0 > 18) {
      snprintf(why, why_len, "'%s' has too many decimal places", text);
      return false;
    }
    for (const char *p = f0; p < f1; p++) {
      frac = frac * 10 + (uint64_t)(*p - '0');
      scale *= 10;
    }
  }
  const char *unit = s;
  if (*unit == ' ' || *unit == '\t') {
    snprintf(why, why_len, "'%s': no space allowed between number and unit", text);
    return false;
  }
  uint64_t mult = 0;
  if (*unit == '\0') {
    if (q->unit_required) {
      snprintf(why, why_len, "'%s' has no unit (expected %s)", text, value_expected(q->type));
      return false;
    }
    mult = q->bare_mult;
  } else {
    for (const struct unit *u = q->units; u->symbol; u++)
      if (strcmp(u->symbol, unit) == 0) mult = u->mult;
    if (mult == 0) {
      if (q->units[0].symbol == NULL)
        snprintf(why, why_len, "'%s' is not a %s", text, q->noun);
      else
        snprintf(why, why_len, "'%s' has unknown unit '%s' (expected %s)", text, unit,
                 value_expected(q->type));
      return false;
    }
  }
  /* frac/scale * mult must be whole: reduce by the common factor first so the
   * product cannot overflow (it is below mult). */
  uint64_t g = gcd(mult, scale);
  uint64_t den = scale / g, m = mult / g;
  if (frac % den != 0) {
    if (q->type == T_MILLI)
      snprintf(why, why_len, "'%s' has more than 3 decimal places", text);
    else
      snprintf(why, why_len, "'%s' is not a whole number of %s", text, q->base_unit);
    return false;
  }
  uint64_t fpart = (frac / den) * m;
  if (overflow || (ip != 0 && mult > UINT64_MAX / ip) || ip * mult > UINT64_MAX - fpart) {
    snprintf(why, why_len, "'%s' is too large (does not fit in 64 bits)", text);
    return false;
  }
  *out = ip * mult + fpart;
  return true;
}

static bool parse_uint(const char *text, bool hex_ok, uint64_t *out, char *why, size_t why_len) {
  const char *s = text;
  unsigned base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    if (!hex_ok) {
      snprintf(why, why_len, "'%s' is not a decimal number", text);
      return false;
    }
    base = 16;
    s += 2;
  }
  if (*s == '\0') {
    snprintf(why, why_len, "'%s' is not a number", text);
    return false;
  }
  uint64_t v = 0;
  bool overflow = false;
  for (; *s; s++) {
    unsigned d;
    if (is_digit(*s))
      d = (unsigned)(*s - '0');
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      d = (unsigned)(*s - 'a' + 10);
    else if (base == 16 && *s >= 'A' && *s <= 'F')
      d = (unsigned)(*s - 'A' + 10);
    else {
      if (text[0] == '-' && is_digit(text[1]))
        snprintf(why, why_len, "'%s' is negative", text);
      else
        snprintf(why, why_len, "'%s' is not a%s number", text,
                 hex_ok ? " decimal or 0x-hexadecimal" : " whole");
      return false;
    }
    if (v > (UINT64_MAX - d) / base)
      overflow = true;
    else
      v = v * base + d;
  }
  if (overflow) {
    snprintf(why, why_len, "'%s' is too large (does not fit in 64 bits)", text);
    return false;
  }
  *out = v;
  return true;
}

static void enum_list(const struct enum_name *e, char *buf, size_t len) {
  size_t n = 0, count = 0;
  for (const struct enum_name *p = e; p->name; p++) count++;
  buf[0] = '\0';
  for (size_t i = 0; i < count && n < len; i++) {
    const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
    n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, e[i].name);
  }
}

bool value_parse(enum value_type type, unsigned flags, const struct enum_name *enums,
                 const char *text, uint64_t *out, char *why, size_t why_len) {
  if (type == T_STRING || type == T_HIST_FILE) {
    *out = 0;
    return true;
  }
  if (*text == '\0') {
    snprintf(why, why_len, "missing value");
    return false;
  }
  if ((flags & F_UNLIMITED) && strcmp(text, "unlimited") == 0) {
    *out = 0;
    return true;
  }
  switch (type) {
  case T_UINT: return parse_uint(text, flags & (F_HEX | F_HEX_IN), out, why, why_len);
  case T_BOOL:
    if (!strcmp(text, "true") || !strcmp(text, "1"))
      *out = 1;
    else if (!strcmp(text, "false") || !strcmp(text, "0"))
      *out = 0;
    else {
      snprintf(why, why_len, "'%s' is not a boolean (expected true or false)", text);
      return false;
    }
    return true;
  case T_ENUM:
    for (const struct enum_name *e = enums; e->name; e++)
      if (strcmp(e->name, text) == 0) {
        *out = (uint64_t)e->value;
        return true;
      }
    {
      char list[256];
      enum_list(enums, list, sizeof list);
      snprintf(why, why_len, "'%s' is not a valid value (expected %s)", text, list);
    }
    return false;
  case T_DURATION:
    if (!parse_quantity(quantity_of(type), text, out, why, why_len)) return false;
    if (*out > CONFIG_MAX_DURATION_NS) {
      snprintf(why, why_len, "'%s' is longer than the 1000000s limit", text);
      return false;
    }
    return true;
  case T_SIZE:
  case T_FREQ:
  case T_BANDWIDTH:
  case T_MILLI: return parse_quantity(quantity_of(type), text, out, why, why_len);
  case T_STRING:
  case T_HIST_FILE: break;
  }
  return true;
}

static void format_with_units(const struct unit *units, uint64_t v, char *buf, size_t len) {
  const struct unit *best = &units[0];
  for (const struct unit *u = units; u->symbol; u++)
    if (v != 0 && v % u->mult == 0) best = u;
  snprintf(buf, len, "%" PRIu64 "%s", v / best->mult, best->symbol);
}

void value_format(enum value_type type, unsigned flags, const struct enum_name *enums, uint64_t v,
                  char *buf, size_t len) {
  if ((flags & F_UNLIMITED) && v == 0) {
    snprintf(buf, len, "unlimited");
    return;
  }
  switch (type) {
  case T_UINT:
    if (flags & F_HEX)
      snprintf(buf, len, "0x%" PRIx64, v);
    else
      snprintf(buf, len, "%" PRIu64, v);
    return;
  case T_BOOL: snprintf(buf, len, "%s", v ? "true" : "false"); return;
  case T_ENUM:
    for (const struct enum_name *e = enums; e->name; e++)
      if ((uint64_t)e->value == v) {
        snprintf(buf, len, "%s", e->name);
        return;
      }
    snprintf(buf, len, "?");
    return;
  case T_DURATION: format_with_units(duration_units, v, buf, len); return;
  case T_SIZE: format_with_units(size_units, v, buf, len); return;
  case T_FREQ: format_with_units(freq_units, v, buf, len); return;
  case T_BANDWIDTH: format_with_units(bandwidth_write_units, v, buf, len); return;
  case T_MILLI: {
    uint64_t frac = v % 1000;
    if (frac == 0)
      snprintf(buf, len, "%" PRIu64, v / 1000);
    else if (frac % 100 == 0)
      snprintf(buf, len, "%" PRIu64 ".%" PRIu64, v / 1000, frac / 100);
    else if (frac % 10 == 0)
      snprintf(buf, len, "%" PRIu64 ".%02" PRIu64, v / 1000, frac / 10);
    else
      snprintf(buf, len, "%" PRIu64 ".%03" PRIu64, v / 1000, frac);
    return;
  }
  case T_STRING:
  case T_HIST_FILE: buf[0] = '\0'; return;
  }
}
