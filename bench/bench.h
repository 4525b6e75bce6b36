/* bench.h — a C face on Google Benchmark, so benchmarks are written in C like
 * the simulator they measure. Each bench/<area>_bench.c registers its cases and
 * calls bench_main(). Not for tests: nothing here asserts; speed is measured,
 * never checked, and results vary from machine to machine. */
#ifndef APFSIM_BENCH_H
#define APFSIM_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_state; /* a benchmark::State */
typedef void (*bench_fn)(struct bench_state *st, void *arg);

/* Registers `fn(st, arg)` under `name`; `arg` must outlive bench_main(). */
void bench_register(const char *name, bench_fn fn, void *arg);
/* The timed loop: `while (bench_keep_running(st)) { ... }`. */
bool bench_keep_running(struct bench_state *st);
/* Items per iteration total, reported as items_per_second. */
void bench_set_items_processed(struct bench_state *st, int64_t items);
/* A named figure shown beside the timing (e.g. "MIPS"), averaged per iteration
 * when `per_iteration` is false it is reported as-is. */
void bench_set_counter(struct bench_state *st, const char *name, double value, bool rate);
/* Pause/resume timing around set-up inside the loop. */
void bench_pause_timing(struct bench_state *st);
void bench_resume_timing(struct bench_state *st);
/* Keeps the compiler from discarding a computed value. */
void bench_do_not_optimize(const void *p);
/* Parses Google Benchmark flags (--benchmark_filter=...) and runs. */
int bench_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
