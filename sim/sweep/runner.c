/* runner.c — the sweep's process pool (see runner.h). */
#define _GNU_SOURCE /* pipe2 */
#include "sweep/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sweep/row.h"

#define MAX_SUMMARY_BYTES (16u * 1024u * 1024u)
#define STDERR_KEEP 2048u
#define TICK_S 0.5

struct slot {
  bool used;
  pid_t pid;
  int out_fd, err_fd; /* -1 once at end of file */
  uint64_t pos;       /* position in the shard */
  struct sweep_point pt;
  char *out;
  size_t out_len, out_cap;
  bool out_overflow;
  char err[STDERR_KEEP + 1]; /* the last bytes of the child's stderr */
  size_t err_len;
  double started;
  bool reaped, timed_out;
  int status;
};

struct pending {
  bool ready;
  char *row;
  size_t len;
  uint64_t point;
  char outcome[32];
};

struct pool {
  const struct sweep_runner *r;
  struct sweep_report *rep;
  struct slot *slots;
  unsigned running;
  struct pending *pend;
  size_t window;
  uint64_t next, wpos, total, start, finished;
  int stopping; /* signal number */
  bool fatal;
  struct timespec t0;
  struct csv_line line;
};

static double now_s(const struct pool *p) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - p->t0.tv_sec) + (double)(t.tv_nsec - p->t0.tv_nsec) * 1e-9;
}

static void emit(struct pool *p, enum sweep_event_kind kind, uint64_t point, const char *outcome,
                 const char *detail) {
  if (!p->r->on_event) return;
  struct sweep_event ev = {.kind = kind,
                           .point = point,
                           .outcome = outcome,
                           .detail = detail,
                           .written = p->rep->written,
                           .finished = p->finished,
                           .remaining = p->total - p->start,
                           .running = p->running,
                           .elapsed_s = now_s(p)};
  p->r->on_event(p->r->ctx, &ev);
}

__attribute__((format(printf, 3, 4))) static void fail(struct pool *p, enum sweep_end end,
                                                       const char *fmt, ...) {
  if (p->fatal) return;
  p->fatal = true;
  p->rep->end = end;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->rep->message, sizeof p->rep->message, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------ children */

static void kill_all(struct pool *p) {
  for (unsigned i = 0; i < p->r->jobs; i++)
    if (p->slots[i].used && !p->slots[i].reaped) kill(-p->slots[i].pid, SIGKILL);
}

/* Builds the child's argv; NULL when out of memory. */
static char **child_argv(const struct pool *p, const struct sweep_point *pt, char *seed,
                         size_t seed_len) {
  char **ov;
  size_t n;
  if (!sweep_plan_overrides(p->r->plan, pt->combo, &ov, &n)) return NULL;
  char **argv = calloc(2 * n + 10, sizeof *argv);
  if (!argv) {
    sweep_strings_free(ov, n);
    return NULL;
  }
  snprintf(seed, seed_len, "%" PRIu64, pt->seed);
  size_t k = 0;
  argv[k++] = (char *)p->r->exe;
  argv[k++] = "run";
  argv[k++] = p->r->plan->spec->base_path;
  argv[k++] = "--seed";
  argv[k++] = seed;
  for (size_t i = 0; i < n; i++) {
    argv[k++] = "--set";
    argv[k++] = ov[i]; /* owned by ov; freed with it */
  }
  argv[k++] = "--json";
  argv[k++] = "-";
  argv[k++] = "--quiet";
  argv[k] = NULL;
  free(ov); /* the strings live on in argv */
  return argv;
}

static void free_child_argv(char **argv) {
  /* The --set values are the only allocated entries. */
  for (size_t i = 5; argv[i]; i++)
    if (!strcmp(argv[i], "--set")) free(argv[++i]);
  free(argv);
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void exec_child(char *const argv[], int out_w, int err_w, pid_t parent) {
  setpgid(0, 0); /* a terminal's signals reach the sweep, not the runs */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127); /* the sweep died before prctl */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  sigaction(SIGPIPE, &dfl, NULL);
  int in = open("/dev/null", O_RDONLY);
  if (in < 0 || dup2(in, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0) _exit(127);
  execv(argv[0], argv);
  static const char msg[] = "exec failed\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(127);
}

static bool launch(struct pool *p, struct slot *s, uint64_t pos) {
  memset(s, 0, sizeof *s);
  s->out_fd = s->err_fd = -1;
  s->pos = pos;
  sweep_plan_point(p->r->plan, sweep_shard_point(p->r->shard, pos), &s->pt);
  char seed[32];
  char **argv = child_argv(p, &s->pt, seed, sizeof seed);
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (!argv || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    fail(p, SWEEP_END_ERROR, "cannot start a run: %s", argv ? strerror(errno) : "out of memory");
    goto fail;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    fail(p, SWEEP_END_ERROR, "cannot fork a run: %s", strerror(errno));
    goto fail;
  }
  if (pid == 0) exec_child(argv, out[1], err[1], parent);
  /* Also here, so that kill(-pid) works even before the child's own call. */
  setpgid(pid, pid);
  free_child_argv(argv);
  close(out[1]);
  close(err[1]);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  s->used = true;
  s->pid = pid;
  s->out_fd = out[0];
  s->err_fd = err[0];
  s->started = now_s(p);
  p->running++;
  return true;
fail:
  if (argv) free_child_argv(argv);
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (err[i] >= 0) close(err[i]);
  }
  return false;
}

static void drain(struct slot *s, bool is_out) {
  int *fd = is_out ? &s->out_fd : &s->err_fd;
  char buf[65536];
  for (;;) {
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return; /* EAGAIN: more later */
    if (n == 0) {
      close(*fd);
      *fd = -1;
      return;
    }
    if (is_out) {
      if (s->out_len + (size_t)n > MAX_SUMMARY_BYTES) {
        s->out_overflow = true;
        continue;
      }
      if (s->out_len + (size_t)n + 1 > s->out_cap) {
        size_t nc = s->out_cap ? s->out_cap : 16384;
        while (nc < s->out_len + (size_t)n + 1) nc *= 2;
        char *nb = realloc(s->out, nc);
        if (!nb) {
          s->out_overflow = true;
          continue;
        }
        s->out = nb;
        s->out_cap = nc;
      }
      memcpy(s->out + s->out_len, buf, (size_t)n);
      s->out_len += (size_t)n;
    } else {
      /* Keep the tail: the last lines say why a run failed. */
      size_t m = (size_t)n > STDERR_KEEP ? STDERR_KEEP : (size_t)n;
      const char *src = buf + (size_t)n - m;
      if (s->err_len + m > STDERR_KEEP) {
        size_t drop = s->err_len + m - STDERR_KEEP;
        memmove(s->err, s->err + drop, s->err_len - drop);
        s->err_len -= drop;
      }
      memcpy(s->err + s->err_len, src, m);
      s->err_len += m;
    }
  }
}

/* The last non-empty line of the child's stderr. */
static const char *last_line(struct slot *s) {
  s->err[s->err_len] = '\0';
  size_t n = s->err_len;
  while (n > 0 && (s->err[n - 1] == '\n' || s->err[n - 1] == '\r')) s->err[--n] = '\0';
  char *nl = strrchr(s->err, '\n');
  return nl ? nl + 1 : s->err;
}

static void store(struct pool *p, const struct slot *s, const char *outcome) {
  struct pending *pd = &p->pend[s->pos % p->window];
  pd->row = malloc(p->line.len);
  if (!pd->row) {
    fail(p, SWEEP_END_ERROR, "out of memory");
    return;
  }
  memcpy(pd->row, p->line.s, p->line.len);
  pd->len = p->line.len;
  pd->point = s->pt.index;
  snprintf(pd->outcome, sizeof pd->outcome, "%s", outcome);
  pd->ready = true;
  p->finished++;
}

/* A child has exited and closed its pipes: make its row. */
static void finish(struct pool *p, struct slot *s) {
  const struct sweep_runner *r = p->r;
  char detail[DIAG_MAX];
  const char *failed = NULL;
  int st = s->status;
  if (p->stopping || p->fatal) {
    /* Killed by us, or about to be: its point runs again on --resume. */
  } else if (s->timed_out) {
    failed = SWEEP_OUTCOME_HOST_TIMEOUT;
    snprintf(detail, sizeof detail, "killed after %g s of host time (--run-timeout)",
             r->run_timeout_s);
  } else if (WIFSIGNALED(st)) {
    failed = SWEEP_OUTCOME_CRASHED;
    snprintf(detail, sizeof detail, "killed by signal %d (%s)%s%s", WTERMSIG(st),
             strsignal(WTERMSIG(st)), s->err_len ? ": " : "", last_line(s));
  } else if (WEXITSTATUS(st) == 0) {
    char why[256];
    if (s->out_overflow)
      snprintf(why, sizeof why, "the summary is larger than %u bytes", MAX_SUMMARY_BYTES);
    else {
      char outcome[32];
      if (sweep_row_from_summary(r->plan, &s->pt, r->version, s->out ? s->out : "", s->out_len,
                                 &p->line, outcome, sizeof outcome, why, sizeof why)) {
        store(p, s, outcome);
        goto done;
      }
    }
    failed = SWEEP_OUTCOME_CRASHED;
    snprintf(detail, sizeof detail, "exited 0 but %s", why);
  } else if (WEXITSTATUS(st) == 2 || WEXITSTATUS(st) == 4) {
    p->rep->child_exit = WEXITSTATUS(st);
    fail(p, SWEEP_END_REFUSED, "point %" PRIu64 ": `apfsim run` exited with status %d: %s",
         s->pt.index, WEXITSTATUS(st), last_line(s));
  } else if (WEXITSTATUS(st) == 127) {
    fail(p, SWEEP_END_ERROR, "cannot run %s: %s", r->exe, last_line(s));
  } else {
    failed = SWEEP_OUTCOME_CRASHED;
    snprintf(detail, sizeof detail, "exited with status %d%s%s", WEXITSTATUS(st),
             s->err_len ? ": " : "", last_line(s));
  }
  if (failed) {
    if (!sweep_row_failed(r->plan, &s->pt, r->version, failed, &p->line))
      fail(p, SWEEP_END_ERROR, "out of memory");
    else {
      emit(p, SWEEP_EVENT_FAILED, s->pt.index, failed, detail);
      store(p, s, failed);
    }
  }
done:
  free(s->out);
  s->out = NULL;
  s->used = false;
  p->running--;
}

/* Writes the rows that are next in point order. */
static void flush(struct pool *p) {
  while (!p->stopping && !p->fatal && p->wpos < p->total) {
    struct pending *pd = &p->pend[p->wpos % p->window];
    if (!pd->ready) return;
    struct diag err;
    bool ok = sweep_results_append(p->r->out, pd->row, pd->len, &err);
    free(pd->row);
    pd->row = NULL;
    pd->ready = false;
    if (!ok) {
      fail(p, SWEEP_END_ERROR, "%s", err.msg);
      return;
    }
    p->wpos++;
    p->rep->written++;
    emit(p, SWEEP_EVENT_ROW, pd->point, pd->outcome, NULL);
    if (p->r->stop_after && p->rep->written == p->r->stop_after) {
      p->stopping = SIGTERM; /* as if killed: tests of --resume */
      kill_all(p);
    }
  }
}

/* ------------------------------------------------------------ the loop */

static void take_signals(struct pool *p, int sfd) {
  struct signalfd_siginfo si;
  while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (si.ssi_signo == SIGCHLD) continue; /* reaping is done for every slot below */
    if (!p->stopping) p->stopping = (int)si.ssi_signo;
    kill_all(p);
  }
}

static void reap(struct pool *p) {
  for (unsigned i = 0; i < p->r->jobs; i++) {
    struct slot *s = &p->slots[i];
    if (!s->used || s->reaped) continue;
    int st;
    pid_t w = waitpid(s->pid, &st, WNOHANG);
    if (w == s->pid) {
      s->reaped = true;
      s->status = st;
    }
  }
}

static void check_timeouts(struct pool *p, double now) {
  if (p->r->run_timeout_s <= 0) return;
  for (unsigned i = 0; i < p->r->jobs; i++) {
    struct slot *s = &p->slots[i];
    if (s->used && !s->reaped && !s->timed_out && now - s->started >= p->r->run_timeout_s) {
      s->timed_out = true;
      kill(-s->pid, SIGKILL);
    }
  }
}

void sweep_run(const struct sweep_runner *r, struct sweep_report *rep) {
  memset(rep, 0, sizeof *rep);
  struct pool p = {.r = r, .rep = rep};
  clock_gettime(CLOCK_MONOTONIC, &p.t0);
  p.total = sweep_shard_size(r->shard, r->plan->n_points);
  p.start = p.next = p.wpos = r->out->n_done;
  p.window = r->jobs * 4u > 16u ? r->jobs * 4u : 16u;
  p.slots = calloc(r->jobs, sizeof *p.slots);
  p.pend = calloc(p.window, sizeof *p.pend);
  struct pollfd *fds = calloc(2u * r->jobs + 1, sizeof *fds);
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, &old);
  /* An inherited SIGCHLD = SIG_IGN would reap the runs behind our back. */
  struct sigaction dfl = {.sa_handler = SIG_DFL}, old_chld;
  sigaction(SIGCHLD, &dfl, &old_chld);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (!p.slots || !p.pend || !fds || sfd < 0) {
    fail(&p, SWEEP_END_ERROR, "cannot set up the process pool: %s",
         sfd < 0 ? strerror(errno) : "out of memory");
  }
  double last_tick = 0;
  while (p.slots && p.pend && fds && sfd >= 0) {
    while (!p.stopping && !p.fatal && p.running < r->jobs && p.next < p.total &&
           p.next < p.wpos + p.window) {
      struct slot *s = NULL;
      for (unsigned i = 0; i < r->jobs && !s; i++)
        if (!p.slots[i].used) s = &p.slots[i];
      if (!launch(&p, s, p.next)) break;
      p.next++;
    }
    if (p.running == 0 && (p.stopping || p.fatal || p.wpos >= p.total)) break;

    nfds_t n = 0;
    fds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (unsigned i = 0; i < r->jobs; i++) {
      struct slot *s = &p.slots[i];
      if (!s->used) continue;
      if (s->out_fd >= 0) fds[n++] = (struct pollfd){.fd = s->out_fd, .events = POLLIN};
      if (s->err_fd >= 0) fds[n++] = (struct pollfd){.fd = s->err_fd, .events = POLLIN};
    }
    double now = now_s(&p), wait_s = TICK_S;
    if (r->run_timeout_s > 0)
      for (unsigned i = 0; i < r->jobs; i++)
        if (p.slots[i].used && !p.slots[i].timed_out) {
          double left = p.slots[i].started + r->run_timeout_s - now;
          if (left < wait_s) wait_s = left > 0 ? left : 0;
        }
    if (poll(fds, n, (int)(wait_s * 1000) + 1) < 0 && errno != EINTR) {
      fail(&p, SWEEP_END_ERROR, "poll: %s", strerror(errno));
      kill_all(&p);
    }
    take_signals(&p, sfd);
    for (unsigned i = 0; i < r->jobs; i++) {
      struct slot *s = &p.slots[i];
      if (!s->used) continue;
      if (s->out_fd >= 0) drain(s, true);
      if (s->err_fd >= 0) drain(s, false);
    }
    reap(&p);
    now = now_s(&p);
    check_timeouts(&p, now);
    for (unsigned i = 0; i < r->jobs; i++) {
      struct slot *s = &p.slots[i];
      if (s->used && s->reaped && s->out_fd < 0 && s->err_fd < 0) finish(&p, s);
    }
    if (p.fatal || p.stopping) kill_all(&p);
    flush(&p);
    if (now - last_tick >= TICK_S) {
      last_tick = now;
      emit(&p, SWEEP_EVENT_TICK, 0, NULL, NULL);
    }
  }
  /* Leave no child behind, whatever ended the loop. */
  if (p.slots) {
    kill_all(&p);
    for (unsigned i = 0; i < r->jobs; i++) {
      struct slot *s = &p.slots[i];
      if (!s->used) continue;
      if (!s->reaped) waitpid(s->pid, NULL, 0);
      if (s->out_fd >= 0) close(s->out_fd);
      if (s->err_fd >= 0) close(s->err_fd);
      free(s->out);
    }
  }
  if (p.pend)
    for (size_t i = 0; i < p.window; i++) free(p.pend[i].row);
  if (!p.fatal) {
    if (p.stopping) {
      rep->end = SWEEP_END_SIGNAL;
      rep->signo = p.stopping;
    } else {
      rep->end = SWEEP_END_DONE;
    }
  }
  if (sfd >= 0) close(sfd);
  sigaction(SIGCHLD, &old_chld, NULL);
  sigprocmask(SIG_SETMASK, &old, NULL);
  csv_line_free(&p.line);
  free(p.slots);
  free(p.pend);
  free(fds);
}

bool sweep_capture(char *const argv[], char *out, size_t len) {
  int fd[2];
  if (pipe2(fd, O_CLOEXEC) != 0) return false;
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]);
    close(fd[1]);
    return false;
  }
  if (pid == 0) {
    int in = open("/dev/null", O_RDWR);
    if (in < 0 || dup2(in, 0) < 0 || dup2(fd[1], 1) < 0 || dup2(in, 2) < 0) _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fd[1]);
  size_t n = 0;
  for (;;) {
    ssize_t k = read(fd[0], out + n, len - 1 - n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    n += (size_t)k;
    if (n == len - 1) {
      char sink[256]; /* keep reading so the child is not blocked on a full pipe */
      while (read(fd[0], sink, sizeof sink) > 0) {
      }
      break;
    }
  }
  out[n] = '\0';
  close(fd[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}
