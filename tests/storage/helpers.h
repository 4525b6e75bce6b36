/* helpers.h — shared by the sim/storage tests: scripted latency samplers and
 * tolerance checks. */
#ifndef APFSIM_TESTS_STORAGE_HELPERS_H
#define APFSIM_TESTS_STORAGE_HELPERS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Returns lat[0], lat[1], ... then repeats the last one. */
struct script {
  const uint64_t *lat;
  size_t n, next;
};

static inline uint64_t script_sample(void *ctx) {
  struct script *s = ctx;
  uint64_t v = s->lat[s->next < s->n ? s->next : s->n - 1];
  if (s->next < s->n) s->next++;
  return v;
}

static inline uint64_t fixed_sample(void *ctx) { return *(const uint64_t *)ctx; }

/* Fails the test when |got/want - 1| > rel_tol. With APFSIM_TEST_VERBOSE set
 * in the environment every check prints its values (how the tolerances were
 * chosen: run with several seeds and look at the spread). */
#define CHECK_REL(what, got, want, rel_tol)                                                    \
  do {                                                                                         \
    double g_ = (double)(got), w_ = (double)(want);                                            \
    double r_ = fabs(g_ / w_ - 1);                                                             \
    if (getenv("APFSIM_TEST_VERBOSE"))                                                         \
      printf("%s: got %.6g, want %.6g, rel. error %.3g (tolerance %.3g)\n", what, g_, w_, r_,  \
             (double)(rel_tol));                                                               \
    if (r_ > (rel_tol))                                                                        \
      fail_msg("%s: got %.6g, want %.6g (rel. error %.3g > %.3g)", what, g_, w_, r_,           \
               (double)(rel_tol));                                                             \
  } while (0)

#endif
