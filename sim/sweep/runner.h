/* runner.h — runs a sweep's points as child processes, in parallel, and
 * appends their rows to the results file in point order.
 *
 * Each point is one `APFSIM run BASE --seed S --set P=V ... --json - --quiet`
 * in its own process (SystemC runs one simulation per process), started
 * with fork+exec in its own process group, so a terminal's Ctrl-C reaches
 * only the sweep, which then stops its children itself; they also die with
 * the sweep (PR_SET_PDEATHSIG) if it is killed outright. The summary comes
 * back on the child's stdout; its stderr is kept for messages.
 *
 * Finished rows wait in a reorder window until every earlier row is
 * written, so the file stays in point order whatever -j is; the window
 * (4 x jobs, at least 16 points) bounds how far launching runs ahead of
 * writing, and so how much work an interruption can lose.
 *
 * A child that dies of a signal or fails internally is a `crashed` row, one
 * that outlives --run-timeout a `host_timeout` row; the sweep goes on. A
 * child that reports bad input (exit 2) or a missing capability (exit 4)
 * stops the sweep: every other point would fail the same way.
 *
 * Signals SIGINT, SIGTERM and SIGHUP are taken through a signalfd while the
 * runner works: the children are killed, the rows written so far stay, and
 * the caller learns which signal ended the run.
 *
 * Not for: deciding what to run (plan.h) or printing (the callback does). */
#ifndef APFSIM_SWEEP_RUNNER_H
#define APFSIM_SWEEP_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "sweep/plan.h"
#include "sweep/results.h"

enum sweep_event_kind {
  SWEEP_EVENT_ROW,    /* a row was written */
  SWEEP_EVENT_FAILED, /* a run crashed or timed out (before its row is written) */
  SWEEP_EVENT_TICK,   /* time passed (about twice a second), for progress displays */
};

struct sweep_event {
  enum sweep_event_kind kind;
  uint64_t point;      /* ROW, FAILED */
  const char *outcome; /* ROW, FAILED */
  const char *detail;  /* FAILED: how it ended, with the child's last stderr line */
  uint64_t written;    /* rows written by this run */
  uint64_t finished;   /* points finished by this run (written or waiting) */
  uint64_t remaining;  /* points this run had to do at the start */
  unsigned running;
  double elapsed_s; /* host time since the start */
};

struct sweep_runner {
  const struct sweep_plan *plan;
  const struct sweep_shard *shard;
  struct sweep_results *out; /* rows go here; out->n_done of the shard are done */
  const char *exe;           /* the apfsim binary running points */
  const char *version;       /* its version, for the provenance column */
  unsigned jobs;
  double run_timeout_s;  /* 0: none */
  uint64_t stop_after;   /* tests: after this many rows, stop as if SIGTERM came (0: never) */
  void (*on_event)(void *ctx, const struct sweep_event *ev);
  void *ctx;
};

enum sweep_end {
  SWEEP_END_DONE,    /* every point of the shard has its row */
  SWEEP_END_SIGNAL,  /* stopped by `signo` (or --stop-after, as SIGTERM) */
  SWEEP_END_REFUSED, /* a child exited with `child_exit` 2 or 4; message says why */
  SWEEP_END_ERROR,   /* the sweep itself failed (I/O, exec); message says why */
};

struct sweep_report {
  enum sweep_end end;
  int signo;
  int child_exit;
  uint64_t written;
  char message[DIAG_MAX];
};

void sweep_run(const struct sweep_runner *r, struct sweep_report *rep);

/* Runs argv (argv[0] is the program path) to completion and captures up to
 * len-1 bytes of its stdout. False when it could not run or did not exit 0. */
bool sweep_capture(char *const argv[], char *out, size_t len);

#endif
