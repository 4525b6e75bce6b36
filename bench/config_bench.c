/* config_bench.c — cost of loading and validating a configuration (parse,
 * schema validation, semantic checks) and of writing it back canonically. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "config/config.h"

struct config_case {
  const char *path;
  const char *override;
};

static void bench_config_load(struct bench_state *st, void *arg) {
  const struct config_case *c = arg;
  struct sim_config *cfg = config_new();
  struct diag err;
  int64_t loads = 0;
  const char *overrides[] = {c->override};
  while (bench_keep_running(st)) {
    if (!config_load(c->path, overrides, c->override ? 1 : 0, NULL, cfg, &err)) {
      fprintf(stderr, "%s\n", err.msg);
      abort();
    }
    loads++;
  }
  bench_set_items_processed(st, loads);
  free(cfg);
}

static void bench_config_to_xml(struct bench_state *st, void *arg) {
  const struct config_case *c = arg;
  struct sim_config *cfg = config_new();
  struct diag err;
  if (!config_load(c->path, NULL, 0, NULL, cfg, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    abort();
  }
  int64_t n = 0;
  while (bench_keep_running(st)) {
    char *xml = config_to_xml(cfg);
    bench_do_not_optimize(xml);
    free(xml);
    n++;
  }
  bench_set_items_processed(st, n);
  free(cfg);
}

int main(int argc, char **argv) {
  static struct config_case smoke = {APFSIM_SOURCE_DIR "/configs/smoke.xml", NULL};
  static struct config_case smoke_set = {APFSIM_SOURCE_DIR "/configs/smoke.xml", "machine/vcpus=4"};
  static struct config_case full = {APFSIM_SOURCE_DIR "/configs/full-example.xml", NULL};
  bench_register("config_load/smoke", bench_config_load, &smoke);
  bench_register("config_load/smoke+set", bench_config_load, &smoke_set);
  bench_register("config_load/full-example", bench_config_load, &full);
  bench_register("config_to_xml/full-example", bench_config_to_xml, &full);
  return bench_main(argc, argv);
}
