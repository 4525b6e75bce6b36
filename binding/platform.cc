// platform.cc — assembles the simulated machine from the configuration as
// SystemC modules and runs it (DESIGN.md §3). The C modules hold the logic;
// this file only wires them into SystemC, owns the run's trace, and turns the
// end state into a summary.
#include "platform.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <systemc>
#include <tlm>
#include <unicorn/unicorn.h>

#include "run_context.h"
#include "sim_time.h"
#include "smoke.h"
#include "swap_device_module.h"

namespace apfsim {

void fix_time_resolution() { sc_core::sc_set_time_resolution(1, sc_core::SC_PS); }

namespace {

// Flushes the trace as simulated time advances (so it never holds a whole run
// in memory) and reports progress. Flush points do not change the output.
class Housekeeping : public sc_core::sc_module {
 public:
  Housekeeping(sc_core::sc_module_name name, RunContext &ctx, bool progress)
      : sc_module(name), ctx_(ctx), progress_(progress) {
    SC_HAS_PROCESS(Housekeeping);
    SC_THREAD(run);
  }
  bool io_failed() const { return io_failed_; }
  const diag &io_error() const { return err_; }

 private:
  static constexpr int kSteps = 100;
  void run() {
    uint64_t end = ctx_.cfg.limits.max_sim_time_ns;
    uint64_t step = end / kSteps ? end / kSteps : 1;
    for (int i = 1;; i++) {
      wait(ns(step));
      if (!io_failed_ && !trace_flush_until(ctx_.trace, now_ns(), &err_)) io_failed_ = true;
      if (progress_ && i <= kSteps)
        fprintf(stderr, "\rapfsim: %3d%% of %llu ns simulated", i * 100 / kSteps,
                (unsigned long long)end);
    }
  }
  RunContext &ctx_;
  bool progress_;
  bool io_failed_ = false;
  diag err_{};
};

struct SmokePlatform {
  SmokeTimer timer;
  SwapDeviceModule device;
  SmokeRequestGenerator generator;
  explicit SmokePlatform(RunContext &ctx)
      : timer("timer", ctx), device("swap_device", ctx), generator("smoke_generator", ctx) {
    generator.socket.bind(device.socket);
  }
};

void fill_smoke_summary(const SmokePlatform &p, const sim_config &cfg, run_summary *s) {
  const swap_device_stats &st = p.device.stats();
  uint64_t mean = st.requests ? st.total_latency_ns / st.requests : 0;
  s->outcome = OUTCOME_OK;
  snprintf(s->verdict, sizeof s->verdict,
           "platform smoke run (no guest yet): %llu timer ticks every %llu ns; %llu of %u device "
           "requests completed, mean latency %llu ns, max %llu ns",
           (unsigned long long)p.timer.ticks(), (unsigned long long)cfg.smoke.timer_period_ns,
           (unsigned long long)p.generator.completed(), cfg.smoke.device_requests,
           (unsigned long long)mean, (unsigned long long)st.max_latency_ns);
  s->storage.requests = st.requests;
  s->storage.completed = p.device.completed();
  s->storage.mean_latency_ns = mean;
  s->storage.max_latency_ns = st.max_latency_ns;
}

}  // namespace
}  // namespace apfsim

using namespace apfsim;

extern "C" const char *platform_apfsim_version(void) { return APFSIM_VERSION; }

extern "C" void platform_unicorn_version(char *buf, size_t len) {
  unsigned major = 0, minor = 0;
  uc_version(&major, &minor);
  // uc_version gives the library's major.minor only; the patch level is the
  // one of the headers built against.
  snprintf(buf, len, "%u.%u.%u", major, minor, (unsigned)UC_VERSION_PATCH);
}

extern "C" void platform_print_version(FILE *out) {
  char uc[32];
  platform_unicorn_version(uc, sizeof uc);
  fprintf(out, "apfsim %s (unicorn %s, systemc %s)\n", APFSIM_VERSION, uc,
          sc_core::sc_release());
}

extern "C" bool platform_run(const platform_run_request *req, run_summary *summary, diag *err) {
  const sim_config &cfg = *req->cfg;
  // SystemC prints its banner unless told not to, and only stdout carries
  // requested output (DESIGN.md §6).
  setenv("SC_COPYRIGHT_MESSAGE", "DISABLE", 1);
  if (!cfg.smoke.enabled) {
    diag_set(err, "%s: this configuration needs the guest kernel, which is not built yet (issue 4); "
                  "only the platform smoke scenario (<smoke>) runs today",
             cfg.source_path);
    return false;
  }

  char *config_xml = config_to_xml(&cfg);
  if (!config_xml) return diag_set(err, "out of memory writing the effective config");
  char seed[32], uc[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg.seed);
  platform_unicorn_version(uc, sizeof uc);
  const trace_kv header[] = {
      {"apfsim-version", APFSIM_VERSION, 0},
      {"unicorn-version", uc, 0},
      {"systemc-version", sc_core::sc_release(), 0},
      {"guest-image-sha256", "none", 0},
      {"seed", seed, 0},
  };
  const trace_block blocks[] = {{"config", config_xml, 0}};
  trace_writer *trace = trace_writer_open(req->trace_path, header, sizeof header / sizeof *header,
                                          blocks, 1, err);
  free(config_xml);
  if (!trace) return false;

  bool ok = true;
  try {
    fix_time_resolution();
    RunContext ctx{cfg, trace};
    Housekeeping housekeeping("housekeeping", ctx, req->progress);
    SmokePlatform platform(ctx);
    sc_core::sc_start(ns(cfg.limits.max_sim_time_ns));
    if (req->progress) fputc('\n', stderr);
    if (housekeeping.io_failed()) {
      *err = housekeeping.io_error();
      ok = false;
    } else {
      summary->seed = cfg.seed;
      summary->sim_time_ns = now_ns();
      fill_smoke_summary(platform, cfg, summary);
    }
  } catch (const sc_core::sc_report &r) {
    diag_set(err, "internal error in SystemC: %s", r.what());
    ok = false;
  } catch (const std::exception &e) {
    diag_set(err, "internal error: %s", e.what());
    ok = false;
  }
  if (!ok) {
    trace_abort(trace);
    return false;
  }
  return trace_close(trace, summary->trace_sha256, err);
}

// libsystemc.so carries its own main() that calls sc_main(); apfsim has its
// own main() (tools/apfsim), so the library's is never linked in, but the
// shared library still needs the symbol to resolve.
int sc_main(int, char **) { return 5; }
