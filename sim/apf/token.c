/* token.c — APF tokens: (id++ << 12) | vcpu_id, the vCPU id in bits 11:0 so tokens of
 * different vCPUs never collide in the guest's shared sleeper hash.
 *
 * Why the skip: apf.id is a u32, so after 2^20 tokens id << 12 wraps to 0 and vCPU 0 would
 * get token 0 — which the 2020 ABI reads as "slot free", losing a page-ready (the very
 * first token of vCPU 0 was 0 too). Linux 5.17 (alloc_apf_token, "KVM: x86/mmu: make apf
 * token non-zero to fix bug", Cc stable) restarts id at 1 whenever id << 12 is 0; apfsim
 * does the same for every vCPU so a token is never 0. Not for: storing tokens (queue.c). */
#include "apf/internal.h"

uint32_t apf_token_next(uint32_t *id, unsigned vcpu) {
  if ((uint32_t)(*id << 12) == 0) *id = 1;
  uint32_t token = (uint32_t)(*id << 12) | (uint32_t)vcpu;
  (*id)++;
  return token;
}
