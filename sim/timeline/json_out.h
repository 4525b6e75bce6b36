/* json_out.h — streams Chrome trace-event JSON ({"traceEvents":[...]}), one
 * event per line, internal to the timeline exporter.
 *
 * Timestamps and durations are written from integer nanoseconds as decimal
 * microseconds with exactly three decimals ("12.345"), never through a double,
 * so an export is byte-identical on every machine and keeps ns precision at
 * any time. Strings and args objects go through jansson, so escaping is
 * jansson's, not ours. Not for: reading JSON. */
#ifndef APFSIM_TIMELINE_JSON_OUT_H
#define APFSIM_TIMELINE_JSON_OUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json_out {
  FILE *f;
  uint64_t events; /* written so far */
  bool failed;     /* a write or an encoding failed; the file is not valid */
};

/* One trace event. name/cat NULL: left out. args NULL: no "args"; it is only
 * read (the caller keeps ownership). */
struct json_event {
  char ph; /* B E X i b e s f M */
  uint64_t ts_ns;
  uint32_t pid, tid;
  const char *name;
  const char *cat;
  bool has_id;
  uint64_t id;
  bool has_dur;
  uint64_t dur_ns;
  const char *scope; /* instants: "t", "p" or "g" */
  const char *bp;    /* flow end binding point: "e" = enclosing slice */
  const json_t *args;
};

void json_out_begin(struct json_out *j, FILE *f);
void json_out_event(struct json_out *j, const struct json_event *e);
/* Closes the array and the object. False if anything failed on the way. */
bool json_out_end(struct json_out *j);

/* "12.345": ns as microseconds with three decimals. buf: at least 32 bytes. */
void json_out_format_us(uint64_t ns, char *buf, size_t len);

#endif
