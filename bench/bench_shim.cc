// bench_shim.cc — the only C++ in bench/: binds bench.h to Google Benchmark.
#include "bench.h"

#include <benchmark/benchmark.h>

static benchmark::State &state_of(bench_state *st) { return *reinterpret_cast<benchmark::State *>(st); }

extern "C" void bench_register(const char *name, bench_fn fn, void *arg) {
  benchmark::RegisterBenchmark(name, [fn, arg](benchmark::State &s) {
    fn(reinterpret_cast<bench_state *>(&s), arg);
  });
}

extern "C" bool bench_keep_running(bench_state *st) { return state_of(st).KeepRunning(); }

extern "C" void bench_set_items_processed(bench_state *st, int64_t items) {
  state_of(st).SetItemsProcessed(items);
}

extern "C" void bench_set_counter(bench_state *st, const char *name, double value, bool rate) {
  state_of(st).counters[name] =
      benchmark::Counter(value, rate ? benchmark::Counter::kIsRate : benchmark::Counter::kDefaults);
}

extern "C" void bench_pause_timing(bench_state *st) { state_of(st).PauseTiming(); }
extern "C" void bench_resume_timing(bench_state *st) { state_of(st).ResumeTiming(); }

extern "C" void bench_do_not_optimize(const void *p) { benchmark::DoNotOptimize(p); }

extern "C" int bench_main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
