/* u64map.h — a small open-addressing map from uint64_t keys to uint64_t
 * values, internal to the timeline exporter (tokens, request ids and guest
 * pids to their open slices).
 *
 * Callers that walk the table (keys/vals/state) sort what they collect
 * before writing anything, so output never depends on the table's layout.
 * Not for: anything needing ordered traversal. */
#ifndef APFSIM_TIMELINE_U64MAP_H
#define APFSIM_TIMELINE_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map {
  uint64_t *keys;
  uint64_t *vals;
  uint8_t *state; /* 0 empty, 1 used, 2 deleted (a tombstone keeps probe chains intact) */
  size_t cap;     /* a power of two, or 0 before the first insert */
  size_t used;    /* used + tombstones: what decides when to grow */
  size_t live;
};

void u64map_free(struct u64map *m);
/* False when out of memory (the map is unchanged then). */
bool u64map_put(struct u64map *m, uint64_t key, uint64_t val);
bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *val);
/* True if the key was there. */
bool u64map_del(struct u64map *m, uint64_t key);

#endif
