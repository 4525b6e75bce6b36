/* atomic_file.c — temporary file + fsync + rename (see atomic_file.h). */
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void release(struct atomic_file *af) {
  free(af->path);
  free(af->tmp_path);
  memset(af, 0, sizeof *af);
}

bool atomic_file_open(struct atomic_file *af, const char *path, const char *what, struct diag *d) {
  memset(af, 0, sizeof *af);
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  const char *base = path + dirlen;
  struct stat st;
  if (*base == '\0' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
    return diag_set(d, "%s: the %s path names a directory", path, what);
  size_t cap = strlen(path) + 64;
  af->path = strdup(path);
  af->tmp_path = malloc(cap);
  if (!af->path || !af->tmp_path) {
    release(af);
    return diag_set(d, "%s: out of memory", path);
  }
  for (unsigned n = 0; n < 1000; n++) {
    snprintf(af->tmp_path, cap, "%.*s.%s.tmp-%ld-%u", (int)dirlen, path, base, (long)getpid(), n);
    int fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      af->f = fdopen(fd, "w");
      if (af->f) return true;
      diag_set(d, "%s: %s", af->tmp_path, strerror(errno));
      close(fd);
      unlink(af->tmp_path);
      release(af);
      return false;
    }
    if (errno != EEXIST) {
      diag_set(d, "%s: cannot create the %s's temporary file %s: %s", path, what, af->tmp_path,
               strerror(errno));
      release(af);
      return false;
    }
  }
  diag_set(d, "%s: too many stale temporary files beside it", path);
  release(af);
  return false;
}

bool atomic_file_commit(struct atomic_file *af, const char *what, struct diag *d) {
  if (!af->f) {
    release(af);
    return diag_set(d, "%s: no open file to commit", what);
  }
  bool ok = !ferror(af->f) && fflush(af->f) == 0 && fsync(fileno(af->f)) == 0;
  int err = ok ? 0 : (errno ? errno : EIO);
  if (fclose(af->f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  af->f = NULL;
  if (ok && rename(af->tmp_path, af->path) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    unlink(af->tmp_path);
    diag_set(d, "%s: cannot write the %s: %s", af->path, what, strerror(err));
  }
  release(af);
  return ok;
}

void atomic_file_abort(struct atomic_file *af) {
  if (af->f) fclose(af->f);
  if (af->tmp_path) unlink(af->tmp_path);
  release(af);
}

bool atomic_file_write_all(const char *path, const void *data, size_t len, const char *what,
                           struct diag *d) {
  struct atomic_file af;
  if (!atomic_file_open(&af, path, what, d)) return false;
  if (fwrite(data, 1, len, af.f) != len) {
    int err = errno;
    diag_set(d, "%s: cannot write the %s: %s", path, what, strerror(err));
    atomic_file_abort(&af);
    return false;
  }
  return atomic_file_commit(&af, what, d);
}
