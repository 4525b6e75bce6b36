/* platform.h — the C face of the SystemC binding: build the simulated machine
 * from a configuration, run it to an end condition, and return its summary.
 *
 * SystemC can elaborate and run one simulation per process, so platform_run()
 * is called at most once per process (the explorer forks for more).
 *
 * Not for: parsing input or printing results; the CLI does that. */
#ifndef APFSIM_PLATFORM_H
#define APFSIM_PLATFORM_H

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "config/config.h"
#include "core/diag.h"
#include "report/report.h"

struct machine_window_hook;

struct platform_run_request {
  const struct sim_config *cfg;
  const char *trace_path;     /* NULL: the trace is hashed but not written */
  bool progress;              /* progress lines on stderr */
  FILE *console;              /* the guest's console lines also go here; NULL: trace only */
  bool *bad_input;            /* optional: set when false is returned because the
                                 configuration cannot run (e.g. a guest kernel that does
                                 not load, a workload that does not fit) */
  const struct machine_window_hook *window_hook; /* optional: the explorer's (machine.h) */
};

/* Runs the simulation. Returns false only for an internal error, a configuration the
 * machine cannot be built from, or an output file that cannot be written (err says
 * which); any guest outcome, including a crash of the guest, is a successful run with
 * summary->outcome set. The summary's vcpus and sections arrays are heap copies: free
 * them with platform_summary_release. */
bool platform_run(const struct platform_run_request *req, struct run_summary *summary,
                  struct diag *err);

/* Frees what platform_run allocated in *summary (not the struct itself). */
void platform_summary_release(struct run_summary *summary);

/* "apfsim X.Y.Z (unicorn A.B.C, systemc 2.3.4, ...)" */
void platform_print_version(FILE *out);

/* Versions as they go into trace headers. */
const char *platform_apfsim_version(void);
void platform_unicorn_version(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
