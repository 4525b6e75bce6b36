/* u64map.c — see u64map.h. Linear probing over a power-of-two table, grown
 * at 50 % occupancy (tombstones included) so probe chains stay short. */
#include "timeline/u64map.h"

#include <stdlib.h>

/* A 64-bit finalizer (xor-shift-multiply) spreads sequential ids and tokens
 * like (n << 12) | vcpu over the table. */
static size_t slot_of(uint64_t key, size_t cap) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  key *= 0xc4ceb9fe1a85ec53ULL;
  key ^= key >> 33;
  return (size_t)key & (cap - 1);
}

void u64map_free(struct u64map *m) {
  free(m->keys);
  free(m->vals);
  free(m->state);
  *m = (struct u64map){0};
}

static bool grow(struct u64map *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  struct u64map n = {calloc(cap, sizeof *n.keys), calloc(cap, sizeof *n.vals),
                     calloc(cap, sizeof *n.state), cap, 0, 0};
  if (!n.keys || !n.vals || !n.state) {
    u64map_free(&n);
    return false;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->state[i] != 1) continue;
    size_t s = slot_of(m->keys[i], cap);
    while (n.state[s]) s = (s + 1) & (cap - 1);
    n.state[s] = 1;
    n.keys[s] = m->keys[i];
    n.vals[s] = m->vals[i];
    n.used++;
    n.live++;
  }
  u64map_free(m);
  *m = n;
  return true;
}

/* The slot holding key, or SIZE_MAX. */
static size_t find(const struct u64map *m, uint64_t key) {
  if (!m->cap) return SIZE_MAX;
  for (size_t s = slot_of(key, m->cap), n = 0; n < m->cap; s = (s + 1) & (m->cap - 1), n++) {
    if (m->state[s] == 0) return SIZE_MAX;
    if (m->state[s] == 1 && m->keys[s] == key) return s;
  }
  return SIZE_MAX;
}

bool u64map_put(struct u64map *m, uint64_t key, uint64_t val) {
  size_t s = find(m, key);
  if (s != SIZE_MAX) {
    m->vals[s] = val;
    return true;
  }
  if ((m->used + 1) * 2 > m->cap && !grow(m)) return false;
  s = slot_of(key, m->cap);
  while (m->state[s] == 1) s = (s + 1) & (m->cap - 1);
  if (m->state[s] == 0) m->used++;
  m->state[s] = 1;
  m->keys[s] = key;
  m->vals[s] = val;
  m->live++;
  return true;
}

bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *val) {
  size_t s = find(m, key);
  if (s == SIZE_MAX) return false;
  if (val) *val = m->vals[s];
  return true;
}

bool u64map_del(struct u64map *m, uint64_t key) {
  size_t s = find(m, key);
  if (s == SIZE_MAX) return false;
  m->state[s] = 2;
  m->live--;
  return true;
}
