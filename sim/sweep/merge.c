/* merge.c — shard CSVs -> one CSV in point order (see merge.h). */
#include "sweep/merge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "sweep/table.h"

struct entry {
  uint64_t point;
  size_t file, row;
};

static int by_point(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  if (x->point != y->point) return x->point < y->point ? -1 : 1;
  return x->file < y->file ? -1 : x->file > y->file;
}

static bool parse_u64(const char *s, uint64_t *v) {
  if (*s < '0' || *s > '9') return false;
  errno = 0;
  char *end;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno) return false;
  *v = x;
  return true;
}

static void add_note(char *note, size_t len, const char *text) {
  size_t used = strlen(note);
  if (used < len) snprintf(note + used, len - used, "%s%s", used ? "\n" : "", text);
}

bool sweep_merge(const char *const *inputs, size_t n_inputs, const char *output,
                 bool allow_missing, char *note, size_t note_len, struct diag *err) {
  note[0] = '\0';
  if (n_inputs == 0) return diag_set(err, "no input files");
  struct sweep_table *t = calloc(n_inputs, sizeof *t);
  if (!t) return diag_set(err, "out of memory");
  struct entry *entries = NULL;
  bool ok = true;
  size_t n_entries = 0, loaded = 0;
  long col_sweep = -1, col_points = -1;
  const char *fingerprint = NULL, *points_text = NULL;
  const char *first_file = NULL;
  char msg[512];

  for (size_t f = 0; ok && f < n_inputs; f++) {
    if (!sweep_table_read(inputs[f], &t[f], err)) {
      ok = false;
      break;
    }
    loaded++;
    if (t[f].file.tail_len) {
      snprintf(msg, sizeof msg, "%s: skipped an incomplete last line (%zu bytes)", inputs[f],
               t[f].file.tail_len);
      add_note(note, note_len, msg);
    }
    if (f == 0) {
      col_sweep = sweep_table_column(&t[0], "sweep");
      col_points = sweep_table_column(&t[0], "sweep_points");
      if (t[0].n_cols == 0 || strcmp(t[0].header[0], "point") != 0 || col_sweep < 0 ||
          col_points < 0)
        ok = diag_at(err, inputs[0], 1, NULL,
                     "not a sweep results CSV (needs columns point, sweep and sweep_points)");
    } else if (strcmp(t[f].file.lines[0], t[0].file.lines[0]) != 0) {
      ok = diag_at(err, inputs[f], 1, NULL,
                   "the header differs from %s's: not shards of the same sweep", inputs[0]);
    }
    n_entries += t[f].n_rows;
  }
  if (ok) {
    entries = malloc((n_entries ? n_entries : 1) * sizeof *entries);
    if (!entries) ok = diag_set(err, "out of memory");
  }
  size_t k = 0;
  for (size_t f = 0; ok && f < n_inputs; f++) {
    for (size_t r = 0; ok && r < t[f].n_rows; r++) {
      long line = (long)r + 2;
      const char *fp = sweep_table_cell(&t[f], r, (size_t)col_sweep);
      const char *pts = sweep_table_cell(&t[f], r, (size_t)col_points);
      if (!fingerprint) {
        fingerprint = fp;
        points_text = pts;
        first_file = inputs[f];
      }
      uint64_t id;
      if (strcmp(fp, fingerprint) != 0)
        ok = diag_at(err, inputs[f], line, "sweep",
                     "fingerprint %s differs from %s's %s: not the same sweep", fp, first_file,
                     fingerprint);
      else if (strcmp(pts, points_text) != 0)
        ok = diag_at(err, inputs[f], line, "sweep_points", "%s points, but %s says %s", pts,
                     first_file, points_text);
      else if (!parse_u64(sweep_table_cell(&t[f], r, 0), &id))
        ok = diag_at(err, inputs[f], line, "point", "'%s' is not a point number",
                     sweep_table_cell(&t[f], r, 0));
      else
        entries[k++] = (struct entry){id, f, r};
    }
  }
  uint64_t total = 0;
  if (ok && points_text && !parse_u64(points_text, &total))
    ok = diag_at(err, first_file, 2, "sweep_points", "'%s' is not a count", points_text);
  if (ok) qsort(entries, n_entries, sizeof *entries, by_point);

  /* Overlaps and points beyond the sweep. */
  for (size_t i = 0; ok && i < n_entries; i++) {
    const struct entry *e = &entries[i];
    if (e->point >= total)
      ok = diag_at(err, inputs[e->file], (long)e->row + 2, "point",
                   "point %" PRIu64 " is beyond the sweep's %" PRIu64 " points", e->point, total);
    else if (i > 0 && entries[i - 1].point == e->point) {
      size_t dups = 0;
      for (size_t j = 1; j < n_entries; j++) dups += entries[j].point == entries[j - 1].point;
      const struct entry *d = &entries[i - 1];
      ok = diag_set(err,
                    "point %" PRIu64 " is in both %s:%zu and %s:%zu (%zu overlapping row%s in "
                    "all): shards must be disjoint",
                    e->point, inputs[d->file], d->row + 2, inputs[e->file], e->row + 2, dups,
                    dups == 1 ? "" : "s");
    }
  }
  /* Missing points, as ranges between the (sorted, distinct) ids. */
  if (ok && (uint64_t)n_entries < total) {
    char list[400] = "";
    size_t used = 0, ranges = 0;
    uint64_t next = 0;
    for (size_t i = 0; i <= n_entries; i++) {
      uint64_t upto = i < n_entries ? entries[i].point : total; /* gap is [next, upto) */
      if (upto > next) {
        if (ranges == 10) {
          used += (size_t)snprintf(list + used, sizeof list - used, ", ...");
          break;
        }
        if (upto - next == 1)
          used += (size_t)snprintf(list + used, sizeof list - used, "%s%" PRIu64,
                                   ranges ? ", " : "", next);
        else
          used += (size_t)snprintf(list + used, sizeof list - used, "%s%" PRIu64 "-%" PRIu64,
                                   ranges ? ", " : "", next, upto - 1);
        ranges++;
      }
      if (i < n_entries) next = entries[i].point + 1;
    }
    snprintf(msg, sizeof msg, "%" PRIu64 " of %" PRIu64 " points missing: %s",
             total - (uint64_t)n_entries, total, list);
    if (allow_missing) add_note(note, note_len, msg);
    else ok = diag_set(err, "%s (run their shards, or use --partial to merge what there is)", msg);
  }
  if (ok) {
    struct atomic_file af;
    ok = atomic_file_open(&af, output, "merged CSV", err);
    if (ok) {
      fputs(t[0].file.lines[0], af.f);
      fputc('\n', af.f);
      for (size_t i = 0; i < n_entries; i++) {
        fputs(t[entries[i].file].file.lines[entries[i].row + 1], af.f);
        fputc('\n', af.f);
      }
      ok = atomic_file_commit(&af, "merged CSV", err);
    }
  }
  for (size_t f = 0; f < loaded; f++) sweep_table_free(&t[f]);
  free(t);
  free(entries);
  return ok;
}
