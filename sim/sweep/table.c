/* table.c — a results CSV split into cells (see table.h). */
#include "sweep/table.h"

#include <stdlib.h>
#include <string.h>

void sweep_table_free(struct sweep_table *t) {
  csv_file_free(&t->file);
  free(t->store);
  free(t->header);
  free(t->cells);
  memset(t, 0, sizeof *t);
}

long sweep_table_column(const struct sweep_table *t, const char *name) {
  for (size_t i = 0; i < t->n_cols; i++)
    if (!strcmp(t->header[i], name)) return (long)i;
  return -1;
}

bool sweep_table_read(const char *path, struct sweep_table *t, struct diag *err) {
  memset(t, 0, sizeof *t);
  if (!csv_file_read(path, &t->file, err)) return false;
  if (t->file.n_lines == 0) {
    sweep_table_free(t);
    return diag_at(err, path, 1, NULL, "no header line: not a sweep results CSV");
  }
  /* One copy of every line, split in place, so the unsplit lines stay. */
  size_t total = 0;
  for (size_t i = 0; i < t->file.n_lines; i++) total += strlen(t->file.lines[i]) + 1;
  t->store = malloc(total ? total : 1);
  if (!t->store) {
    sweep_table_free(t);
    return diag_set(err, "out of memory");
  }
  char *w = t->store;
  char **lines = malloc(t->file.n_lines * sizeof *lines);
  if (!lines) {
    sweep_table_free(t);
    return diag_set(err, "out of memory");
  }
  for (size_t i = 0; i < t->file.n_lines; i++) {
    size_t n = strlen(t->file.lines[i]) + 1;
    memcpy(w, t->file.lines[i], n);
    lines[i] = w;
    w += n;
  }
  /* The header: as many fields as it has commas + 1, at most. */
  size_t max = 1;
  for (const char *p = lines[0]; *p; p++) max += *p == ',';
  t->header = malloc(max * sizeof *t->header);
  long nh = t->header ? csv_split(lines[0], t->header, max) : -1;
  if (nh <= 0) {
    free(lines);
    sweep_table_free(t);
    return diag_at(err, path, 1, NULL, "the header is not a CSV line");
  }
  t->n_cols = (size_t)nh;
  t->n_rows = t->file.n_lines - 1;
  t->cells = malloc((t->n_rows ? t->n_rows : 1) * t->n_cols * sizeof *t->cells);
  char **fields = malloc((t->n_cols + 1) * sizeof *fields);
  if (!t->cells || !fields) {
    free(lines);
    free(fields);
    sweep_table_free(t);
    return diag_set(err, "out of memory");
  }
  for (size_t i = 0; i < t->n_rows; i++) {
    /* One spare field slot tells a row with too many cells. */
    long n = csv_split(lines[i + 1], fields, t->n_cols + 1);
    if (n != (long)t->n_cols) {
      long line = (long)i + 2;
      free(lines);
      free(fields);
      size_t n_cols = t->n_cols;
      sweep_table_free(t);
      if (n < 0) return diag_at(err, path, line, NULL, "not a well-formed CSV row");
      return diag_at(err, path, line, NULL, "has %ld cells; the header has %zu", n, n_cols);
    }
    memcpy(&t->cells[i * t->n_cols], fields, t->n_cols * sizeof *fields);
  }
  free(fields);
  free(lines);
  return true;
}
