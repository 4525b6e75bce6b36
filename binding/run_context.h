// run_context.h — what every module of one run shares: the configuration and
// the trace. Passed to each module's constructor; there is no global state.
#ifndef APFSIM_RUN_CONTEXT_H
#define APFSIM_RUN_CONTEXT_H

extern "C" {
#include "config/config.h"
#include "trace/trace.h"
}

namespace apfsim {

struct RunContext {
  const sim_config &cfg;
  trace_writer *trace;
};

}  // namespace apfsim
#endif
