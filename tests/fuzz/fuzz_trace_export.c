/* fuzz_trace_export.c — libFuzzer harness: `apfsim export`, an event trace
 * turned into Perfetto / Chrome trace-event JSON (sim/timeline,
 * timeline_export_perfetto). The exporter reads the trace with sim/trace and
 * then parses the fields of every event it knows, which is input parsing of
 * its own.
 *
 * The input is a trace file's bytes (memfd); the JSON goes to the harness's
 * scratch directory and is removed after each input.
 *
 * Oracles besides the sanitizers: the export succeeds exactly when the trace
 * reader accepts the whole trace (timeline.h: a trace the reader rejects is
 * never exported), a failure is a one-line message and leaves no file, and
 * what it writes is valid JSON (jansson parses it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "timeline/timeline.h"
#include "trace/trace.h"

static char out_path[512];

/* True when sim/trace reads the whole trace to its "# trace-end". */
static bool readable(const char *path) {
  struct diag d;
  struct trace_reader *r = trace_reader_open(path, &d);
  if (!r) return false;
  struct trace_record rec;
  enum trace_read_status st;
  while ((st = trace_reader_next(r, &rec, &d)) == TRACE_READ_EVENT) {
  }
  trace_reader_close(r);
  return st == TRACE_READ_END;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!out_path[0]) fuzz_tmpdir_path("timeline.json", out_path, sizeof out_path);
  char path[64];
  int fd = fuzz_file(data, size, path);
  bool ok = readable(path);
  struct timeline_stats st;
  struct diag d = {{0}};
  enum timeline_result res = timeline_export_perfetto(path, out_path, &st, &d);
  fuzz_file_close(fd);
  if (res == TIMELINE_OK) {
    fuzz_note("trace_export", "exported %llu events, %llu slices, %llu flows, %llu malformed",
              (unsigned long long)st.events, (unsigned long long)st.slices, (unsigned long long)st.flows,
              (unsigned long long)st.malformed);
    if (!ok) fuzz_fail("trace_export", "exported a trace the reader rejects");
    json_error_t jerr;
    json_t *j = json_load_file(out_path, 0, &jerr);
    if (!j) fuzz_fail("trace_export", "output is not JSON: line %d: %s", jerr.line, jerr.text);
    json_decref(j);
    unlink(out_path);
  } else {
    fuzz_check_message("trace_export", &d);
    if (ok) fuzz_fail("trace_export", "a readable trace failed to export: %s", d.msg);
    if (access(out_path, F_OK) == 0) fuzz_fail("trace_export", "a failed export left %s", out_path);
  }
  return 0;
}
