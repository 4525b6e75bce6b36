/* kvm.c — guest side of KVM asynchronous page faults: the hooks of kvm.h.
 *
 * Status: APF is never enabled yet, whatever boot_info.apf_protocol asks — a host that
 * finds APF disabled uses synchronous faults or async I/O + synthetic halt, which is
 * exactly the APFSIM_APF_OFF / APFSIM_APF_HALT behaviour. The per-vCPU shared area
 * (percpu.apf_area, 64-byte aligned) and the read-and-reset logic are in place so that
 * issue 6 only adds the MSR writes, the 256-bucket sleeper hash and the wake path.
 */
#include "kvm.h"

#include "percpu.h"
#include "x86.h"

static const char *const protocol_names[] = {"off", "halt", "2010", "2020"};

void kvm_guest_cpu_init(void) {
  struct percpu *pc = this_cpu();
  uint32_t p = boot_info.apf_protocol;
  if (pc->cpu == 0 && (p == APFSIM_APF_2010 || p == APFSIM_APF_2020))
    printk("kvm: APF protocol %s requested; the guest APF side is not built yet: APF stays disabled\n",
           protocol_names[p]);
}

uint32_t kvm_read_and_reset_apf_flags(void) {
  volatile uint32_t *flags = (volatile uint32_t *)this_cpu()->apf_area;
  uint32_t f = *flags;
  if (f) *flags = 0;
  return f;
}

bool kvm_handle_async_pf(struct pt_regs *regs, uint64_t error_code, uint64_t address, uint32_t flags) {
  (void)regs;
  (void)error_code;
  panic("APF event (flags %#x, token %#llx) but this guest never enabled APF", flags, (unsigned long long)address);
}

void kvm_async_pf_intr(struct pt_regs *regs) {
  (void)regs;
  panic("page-ready interrupt (vector %#x) but this guest never enabled APF", boot_info.page_ready_vector);
}

void kvm_nmi_stash_apf_reason(void) {}
void kvm_nmi_restore_apf_reason(void) {}

void exc_virtualization_exception(struct pt_regs *regs) { die(regs, read_cr2(), "#VE, but this guest never enabled #VE delivery"); }
