/* csv.h — the CSV dialect of sweep results: RFC 4180 fields (quoted with ""
 * when they hold a comma, a quote or surrounding spaces), comma separated,
 * one record per '\n'-terminated line. A record never spans lines: control
 * characters in a value are written as spaces, so a reader can trust line
 * boundaries — which is what lets an interrupted sweep resume from the last
 * complete line.
 *
 * Not for: which columns a sweep has (row.h) or the results file as a whole
 * (results.h). */
#ifndef APFSIM_SWEEP_CSV_H
#define APFSIM_SWEEP_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"

/* A growing line of text. Functions that append return false once out of
 * memory and leave `oom` set; the line is then unusable. */
struct csv_line {
  char *s;
  size_t len, cap;
  size_t n_fields;
  bool oom;
};

/* Appends a field (and the comma before it when it is not the first). */
bool csv_add(struct csv_line *l, const char *text);
/* Appends '\n'. */
bool csv_end(struct csv_line *l);
void csv_line_reset(struct csv_line *l); /* empty again, keeps the buffer */
void csv_line_free(struct csv_line *l);

/* Splits one record (without its '\n') in place into at most max fields.
 * Returns the number of fields, or -1 when the record is malformed (a stray
 * quote, text after a closing quote) or has more than max fields. */
long csv_split(char *line, char **fields, size_t max);

/* A CSV file read whole: its complete lines and, when the last line lacks
 * its '\n' (a write cut short), that tail. */
struct csv_file {
  char *data; /* the file's bytes, NUL-terminated; lines point into it */
  size_t len;
  char **lines; /* complete lines, '\n' replaced by NUL */
  size_t n_lines;
  size_t complete_len; /* bytes up to and including the last '\n' */
  size_t tail_len;     /* bytes after it (0: none) */
};

bool csv_file_read(const char *path, struct csv_file *f, struct diag *err);
void csv_file_free(struct csv_file *f);

#endif
