/* console.c — formatted output to the simulator's console port (APFSIM_PORT_CONSOLE).
 *
 * One `out` per byte (the simulator captures them into the trace and stdout). A line is
 * formatted first and written under a lock, so lines from different vCPUs never mix. NMI
 * context only try-locks (the NMI may have interrupted the lock holder on its own vCPU);
 * panic writes without the lock.
 * Not for: anything the simulator must parse — that goes through the panic record and the
 * statistics arrays, never through text.
 */
#include "kernel.h"
#include "percpu.h"
#include "x86.h"

static spinlock_t console_lock;

void console_write_unlocked(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) outb(APFSIM_PORT_CONSOLE, (uint8_t)s[i]);
}

void console_write(const char *s, size_t n) {
  struct percpu *pc = this_cpu_checked();
  uint64_t flags = local_irq_save();
  if (pc && pc->nmi_depth) {
    if (!spin_trylock(&console_lock)) {
      local_irq_restore(flags);
      return;
    }
  } else {
    spin_lock(&console_lock);
  }
  console_write_unlocked(s, n);
  spin_unlock(&console_lock);
  local_irq_restore(flags);
}

void printk(const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
  console_write(buf, (size_t)n);
}

/* ---- vsnprintf: %[-0#][width][hh|h|l|ll|z](d|i|u|x|X|p|s|c|%) ---- */

struct out {
  char *buf;
  size_t size, len;
};

static void put(struct out *o, char c) {
  if (o->len + 1 < o->size) o->buf[o->len] = c;
  o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, int width, bool left, char pad) {
  int fill = width > (int)n ? width - (int)n : 0;
  if (!left && pad == '0' && n && (s[0] == '-' || (n > 1 && s[0] == '0' && s[1] == 'x'))) {
    /* zero padding goes after the sign or 0x prefix */
    size_t pre = s[0] == '-' ? 1 : 2;
    for (size_t i = 0; i < pre; i++) put(o, s[i]);
    s += pre;
    n -= pre;
  }
  if (!left)
    while (fill-- > 0) put(o, pad);
  for (size_t i = 0; i < n; i++) put(o, s[i]);
  if (left)
    while (fill-- > 0) put(o, ' ');
}

static size_t format_u64(char *tmp, uint64_t v, unsigned base, bool upper) {
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char rev[24];
  size_t n = 0, len = 0;
  do {
    rev[n++] = digits[v % base];
    v /= base;
  } while (v);
  while (n) tmp[len++] = rev[--n];
  return len;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  struct out o = {buf, size, 0};
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') {
      put(&o, *f);
      continue;
    }
    bool left = false, alt = false;
    char pad = ' ';
    int width = 0, lng = 0;
    for (f++;; f++) {
      if (*f == '-') left = true;
      else if (*f == '0') pad = '0';
      else if (*f == '#') alt = true;
      else break;
    }
    while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
    while (*f == 'l' || *f == 'h' || *f == 'z') {
      if (*f == 'l' || *f == 'z') lng++;
      f++;
    }
    char tmp[32];
    size_t n = 0;
    uint64_t u;
    switch (*f) {
    case 'd':
    case 'i': {
      int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
      if (v < 0) {
        tmp[n++] = '-';
        u = (uint64_t)0 - (uint64_t)v;
      } else {
        u = (uint64_t)v;
      }
      n += format_u64(tmp + n, u, 10, false);
      put_padded(&o, tmp, n, width, left, pad);
      break;
    }
    case 'u':
    case 'x':
    case 'X':
      u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
      if (alt && *f != 'u') {
        tmp[n++] = '0';
        tmp[n++] = 'x';
      }
      n += format_u64(tmp + n, u, *f == 'u' ? 10 : 16, *f == 'X');
      put_padded(&o, tmp, n, width, left, pad);
      break;
    case 'p':
      u = (uint64_t)(uintptr_t)va_arg(ap, void *);
      tmp[n++] = '0';
      tmp[n++] = 'x';
      n += format_u64(tmp + n, u, 16, false);
      put_padded(&o, tmp, n, width, left, pad);
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (!s) s = "(null)";
      put_padded(&o, s, strlen(s), width, left, ' ');
      break;
    }
    case 'c':
      tmp[0] = (char)va_arg(ap, int);
      put_padded(&o, tmp, 1, width, left, ' ');
      break;
    case '%':
      put(&o, '%');
      break;
    case '\0':
      f--; /* a lone % at the end */
      break;
    default: /* unknown conversion: print it as is */
      put(&o, '%');
      put(&o, *f);
      break;
    }
  }
  if (size) buf[o.len < size ? o.len : size - 1] = '\0';
  return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
