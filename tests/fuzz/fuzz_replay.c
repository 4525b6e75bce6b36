/* fuzz_replay.c — runs a harness's LLVMFuzzerTestOneInput over every file of
 * the corpus and regression directories given on the command line, once,
 * without fuzzing: the ctest cases fuzz_replay_<harness> (and CI's ASan+UBSan
 * pass) use it so the committed inputs stay clean with any compiler, gcc
 * included, without libFuzzer.
 *
 * Each input is copied into a buffer of exactly its size, as libFuzzer does,
 * so a read past the end is caught by AddressSanitizer. Files are taken in
 * name order (deterministic output); names starting with '.' are skipped.
 * A directory given but missing or empty is an error: a corpus that silently
 * vanished would make the test pass while testing nothing. Directories after
 * "--" may be empty or missing (the regression inputs: none until a bug is
 * found); files named README* there are documentation, not inputs.
 *
 * Usage: fuzz_replay_<harness> DIR_OR_FILE... [-- DIR...]
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) break;
    if (len == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  bool bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    return -1;
  }
  /* Exactly len bytes, so ASan sees any over-read. */
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 1;
}

static int names_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Inputs run from `dir`, or -1 on error. */
static int run_dir(const char *dir, bool optional) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "%s: %s\n", dir, strerror(errno));
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || (optional && strncmp(e->d_name, "README", 6) == 0)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) break;
      names = nn;
    }
    names[n] = strdup(e->d_name);
    if (names[n]) n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, names_cmp);
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      int r = run_file(path);
      if (r < 0) count = -1;
      else if (count >= 0) count++;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR_OR_FILE... [-- DIR...]\n", argv[0]);
    return 2;
  }
  int status = 0;
  bool optional = false;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      optional = true;
      continue;
    }
    struct stat st;
    int n;
    if (stat(argv[i], &st) != 0 && optional && errno == ENOENT) {
      n = 0;
    } else if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
      n = -1;
    } else if (S_ISDIR(st.st_mode)) {
      n = run_dir(argv[i], optional);
      if (n == 0 && !optional) fprintf(stderr, "%s: no inputs\n", argv[i]);
    } else {
      n = run_file(argv[i]);
    }
    if (n < 0 || (n == 0 && !optional)) status = 1;
    else printf("%s: %d input%s replayed\n", argv[i], n, n == 1 ? "" : "s");
  }
  return status;
}
