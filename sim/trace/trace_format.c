/* trace_format.c — shared trace syntax (see trace_format.h). */
#include "trace/trace_format.h"

#include <stdio.h>
#include <string.h>

#include "trace/trace.h"

bool trace_cpu_label(int cpu, char out[TRACE_CPU_LABEL_MAX]) {
  if (cpu == TRACE_CPU_HOST) {
    strcpy(out, "host");
  } else if (cpu == TRACE_CPU_DEV) {
    strcpy(out, "dev");
  } else if (cpu >= 0 && cpu <= TRACE_CPU_MAX) {
    snprintf(out, TRACE_CPU_LABEL_MAX, "cpu%d", cpu);
  } else {
    return false;
  }
  return true;
}

bool trace_cpu_parse(const char *tok, size_t len, int *cpu) {
  if (len == 4 && memcmp(tok, "host", 4) == 0) {
    *cpu = TRACE_CPU_HOST;
    return true;
  }
  if (len == 3 && memcmp(tok, "dev", 3) == 0) {
    *cpu = TRACE_CPU_DEV;
    return true;
  }
  if (len < 4 || len > 7 || memcmp(tok, "cpu", 3) != 0) return false;
  /* Exactly the digits trace_cpu_label prints: no sign, no leading zero. */
  if (tok[3] == '0' && len > 4) return false;
  int v = 0;
  for (size_t i = 3; i < len; i++) {
    if (tok[i] < '0' || tok[i] > '9') return false;
    v = v * 10 + (tok[i] - '0');
  }
  if (v > TRACE_CPU_MAX) return false;
  *cpu = v;
  return true;
}

static bool lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool trace_valid_key(const char *key) {
  if (!key || !lower_or_digit(key[0])) return false;
  for (const char *p = key + 1; *p; p++)
    if (!lower_or_digit(*p) && *p != '.' && *p != '_' && *p != '-') return false;
  return true;
}

bool trace_reserved_key(const char *key) {
  static const char *const reserved[] = {TRACE_MAGIC_KEY, "begin", "end", "header-end", "trace-end"};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (strcmp(key, reserved[i]) == 0) return true;
  return false;
}

bool trace_valid_block_name(const char *name, size_t len) {
  if (!name || len == 0) return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (c == '\0' || (!lower_or_digit(c) && !(c >= 'A' && c <= 'Z') && !strchr("._:/-", c))) return false;
  }
  return true;
}

bool trace_valid_event_name(const char *name, size_t len) {
  if (!name || len == 0) return false;
  for (size_t i = 0; i < len; i++)
    if (!lower_or_digit(name[i]) && name[i] != '_') return false;
  return true;
}

void trace_hex32(const unsigned char digest[32], char out[65]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  out[64] = '\0';
}
