/* quantity.h — a number with an optional unit, as a sweep range endpoint or a
 * plotted parameter value is written ("10us", "64MiB", "2.5GHz", "0.25").
 *
 * Values are held exactly as integer thousandths of the family's base unit
 * (ns, bytes, MHz, bytes/s, or 1 for a plain number), so range arithmetic
 * is the same on every machine. The unit syntax follows docs/config.md; a
 * generated value is written back in the largest unit that states it with at
 * most three decimals ("17.8us"), which the config loader accepts.
 *
 * Not for: checking that a value suits a config field — the config loader
 * does that when a sweep point is validated. */
#ifndef APFSIM_SWEEP_QUANTITY_H
#define APFSIM_SWEEP_QUANTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum quantity_family {
  QUANTITY_PLAIN,     /* no unit */
  QUANTITY_DURATION,  /* ns us ms s -> ns */
  QUANTITY_SIZE,      /* B KiB MiB GiB TiB -> bytes */
  QUANTITY_FREQUENCY, /* MHz GHz -> MHz */
  QUANTITY_BANDWIDTH, /* B/s kB/s MB/s GB/s KiB/s MiB/s GiB/s -> bytes/s */
};

/* Largest value a quantity may hold, in thousandths (about 9.2e15 base units:
 * more than the 10^6 s a config duration may be). */
#define QUANTITY_MAX_MILLI ((uint64_t)INT64_MAX)

struct quantity {
  enum quantity_family family;
  uint64_t milli; /* thousandths of the base unit */
};

/* Parses "<digits>[.<digits>][unit]". On failure writes a fragment such as
 * "'3parsec' has an unknown unit 'parsec'" into why. A value finer than a
 * thousandth of the base unit, or above QUANTITY_MAX_MILLI, is an error. */
bool quantity_parse(const char *text, struct quantity *q, char *why, size_t why_len);

/* The value in the largest unit of its family that states it with at most
 * three decimals, trailing zeros dropped: "1us", "17.8us", "1536B" -> "1.5KiB",
 * "0.25". Sizes use binary units, bandwidths decimal ones. */
void quantity_format(const struct quantity *q, char *buf, size_t len);

/* Name of the base unit ("ns", "B", "MHz", "B/s", "" for plain). */
const char *quantity_base_unit(enum quantity_family f);

#endif
