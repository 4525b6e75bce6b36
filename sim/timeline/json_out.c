/* json_out.c — see json_out.h. */
#include "timeline/json_out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void json_out_format_us(uint64_t ns, char *buf, size_t len) {
  snprintf(buf, len, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
}

/* A JSON string literal for s. jansson refuses invalid UTF-8; a trace line
 * may carry arbitrary bytes in free-text fields, so those bytes become '?'
 * rather than an encoding failure. */
static void put_string(struct json_out *j, const char *s) {
  json_t *v = json_string(s);
  char *copy = NULL;
  if (!v) {
    copy = strdup(s);
    if (copy) {
      for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
      v = json_string(copy);
    }
  }
  if (!v || json_dumpf(v, j->f, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) != 0) j->failed = true;
  json_decref(v);
  free(copy);
}

void json_out_begin(struct json_out *j, FILE *f) {
  j->f = f;
  j->events = 0;
  j->failed = false;
  /* displayTimeUnit only changes how the legacy viewer labels times; the
   * timestamps themselves are always microseconds in this format. */
  if (fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f) == EOF) j->failed = true;
}

void json_out_event(struct json_out *j, const struct json_event *e) {
  FILE *f = j->f;
  char ts[32];
  json_out_format_us(e->ts_ns, ts, sizeof ts);
  if (fprintf(f, "%s{\"ph\":\"%c\",\"ts\":%s,\"pid\":%" PRIu32 ",\"tid\":%" PRIu32,
              j->events ? ",\n" : "", e->ph, ts, e->pid, e->tid) < 0)
    j->failed = true;
  if (e->name) {
    fputs(",\"name\":", f);
    put_string(j, e->name);
  }
  if (e->cat) {
    fputs(",\"cat\":", f);
    put_string(j, e->cat);
  }
  if (e->has_id) fprintf(f, ",\"id\":%" PRIu64, e->id);
  if (e->has_dur) {
    char dur[32];
    json_out_format_us(e->dur_ns, dur, sizeof dur);
    fprintf(f, ",\"dur\":%s", dur);
  }
  if (e->scope) fprintf(f, ",\"s\":\"%s\"", e->scope);
  if (e->bp) fprintf(f, ",\"bp\":\"%s\"", e->bp);
  if (e->args) {
    fputs(",\"args\":", f);
    if (json_dumpf(e->args, f, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) != 0)
      j->failed = true;
  }
  if (fputc('}', f) == EOF) j->failed = true;
  j->events++;
}

bool json_out_end(struct json_out *j) {
  if (fputs("\n]}\n", j->f) == EOF) j->failed = true;
  if (ferror(j->f)) j->failed = true;
  return !j->failed;
}
