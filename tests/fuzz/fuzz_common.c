/* fuzz_common.c — see fuzz_common.h. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void fuzz_fail(const char *harness, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_%s: invariant broken: ", harness);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

void fuzz_note(const char *harness, const char *fmt, ...) {
  static int verbose = -1; /* harness state: read the environment once */
  if (verbose < 0) {
    const char *v = getenv("APFSIM_FUZZ_VERBOSE");
    verbose = v && v[0] && strcmp(v, "0") != 0;
  }
  if (!verbose) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_%s: ", harness);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int fuzz_file(const uint8_t *data, size_t size, char path[64]) {
  int fd = memfd_create("apfsim-fuzz", MFD_CLOEXEC);
  if (fd < 0) fuzz_fail("common", "memfd_create: %s", strerror(errno));
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fuzz_fail("common", "writing the memfd: %s", strerror(errno));
    done += (size_t)n;
  }
  snprintf(path, 64, "/proc/self/fd/%d", fd);
  return fd;
}

void fuzz_file_close(int fd) {
  if (fd >= 0) close(fd);
}

/* Harness-level state (never the simulator's): the scratch directory and the
 * files put into it, so the exit handler can remove exactly those. */
#define MAX_TMP_FILES 32
static char tmpdir[256];
static char *tmp_files[MAX_TMP_FILES];
static size_t n_tmp_files;

static void remove_tmpdir(void) {
  for (size_t i = 0; i < n_tmp_files; i++) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, tmp_files[i]);
    unlink(p);
    free(tmp_files[i]);
  }
  n_tmp_files = 0;
  if (tmpdir[0]) rmdir(tmpdir);
}

const char *fuzz_tmpdir(void) {
  if (tmpdir[0]) return tmpdir;
  struct stat st;
  const char *base = getenv("TMPDIR");
  if (!base || !base[0])
    base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                                          : "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%s/apfsim-fuzz-XXXXXX", base);
  if (!mkdtemp(tmpdir)) fuzz_fail("common", "mkdtemp %s: %s", tmpdir, strerror(errno));
  atexit(remove_tmpdir);
  return tmpdir;
}

void fuzz_tmpdir_path(const char *name, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s/%s", fuzz_tmpdir(), name);
  if (n < 0 || (size_t)n >= len) fuzz_fail("common", "path %s/%s too long", tmpdir, name);
}

void fuzz_tmpdir_put(const char *name, const char *text) {
  char p[512];
  fuzz_tmpdir_path(name, p, sizeof p);
  FILE *f = fopen(p, "wb");
  if (!f || fputs(text, f) == EOF || fclose(f) != 0) fuzz_fail("common", "cannot write %s", p);
  if (n_tmp_files == MAX_TMP_FILES) fuzz_fail("common", "too many scratch files");
  tmp_files[n_tmp_files] = strdup(name);
  if (!tmp_files[n_tmp_files]) fuzz_fail("common", "out of memory");
  n_tmp_files++;
}

void fuzz_check_message(const char *harness, const struct diag *d) {
  fuzz_note(harness, "rejected: %s", d->msg);
  if (!d->msg[0]) fuzz_fail(harness, "failed without a message");
  for (const char *p = d->msg; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      fuzz_fail(harness, "message has control character 0x%02x: %s", (unsigned)(unsigned char)*p, d->msg);
}
