/* timeline.h — exports an apfsim event trace as a timeline that
 * ui.perfetto.dev and chrome://tracing open (Chrome trace-event JSON).
 *
 * Tracks: one per vCPU (its state: user, kernel, halted, blocked on host),
 * one per guest task (running on a vCPU, waiting for a page), swap-device
 * requests as async slices, outstanding APF tokens as async slices, and each
 * token as a flow arrow from kvm_async_pf_not_present to kvm_async_pf_ready.
 * Events outside the vocabulary become instant events on their source's
 * track. The vocabulary is docs/trace-format.md, "Event vocabulary"; the
 * output is described in docs/perfetto.md.
 *
 * Not for: reading or validating traces (sim/trace does that, and a trace
 * the reader rejects is never exported), or any other output format. */
#ifndef APFSIM_TIMELINE_H
#define APFSIM_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/diag.h"

struct timeline_stats {
  uint64_t events;              /* trace events read */
  uint64_t vcpus, tasks;        /* tracks */
  uint64_t slices;              /* vCPU-state, task and async slices */
  uint64_t instants;
  uint64_t flows;               /* not-present -> page-ready arrows */
  uint64_t unknown;             /* events outside the vocabulary (drawn as instants) */
  uint64_t malformed;           /* vocabulary events whose fields did not parse (instants) */
  uint64_t tokens_never_ready;  /* not-present never followed by its page-ready */
  uint64_t requests_unfinished; /* device requests submitted but never done */
};

enum timeline_result {
  TIMELINE_OK = 0,
  TIMELINE_BAD_INPUT, /* the trace is unreadable or corrupt, or out_path cannot be created */
  TIMELINE_FAILED,    /* out of memory, or writing failed half-way (nothing is left) */
};

/* Reads the whole trace once to check it (a corrupt trace gives
 * "FILE:LINE: field: problem" and nothing is written), then writes the JSON
 * to out_path atomically ("-": stdout). stats may be NULL. */
enum timeline_result timeline_export_perfetto(const char *trace_path, const char *out_path,
                                              struct timeline_stats *stats, struct diag *d);

#endif
