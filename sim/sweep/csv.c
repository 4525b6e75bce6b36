/* csv.c — RFC 4180 fields, one record per line (see csv.h). */
#include "sweep/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool reserve(struct csv_line *l, size_t extra) {
  if (l->oom) return false;
  if (l->len + extra + 1 <= l->cap) return true;
  size_t nc = l->cap ? l->cap : 256;
  while (nc < l->len + extra + 1) nc *= 2;
  char *ns = realloc(l->s, nc);
  if (!ns) {
    l->oom = true;
    return false;
  }
  l->s = ns;
  l->cap = nc;
  return true;
}

static bool blank(char c) { return c == ' ' || (unsigned char)c < 0x20 || c == 0x7f; }

/* Judged on the text as written, control characters already spaces. */
static bool needs_quotes(const char *t) {
  if (!*t) return false;
  if (blank(*t) || blank(t[strlen(t) - 1])) return true;
  return strpbrk(t, ",\"") != NULL;
}

bool csv_add(struct csv_line *l, const char *text) {
  if (!text) text = "";
  size_t n = strlen(text);
  if (!reserve(l, 2 * n + 3)) return false;
  if (l->n_fields++) l->s[l->len++] = ',';
  bool q = needs_quotes(text);
  if (q) l->s[l->len++] = '"';
  for (const char *p = text; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '"') l->s[l->len++] = '"';
    l->s[l->len++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
  }
  if (q) l->s[l->len++] = '"';
  l->s[l->len] = '\0';
  return true;
}

bool csv_end(struct csv_line *l) {
  if (!reserve(l, 1)) return false;
  l->s[l->len++] = '\n';
  l->s[l->len] = '\0';
  return true;
}

void csv_line_reset(struct csv_line *l) {
  l->len = 0;
  l->n_fields = 0;
  if (l->s) l->s[0] = '\0';
}

void csv_line_free(struct csv_line *l) {
  free(l->s);
  memset(l, 0, sizeof *l);
}

long csv_split(char *line, char **fields, size_t max) {
  size_t n = 0;
  char *r = line, *w = line;
  for (;;) {
    if (n == max) return -1;
    fields[n++] = w;
    if (*r == '"') {
      r++;
      for (;;) {
        if (!*r) return -1; /* unterminated quote */
        if (*r == '"') {
          if (r[1] == '"') {
            *w++ = '"';
            r += 2;
            continue;
          }
          r++;
          break;
        }
        *w++ = *r++;
      }
      if (*r && *r != ',') return -1; /* text after the closing quote */
    } else {
      while (*r && *r != ',') {
        if (*r == '"') return -1; /* a quote inside an unquoted field */
        *w++ = *r++;
      }
    }
    bool more = *r == ',';
    *w++ = '\0';
    if (!more) break;
    r++;
  }
  return (long)n;
}

bool csv_file_read(const char *path, struct csv_file *f, struct diag *err) {
  memset(f, 0, sizeof *f);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return diag_at(err, path, 0, NULL, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return diag_at(err, path, 0, NULL, "not a regular file");
  }
  size_t cap = (size_t)st.st_size + 1;
  f->data = malloc(cap);
  if (!f->data) {
    close(fd);
    return diag_at(err, path, 0, NULL, "out of memory");
  }
  for (;;) {
    if (f->len + 1 >= cap) {
      char *nd = realloc(f->data, cap * 2);
      if (!nd) {
        close(fd);
        csv_file_free(f);
        return diag_at(err, path, 0, NULL, "out of memory");
      }
      f->data = nd;
      cap *= 2;
    }
    ssize_t r = read(fd, f->data + f->len, cap - 1 - f->len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      csv_file_free(f);
      return diag_at(err, path, 0, NULL, "cannot read: %s", strerror(e));
    }
    if (r == 0) break;
    f->len += (size_t)r;
  }
  close(fd);
  f->data[f->len] = '\0';
  if (memchr(f->data, '\0', f->len)) {
    csv_file_free(f);
    return diag_at(err, path, 0, NULL, "holds NUL bytes: not a CSV file");
  }
  size_t n = 0;
  for (size_t i = 0; i < f->len; i++) n += f->data[i] == '\n';
  f->lines = malloc((n + 1) * sizeof *f->lines);
  if (!f->lines) {
    csv_file_free(f);
    return diag_at(err, path, 0, NULL, "out of memory");
  }
  char *start = f->data;
  for (char *p; (p = memchr(start, '\n', f->len - (size_t)(start - f->data)));) {
    *p = '\0';
    if (p > start && p[-1] == '\r') p[-1] = '\0'; /* tolerate CRLF from other tools */
    f->lines[f->n_lines++] = start;
    start = p + 1;
  }
  f->complete_len = (size_t)(start - f->data);
  f->tail_len = f->len - f->complete_len;
  return true;
}

void csv_file_free(struct csv_file *f) {
  free(f->data);
  free(f->lines);
  memset(f, 0, sizeof *f);
}
