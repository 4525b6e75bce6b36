/* results.c — create, check, resume and append the results CSV (see
 * results.h). */
#include "sweep/results.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "sweep/row.h"

bool sweep_results_check(const struct csv_file *f, const char *path, const struct sweep_plan *p,
                         const struct sweep_shard *shard, uint64_t *n_rows, struct diag *err) {
  *n_rows = 0;
  struct csv_line header = {0};
  if (!sweep_row_header(p, &header)) return diag_set(err, "out of memory");
  header.s[header.len - 1] = '\0'; /* without its '\n', as the lines are */
  bool ok = true;
  if (f->n_lines == 0) {
    ok = diag_at(err, path, 1, NULL, "no header line");
  } else if (strcmp(f->lines[0], header.s) != 0) {
    ok = diag_at(err, path, 1, NULL,
                 "the header differs from this sweep's columns: the file belongs to another "
                 "sweep (or another version of this one)");
  }
  csv_line_free(&header);
  if (!ok) return false;

  char **fields = malloc((p->n_columns + 1) * sizeof *fields);
  if (!fields) return diag_set(err, "out of memory");
  uint64_t shard_size = sweep_shard_size(shard, p->n_points);
  size_t col_sweep = p->n_columns - 2, col_points = p->n_columns - 1;
  char expect[32], points_text[32];
  snprintf(points_text, sizeof points_text, "%" PRIu64, p->n_points);
  for (size_t i = 1; ok && i < f->n_lines; i++) {
    long line = (long)i + 1;
    uint64_t row = i - 1;
    char *copy = strdup(f->lines[i]);
    if (!copy) {
      ok = diag_set(err, "out of memory");
      break;
    }
    long n = csv_split(copy, fields, p->n_columns + 1);
    if (n < 0 || (size_t)n != p->n_columns) {
      ok = diag_at(err, path, line, NULL, "not a row of this sweep (%ld fields, expected %zu)", n,
                   p->n_columns);
    } else if (row >= shard_size) {
      ok = diag_at(err, path, line, NULL, "more rows than the %" PRIu64 " points of this %s",
                   shard_size, shard->n > 1 ? "shard" : "sweep");
    } else if (strcmp(fields[col_sweep], p->fingerprint) != 0 ||
               strcmp(fields[col_points], points_text) != 0) {
      ok = diag_at(err, path, line, "sweep",
                   "fingerprint %s is not this sweep's %s: the sweep file or its base config "
                   "changed since the CSV was started",
                   fields[col_sweep], p->fingerprint);
    } else {
      struct sweep_point pt;
      sweep_plan_point(p, sweep_shard_point(shard, row), &pt);
      snprintf(expect, sizeof expect, "%" PRIu64, pt.index);
      if (strcmp(fields[0], expect) != 0)
        ok = diag_at(err, path, line, "point",
                     "row for point %s where point %s comes next (a different --shard, or rows "
                     "out of order)",
                     fields[0], expect);
    }
    free(copy);
    if (ok) (*n_rows)++;
  }
  free(fields);
  return ok;
}

static bool lock(int fd, const char *path, struct diag *err) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
  if (errno == EWOULDBLOCK)
    return diag_at(err, path, 0, NULL, "another apfsim sweep is writing this file");
  return diag_at(err, path, 0, NULL, "cannot lock: %s", strerror(errno));
}

static bool create(const char *path, const struct sweep_plan *p, struct sweep_results *r,
                   struct diag *err) {
  struct csv_line header = {0};
  if (!sweep_row_header(p, &header)) return diag_set(err, "out of memory");
  bool ok = atomic_file_write_all(path, header.s, header.len, "results CSV", err);
  csv_line_free(&header);
  if (!ok) return false;
  r->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (r->fd < 0) return diag_at(err, path, 0, NULL, "cannot open: %s", strerror(errno));
  return lock(r->fd, path, err);
}

bool sweep_results_open(const char *path, const struct sweep_plan *p,
                        const struct sweep_shard *shard, bool resume, struct sweep_results *r,
                        char *note, size_t note_len, struct diag *err) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  note[0] = '\0';
  r->path = strdup(path);
  if (!r->path) return diag_set(err, "out of memory");
  struct stat st;
  bool exists = stat(path, &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    sweep_results_close(r);
    return diag_at(err, path, 0, NULL, "not a regular file");
  }
  if (!exists || (resume && st.st_size == 0)) {
    if (!create(path, p, r, err)) {
      sweep_results_close(r);
      return false;
    }
    return true;
  }
  if (!resume) {
    sweep_results_close(r);
    return diag_at(err, path, 0, NULL,
                   "already exists: use --resume to continue it, or remove it to start over");
  }
  /* Lock before reading, so a sweep still writing cannot race the check. */
  r->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
  if (r->fd < 0) {
    diag_at(err, path, 0, NULL, "cannot open: %s", strerror(errno));
    sweep_results_close(r);
    return false;
  }
  struct csv_file f;
  bool ok = lock(r->fd, path, err) && csv_file_read(path, &f, err);
  if (!ok) {
    sweep_results_close(r);
    return false;
  }
  ok = sweep_results_check(&f, path, p, shard, &r->n_done, err);
  if (ok && f.tail_len) {
    /* A row cut short by a crash: drop it; its point runs again. */
    if (f.n_lines == 0) {
      ok = diag_at(err, path, 1, NULL, "the header line is incomplete; remove the file");
    } else if (ftruncate(r->fd, (off_t)f.complete_len) != 0 || fsync(r->fd) != 0) {
      ok = diag_at(err, path, 0, NULL, "cannot cut the incomplete last line: %s",
                   strerror(errno));
    } else {
      snprintf(note, note_len,
               "%s: dropped an incomplete last line (%zu bytes) left by an interrupted write; "
               "its point runs again",
               path, f.tail_len);
    }
  }
  csv_file_free(&f);
  if (!ok) sweep_results_close(r);
  return ok;
}

bool sweep_results_append(struct sweep_results *r, const char *row, size_t len,
                          struct diag *err) {
  /* One write(2) for the whole line; a short write (disk full) is finished
   * by further writes, and a failure leaves an incomplete last line that
   * --resume cuts off. */
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(r->fd, row + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return diag_at(err, r->path, 0, NULL, "cannot write a row: %s", strerror(errno));
    done += (size_t)w;
  }
  if (fsync(r->fd) != 0)
    return diag_at(err, r->path, 0, NULL, "cannot sync a row to disk: %s", strerror(errno));
  return true;
}

void sweep_results_close(struct sweep_results *r) {
  if (r->fd >= 0) close(r->fd);
  free(r->path);
  memset(r, 0, sizeof *r);
  r->fd = -1;
}
