/* quantity.c — numbers with units in exact thousandths (see quantity.h). */
#include "sweep/quantity.h"

#include <stdio.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

struct unit {
  const char *name;
  enum quantity_family family;
  uint64_t factor; /* base units per unit */
  bool preferred;  /* used when formatting */
};

/* The units docs/config.md lists, largest first within a family so that
 * formatting can take the first that fits. */
static const struct unit units[] = {
    {"s", QUANTITY_DURATION, 1000000000ull, true},
    {"ms", QUANTITY_DURATION, 1000000ull, true},
    {"us", QUANTITY_DURATION, 1000ull, true},
    {"ns", QUANTITY_DURATION, 1ull, true},
    {"TiB", QUANTITY_SIZE, 1ull << 40, true},
    {"GiB", QUANTITY_SIZE, 1ull << 30, true},
    {"MiB", QUANTITY_SIZE, 1ull << 20, true},
    {"KiB", QUANTITY_SIZE, 1ull << 10, true},
    {"B", QUANTITY_SIZE, 1ull, true},
    {"GHz", QUANTITY_FREQUENCY, 1000ull, true},
    {"MHz", QUANTITY_FREQUENCY, 1ull, true},
    {"GB/s", QUANTITY_BANDWIDTH, 1000000000ull, true},
    {"MB/s", QUANTITY_BANDWIDTH, 1000000ull, true},
    {"kB/s", QUANTITY_BANDWIDTH, 1000ull, true},
    {"B/s", QUANTITY_BANDWIDTH, 1ull, true},
    {"GiB/s", QUANTITY_BANDWIDTH, 1ull << 30, false},
    {"MiB/s", QUANTITY_BANDWIDTH, 1ull << 20, false},
    {"KiB/s", QUANTITY_BANDWIDTH, 1ull << 10, false},
};
#define N_UNITS (sizeof units / sizeof units[0])

const char *quantity_base_unit(enum quantity_family f) {
  switch (f) {
    case QUANTITY_DURATION: return "ns";
    case QUANTITY_SIZE: return "B";
    case QUANTITY_FREQUENCY: return "MHz";
    case QUANTITY_BANDWIDTH: return "B/s";
    case QUANTITY_PLAIN: break;
  }
  return "";
}

bool quantity_parse(const char *text, struct quantity *q, char *why, size_t why_len) {
  const char *p = text;
  u128 digits = 0, scale = 1;
  size_t n_int = 0, n_frac = 0;
  for (; *p >= '0' && *p <= '9'; p++, n_int++)
    if (n_int < 30) digits = digits * 10 + (u128)(*p - '0');
  if (n_int == 0) {
    snprintf(why, why_len, "'%s' is not a number (expected digits, e.g. 10us or 4)", text);
    return false;
  }
  if (*p == '.') {
    p++;
    for (; *p >= '0' && *p <= '9'; p++, n_frac++) {
      if (n_int + n_frac < 30) {
        digits = digits * 10 + (u128)(*p - '0');
        scale *= 10;
      }
    }
    if (n_frac == 0) {
      snprintf(why, why_len, "'%s' has no digits after the decimal point", text);
      return false;
    }
  }
  if (n_int + n_frac >= 30) {
    snprintf(why, why_len, "'%s' has too many digits", text);
    return false;
  }
  const struct unit *u = NULL;
  if (*p) {
    for (size_t i = 0; i < N_UNITS && !u; i++)
      if (!strcmp(p, units[i].name)) u = &units[i];
    if (!u) {
      snprintf(why, why_len,
               "'%s' has an unknown unit '%s' (expected ns, us, ms, s, B, KiB, MiB, GiB, TiB, "
               "MHz, GHz, B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s or no unit)",
               text, p);
      return false;
    }
  }
  /* digits / scale * factor * 1000 must be a whole number of thousandths. */
  u128 num = digits * (u ? u->factor : 1) * 1000;
  if (num % scale != 0) {
    snprintf(why, why_len, "'%s' is finer than a thousandth of %s", text,
             u ? quantity_base_unit(u->family) : "one");
    return false;
  }
  num /= scale;
  if (num > QUANTITY_MAX_MILLI) {
    snprintf(why, why_len, "'%s' is too large", text);
    return false;
  }
  q->family = u ? u->family : QUANTITY_PLAIN;
  q->milli = (uint64_t)num;
  return true;
}

/* "<whole>[.<up to 3 decimals>]" of thousandths, trailing zeros dropped. */
static void format_thousandths(uint64_t milli, const char *unit, char *buf, size_t len) {
  uint64_t whole = milli / 1000, frac = milli % 1000;
  if (frac == 0) {
    snprintf(buf, len, "%llu%s", (unsigned long long)whole, unit);
    return;
  }
  char f[4];
  snprintf(f, sizeof f, "%03u", (unsigned)frac);
  for (int i = 2; i > 0 && f[i] == '0'; i--) f[i] = '\0';
  snprintf(buf, len, "%llu.%s%s", (unsigned long long)whole, f, unit);
}

void quantity_format(const struct quantity *q, char *buf, size_t len) {
  if (q->family == QUANTITY_PLAIN) {
    format_thousandths(q->milli, "", buf, len);
    return;
  }
  const struct unit *base = NULL;
  for (size_t i = 0; i < N_UNITS; i++) {
    const struct unit *u = &units[i];
    if (u->family != q->family || !u->preferred) continue;
    if (u->factor == 1) base = u;
    /* In unit u the value is milli / factor thousandths: exact when that
     * divides, and written in u only when it is at least one whole u. */
    if (q->milli >= (u128)u->factor * 1000 && q->milli % u->factor == 0) {
      format_thousandths(q->milli / u->factor, u->name, buf, len);
      return;
    }
  }
  format_thousandths(q->milli, base ? base->name : "", buf, len);
}
