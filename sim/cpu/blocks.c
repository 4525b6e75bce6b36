/* blocks.c — what the vCPU knows about each translation block Unicorn runs:
 * its instruction count and instruction offsets (so a fault or a stop in
 * the middle of a block can take back exactly the instructions that did not
 * retire) and the two facts the counter needs about REP and PUSHF. Decoded
 * once with Capstone the first time a block is seen, which is also when
 * instruction sites in code nobody scanned are discovered.
 *
 * Not for: Unicorn's own translation cache, which this only mirrors. */
#include <stdlib.h>
#include <string.h>

#include "cpu/vcpu_internal.h"

#define CHUNK_BYTES (64 * 1024)
#define MAX_BLOCK_INSNS 1024

void blocks_init(struct block_cache *c) {
  memset(c, 0, sizeof *c);
  c->n_buckets = 4096;
  c->bucket = calloc(c->n_buckets, sizeof *c->bucket);
}

void blocks_free(struct block_cache *c) {
  for (size_t i = 0; i < c->n_chunks; i++) free(c->chunks[i]);
  free(c->chunks);
  free(c->bucket);
  memset(c, 0, sizeof *c);
}

static void *arena_alloc(struct block_cache *c, size_t bytes) {
  bytes = (bytes + 7) & ~(size_t)7;
  if (!c->n_chunks || c->chunk_used + bytes > CHUNK_BYTES) {
    uint8_t **chunks = realloc(c->chunks, (c->n_chunks + 1) * sizeof *chunks);
    if (!chunks) return NULL;
    c->chunks = chunks;
    c->chunks[c->n_chunks] = malloc(bytes > CHUNK_BYTES ? bytes : CHUNK_BYTES);
    if (!c->chunks[c->n_chunks]) return NULL;
    c->n_chunks++;
    c->chunk_used = 0;
  }
  void *p = c->chunks[c->n_chunks - 1] + c->chunk_used;
  c->chunk_used += bytes;
  return p;
}

static void grow(struct block_cache *c) {
  size_t n = c->n_buckets * 2;
  struct block_info **nb = calloc(n, sizeof *nb);
  if (!nb) return; /* stay slower, still correct */
  for (size_t i = 0; i < c->n_buckets; i++) {
    struct block_info *b = c->bucket[i];
    while (b) {
      struct block_info *next = b->next;
      size_t h = blocks_hash(b->addr, b->size, n - 1);
      b->next = nb[h];
      nb[h] = b;
      b = next;
    }
  }
  free(c->bucket);
  c->bucket = nb;
  c->n_buckets = n;
}


struct block_info *blocks_learn(struct vcpu *v, uint64_t addr, uint32_t size) {
  if (addr >= v->mem_bytes || size > v->mem_bytes - addr || size == 0) {
    vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "guest code at %#llx (+%u) is outside guest RAM",
                  (unsigned long long)addr, size);
    return NULL;
  }
  uint16_t off[MAX_BLOCK_INSNS];
  unsigned n = 0;
  uint8_t flags = 0;
  const uint8_t *code = v->mem + addr;
  size_t left = size;
  uint64_t a = addr;
  while (left) {
    if (n == MAX_BLOCK_INSNS) {
      vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "translation block at %#llx has more than %u instructions",
                    (unsigned long long)addr, MAX_BLOCK_INSNS);
      return NULL;
    }
    uint64_t at = a;
    off[n] = (uint16_t)(at - addr);
    if (!cs_disasm_iter(v->cs, &code, &left, &a, v->insn)) {
      /* Bytes Capstone does not know end the block (Unicorn raises #UD on
       * them): they count as one instruction that never retires. */
      n++;
      left = 0;
      break;
    }
    const cs_insn *insn = v->insn;
    if (n == 0 && (insn->id == X86_INS_PUSHFQ || insn->id == X86_INS_PUSHF)) flags |= BI_PUSHF;
    if (left == 0 && (insn->id == X86_INS_IRETQ || insn->id == X86_INS_IRETD || insn->id == X86_INS_IRET))
      flags |= BI_LAST_IRET;
    if (x86_is_rep_string(insn) && left == 0 && n == 0) {
      flags |= BI_REP_ONLY;
      if (insn->detail->x86.addr_size == 4) flags |= BI_ADDR32;
    }
    struct site proto;
    const char *why = NULL;
    switch (sites_classify(v, insn, &proto, &why)) {
      case INSN_PLAIN:
        break;
      case INSN_SITE: {
        struct site *s = sites_note(v, &proto);
        if (!s) {
          vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "out of memory recording an instruction site");
          return NULL;
        }
        break;
      }
      case INSN_REFUSED:
        vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "guest executes `%s %s` at %#llx, which apfsim cannot emulate: %s",
                      insn->mnemonic, insn->op_str, (unsigned long long)at, why);
        return NULL;
    }
    n++;
  }
  struct block_cache *c = &v->blocks;
  struct block_info *b = arena_alloc(c, sizeof *b + n * sizeof(uint16_t));
  if (!b) {
    vcpu_set_exit(v, VCPU_EXIT_INTERNAL_ERROR, "out of memory recording a translation block");
    return NULL;
  }
  b->addr = addr;
  b->head = blocks_head(v->mem + addr, size);
  b->size = size;
  b->icount = (uint16_t)n;
  b->flags = flags;
  b->off = (uint16_t *)(b + 1);
  memcpy(b->off, off, n * sizeof(uint16_t));
  size_t h = blocks_hash(addr, size, c->n_buckets - 1);
  b->next = c->bucket[h];
  c->bucket[h] = b;
  if (++c->n_blocks > 2 * c->n_buckets) grow(c);
  return b;
}

int blocks_index(const struct block_info *b, uint64_t addr) {
  if (addr < b->addr || addr >= b->addr + b->size) return -1;
  uint16_t o = (uint16_t)(addr - b->addr);
  int lo = 0, hi = (int)b->icount - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (b->off[mid] == o) return mid;
    if (b->off[mid] < o)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

void blocks_drop_range(struct block_cache *c, uint64_t start, uint64_t end) {
  for (size_t i = 0; i < c->n_buckets; i++) {
    struct block_info **pp = &c->bucket[i];
    while (*pp) {
      struct block_info *b = *pp;
      if (b->addr < end && b->addr + b->size > start) {
        *pp = b->next;
        c->n_blocks--;
      } else {
        pp = &b->next;
      }
    }
  }
}
