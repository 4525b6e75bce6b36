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

#include "guest_platform.h"
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

// The guest run's summary: the machine's, plus the swap device's own figures. Arrays
// are copied to the heap: the machine is gone when the caller writes the JSON.
bool fill_guest_summary(GuestPlatform &p, run_summary *s) {
  machine_summary(p.get(), s);
  const swap_device_stats &st = p.device().stats();
  const swap_device_summary ds = p.device().summary();
  s->storage.requests = st.requests;
  s->storage.completed = p.device().completed();
  s->storage.mean_latency_ns = ds.mean_latency_ns;
  s->storage.max_latency_ns = ds.max_latency_ns;

  auto *vcpus = static_cast<vcpu_summary *>(calloc(s->n_vcpus ? s->n_vcpus : 1, sizeof(vcpu_summary)));
  auto *sections = static_cast<report_section *>(calloc(s->n_sections + 1, sizeof(report_section)));
  if (!vcpus || !sections) {
    free(vcpus);
    free(sections);
    return false;
  }
  memcpy(vcpus, s->vcpus, s->n_vcpus * sizeof *vcpus);
  s->vcpus = vcpus;
  size_t n = 0;
  auto add = [&](const report_section &sec) {
    size_t cells = sec.n_keys * sec.n_rows;
    auto *values = static_cast<uint64_t *>(calloc(cells ? cells : 1, sizeof(uint64_t)));
    if (!values) return false;
    memcpy(values, sec.values, cells * sizeof *values);
    sections[n] = sec;
    sections[n++].values = values;
    return true;
  };
  const report_section *from = s->sections;
  const size_t n_from = s->n_sections;
  s->sections = sections;
  bool ok = true;
  for (size_t k = 0; k < n_from; k++) ok = ok && add(from[k]);
  uint64_t row[SWAP_DEVICE_SUMMARY_FIELDS];
  swap_device_summary_row(&ds, row);
  ok = ok && add(report_section{"swap_device", swap_device_summary_keys, SWAP_DEVICE_SUMMARY_FIELDS, row, 1, false});
  s->n_sections = n;
  return ok;
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

extern "C" void platform_summary_release(run_summary *s) {
  for (size_t k = 0; s->sections && k < s->n_sections; k++) free(const_cast<uint64_t *>(s->sections[k].values));
  free(const_cast<report_section *>(s->sections));
  free(const_cast<vcpu_summary *>(s->vcpus));
  s->sections = nullptr;
  s->vcpus = nullptr;
  s->n_sections = s->n_vcpus = 0;
}

extern "C" bool platform_run(const platform_run_request *req, run_summary *summary, diag *err) {
  const sim_config &cfg = *req->cfg;
  // SystemC prints its banner unless told not to, and only stdout carries
  // requested output (DESIGN.md §6).
  setenv("SC_COPYRIGHT_MESSAGE", "DISABLE", 1);
  // A guest run hashes its kernel image into the header, so the image comes first.
  std::unique_ptr<guest_image, void (*)(guest_image *)> image(nullptr, guest_image_free);
  if (!cfg.smoke.enabled) {
    image.reset(machine_open_kernel(&cfg, err));
    if (!image) {
      if (req->bad_input) *req->bad_input = true;
      return false;
    }
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
      {"guest-image-sha256", image ? image->sha256_hex : "none", 0},
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
    // sc_stop() makes the kernel print "Info: /OSCI/SystemC: Simulation stopped by
    // user." on stdout, which carries only requested output.
    sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
    RunContext ctx{cfg, trace};
    Housekeeping housekeeping("housekeeping", ctx, req->progress);
    if (cfg.smoke.enabled) {
      SmokePlatform platform(ctx);
      sc_core::sc_start(ns(cfg.limits.max_sim_time_ns));
      if (req->progress) fputc('\n', stderr);
      summary->seed = cfg.seed;
      summary->sim_time_ns = now_ns();
      fill_smoke_summary(platform, cfg, summary);
    } else {
      GuestPlatform platform("guest", ctx);
      bool config_error = false;
      if (!platform.create(image.get(), req->console, err, &config_error)) {
        if (req->bad_input) *req->bad_input = config_error;
        ok = false;
      } else {
        if (req->window_hook) machine_set_window_hook(platform.get(), req->window_hook);
        sc_core::sc_start(ns(cfg.limits.max_sim_time_ns));
        if (req->progress) fputc('\n', stderr);
        machine_time_limit(platform.get(), cfg.limits.max_sim_time_ns * kPsPerNs, false);
        if (const char *why = machine_failed(platform.get())) {
          diag_set(err, "internal error: %s", why);
          ok = false;
        } else if (!fill_guest_summary(platform, summary)) {
          platform_summary_release(summary);
          diag_set(err, "out of memory writing the summary");
          ok = false;
        }
      }
    }
    if (ok && housekeeping.io_failed()) {
      *err = housekeeping.io_error();
      ok = false;
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
  if (image) snprintf(summary->guest_image_sha256, sizeof summary->guest_image_sha256, "%s", image->sha256_hex);
  return trace_close(trace, summary->trace_sha256, err);
}

// libsystemc.so carries its own main() that calls sc_main(); apfsim has its
// own main() (tools/apfsim), so the library's is never linked in, but the
// shared library still needs the symbol to resolve.
int sc_main(int, char **) { return 5; }
