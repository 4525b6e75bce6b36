/* helpers.h — scratch directories and small file utilities for the trace
 * tests. Each test gets a fresh directory so "nothing else was left behind"
 * can be checked by listing it. */
#ifndef APFSIM_TEST_TRACE_HELPERS_H
#define APFSIM_TEST_TRACE_HELPERS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct scratch {
  char dir[64];
  char path[256]; /* scratch for building file names */
};

static inline int scratch_setup(void **state) {
  struct scratch *s = calloc(1, sizeof *s);
  if (!s) return -1;
  strcpy(s->dir, "/tmp/apfsim-trace-test-XXXXXX");
  if (!mkdtemp(s->dir)) return -1;
  *state = s;
  return 0;
}

static inline int scratch_teardown(void **state) {
  struct scratch *s = *state;
  DIR *dir = opendir(s->dir);
  if (dir) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(dir)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(p, sizeof p, "%s/%s", s->dir, e->d_name);
      unlink(p);
    }
    closedir(dir);
  }
  rmdir(s->dir);
  free(s);
  return 0;
}

static inline const char *scratch_file(struct scratch *s, const char *name) {
  snprintf(s->path, sizeof s->path, "%s/%s", s->dir, name);
  return s->path;
}

/* Number of entries in the scratch directory (excluding . and ..). */
static inline int scratch_count(const struct scratch *s) {
  DIR *dir = opendir(s->dir);
  int n = 0;
  struct dirent *e;
  while (dir && (e = readdir(dir)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  if (dir) closedir(dir);
  return n;
}

static inline void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fwrite(text, 1, strlen(text), f);
  fclose(f);
}

/* Whole file as a NUL-terminated string (caller frees); *len gets its size. */
static inline char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n < 2) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  if (len) *len = n;
  return buf;
}

#endif
