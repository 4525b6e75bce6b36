/* timeline.c — apfsim trace → Chrome trace-event JSON (see timeline.h).
 *
 * Two passes over the trace. The first lets the trace reader check every
 * line (a corrupt trace is reported before any output exists), learns which
 * vCPUs and guest tasks exist (their names go first, as metadata), where the
 * trace ends (open slices are closed there), and which not-present events
 * get their page-ready: a flow arrow is written only for those, so every
 * flow start in the file has its end. The second pass writes events in trace
 * order, which is time order, so every track's timestamps are monotone and
 * the output streams: memory grows with open slices and tasks, not with the
 * trace's length.
 *
 * Track layout (pid / tid) — fixed numbers that never collide, because
 * Perfetto keys threads by tid across processes:
 *   1 "vCPUs"       tid 1000+N   vCPU N: state slices, its instants, flows
 *   2 "guest tasks" tid 20000+k  k-th task seen: running / waiting slices
 *   3 "host (KVM)"  tid 100      host instants; APF tokens as async slices
 *   4 "devices"     tid 101      device instants; requests as async slices
 */
#include "timeline/timeline.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "timeline/json_out.h"
#include "timeline/u64map.h"
#include "trace/trace.h"

enum { PID_VCPUS = 1, PID_TASKS = 2, PID_HOST = 3, PID_DEVICES = 4 };
enum { TID_HOST = 100, TID_DEVICES = 101, TID_VCPU0 = 1000, TID_TASK0 = 20000 };

/* kvm_async_pf_ready with this token wakes every sleeper (DESIGN.md §2); it
 * answers no single not-present. */
#define WAKE_ALL_TOKEN 0xffffffffULL

enum vcpu_state { VS_NONE = -1, VS_USER, VS_KERNEL, VS_HALTED, VS_BLOCKED, VS_COUNT };
static const char *const vcpu_state_words[VS_COUNT] = {"user", "kernel", "halted", "blocked"};
static const char *const vcpu_state_labels[VS_COUNT] = {"user", "kernel", "halted",
                                                        "blocked on host"};
/* Single-purpose aliases of `vcpu_state state S`, accepted as well. */
static const char *const vcpu_state_aliases[VS_COUNT] = {"vcpu_run_user", "vcpu_run_kernel",
                                                         "vcpu_halt", "vcpu_block_host"};

enum task_open { TASK_IDLE, TASK_RUNNING, TASK_WAITING };

struct task {
  uint64_t pid;
  char comm[64];
  enum task_open open;
  int cpu; /* TASK_RUNNING: the vCPU */
  uint64_t token;
};

struct vcpu {
  int state; /* enum vcpu_state */
  bool has_task;
  size_t task;
};

/* What the first pass learns. */
struct plan {
  uint64_t events, end_ns;
  int max_cpu;
  bool host, dev;
  bool *cpu_seen; /* TRACE_CPU_MAX + 1 */
  struct task *tasks;
  size_t n_tasks, cap_tasks;
  struct u64map task_index; /* guest pid -> index in tasks */
  uint8_t *np_paired;       /* per not-present, in trace order: 1 if its page-ready came */
  size_t n_np, cap_np;
};

/* Not-present/page-ready matching, run identically in both passes. */
struct apf_match {
  struct u64map open; /* token -> ordinal of its not-present + 1 */
  size_t next;        /* ordinal of the next not-present */
};

struct exporter {
  struct json_out out;
  struct timeline_stats *st;
  struct plan *plan;
  struct vcpu *vcpus; /* max_cpu + 1 */
  struct apf_match apf;
  int *np_src;        /* per not-present ordinal: its source (names the async slice) */
  struct u64map reqs; /* device request id -> 1 read, 2 write */
  bool oom;
  bool changed; /* the trace differs from what the first pass read */
};

/* ---- fields: "key value key value ..." ------------------------------------ */

/* The value token of `key`, scanning key/value pairs from the start. */
static bool field_span(const char *fields, const char *key, const char **val, size_t *len) {
  const char *p = fields;
  size_t klen = strlen(key);
  for (;;) {
    while (*p == ' ') p++;
    if (!*p) return false;
    const char *k = p;
    while (*p && *p != ' ') p++;
    size_t kl = (size_t)(p - k);
    while (*p == ' ') p++;
    if (!*p) return false;
    const char *v = p;
    while (*p && *p != ' ') p++;
    if (kl == klen && !memcmp(k, key, klen)) {
      *val = v;
      *len = (size_t)(p - v);
      return true;
    }
  }
}

/* Decimal, or hexadecimal with 0x: the two ways apfsim prints integers. */
static bool parse_u64(const char *s, size_t len, uint64_t *out) {
  uint64_t v = 0;
  size_t i = 0;
  unsigned base = 10;
  if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  }
  if (i == len) return false;
  for (; i < len; i++) {
    unsigned c = (unsigned char)s[i], dig;
    if (c >= '0' && c <= '9') dig = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') dig = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') dig = c - 'A' + 10;
    else return false;
    if (v > (UINT64_MAX - dig) / base) return false;
    v = v * base + dig;
  }
  *out = v;
  return true;
}

static bool field_u64(const char *fields, const char *key, uint64_t *out) {
  const char *v;
  size_t len;
  return field_span(fields, key, &v, &len) && parse_u64(v, len, out);
}

static bool is_key(const char *s, size_t len) {
  if (!len || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  for (size_t i = 1; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return true;
}

static json_t *jstr(struct exporter *x, const char *s, size_t len) {
  json_t *v = json_stringn(s, len);
  if (!v) {
    /* Not UTF-8: keep the bytes readable rather than fail the export. */
    char *copy = malloc(len + 1);
    if (copy) {
      for (size_t i = 0; i < len; i++) copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
      v = json_stringn(copy, len);
      free(copy);
    }
  }
  if (!v) x->oom = true;
  return v;
}

static void set(struct exporter *x, json_t *obj, const char *key, json_t *v) {
  if (!obj || !v || json_object_set_new(obj, key, v) != 0) x->oom = true;
}

/* Args for an event: its fields as key/value strings when they read as
 * pairs, else the raw text; and the trace line, to find it in the trace. */
static json_t *fields_args(struct exporter *x, const struct trace_record *rec) {
  json_t *args = json_object();
  if (!args) {
    x->oom = true;
    return NULL;
  }
  const char *p = rec->fields;
  bool pairs = true;
  size_t n = 0;
  for (const char *q = p; *q;) {
    while (*q == ' ') q++;
    if (!*q) break;
    const char *t = q;
    while (*q && *q != ' ') q++;
    if (n % 2 == 0 && !is_key(t, (size_t)(q - t))) pairs = false;
    n++;
  }
  if (n % 2) pairs = false;
  if (pairs) {
    while (*p) {
      while (*p == ' ') p++;
      if (!*p) break;
      const char *k = p;
      while (*p && *p != ' ') p++;
      char key[128];
      snprintf(key, sizeof key, "%.*s", (int)(p - k), k);
      while (*p == ' ') p++;
      const char *v = p;
      while (*p && *p != ' ') p++;
      set(x, args, key, jstr(x, v, (size_t)(p - v)));
    }
  } else if (*rec->fields) {
    set(x, args, "fields", jstr(x, rec->fields, strlen(rec->fields)));
  }
  set(x, args, "trace_line", json_integer(rec->line_no));
  return args;
}

/* ---- the vocabulary, shared by both passes -------------------------------- */

static int vcpu_state_of(const struct trace_record *rec) {
  for (int s = 0; s < VS_COUNT; s++)
    if (!strcmp(rec->name, vcpu_state_aliases[s])) return s;
  if (strcmp(rec->name, "vcpu_state")) return VS_NONE;
  const char *v;
  size_t len;
  if (!field_span(rec->fields, "state", &v, &len)) return VS_NONE;
  for (int s = 0; s < VS_COUNT; s++)
    if (strlen(vcpu_state_words[s]) == len && !memcmp(v, vcpu_state_words[s], len)) return s;
  return VS_NONE;
}

static bool is_vcpu_state_event(const char *name) {
  if (!strcmp(name, "vcpu_state")) return true;
  for (int s = 0; s < VS_COUNT; s++)
    if (!strcmp(name, vcpu_state_aliases[s])) return true;
  return false;
}

/* The comm of task_switch: the rest of the line after "comm ", since a
 * command name may contain spaces. */
static void task_comm(const char *fields, char *buf, size_t len) {
  buf[0] = '\0';
  const char *p = strstr(fields, "comm ");
  while (p && p != fields && p[-1] != ' ') p = strstr(p + 1, "comm ");
  if (p) snprintf(buf, len, "%s", p + 5);
}

enum apf_step { APF_NONE, APF_NOT_PRESENT, APF_READY, APF_READY_WAKE_ALL, APF_MALFORMED };

/* Classifies an APF event and runs the token matching: for a not-present,
 * *ordinal is its own number and *replaced the one it supersedes (same
 * token, never ready; SIZE_MAX if none); for a page-ready, *ordinal is the
 * not-present it answers (SIZE_MAX if none). */
static enum apf_step apf_step(struct apf_match *m, const struct trace_record *rec, size_t *ordinal,
                              size_t *replaced, bool *oom) {
  bool np = !strcmp(rec->name, "kvm_async_pf_not_present");
  if (!np && strcmp(rec->name, "kvm_async_pf_ready")) return APF_NONE;
  uint64_t token;
  if (!field_u64(rec->fields, "token", &token)) return APF_MALFORMED;
  uint64_t v;
  if (np) {
    *ordinal = m->next++;
    *replaced = u64map_get(&m->open, token, &v) ? (size_t)(v - 1) : SIZE_MAX;
    if (!u64map_put(&m->open, token, *ordinal + 1)) *oom = true;
    return APF_NOT_PRESENT;
  }
  if (token == WAKE_ALL_TOKEN) return APF_READY_WAKE_ALL;
  *ordinal = SIZE_MAX;
  if (u64map_get(&m->open, token, &v)) {
    *ordinal = (size_t)(v - 1);
    u64map_del(&m->open, token);
  }
  return APF_READY;
}

/* Guest pids a task event names (0 = the idle task, never a track). */
static bool task_pid_of(const struct trace_record *rec, uint64_t *pid) {
  if (strcmp(rec->name, "task_switch") && strcmp(rec->name, "apf_wait") &&
      strcmp(rec->name, "task_exit"))
    return false;
  return field_u64(rec->fields, "pid", pid) && *pid != 0;
}

/* ---- pass 1 ---------------------------------------------------------------- */

static void plan_free(struct plan *p) {
  free(p->cpu_seen);
  free(p->tasks);
  free(p->np_paired);
  u64map_free(&p->task_index);
}

static bool plan_task(struct plan *p, uint64_t pid, const struct trace_record *rec) {
  if (u64map_get(&p->task_index, pid, NULL)) return true;
  if (p->n_tasks == p->cap_tasks) {
    size_t cap = p->cap_tasks ? p->cap_tasks * 2 : 16;
    struct task *t = realloc(p->tasks, cap * sizeof *t);
    if (!t) return false;
    p->tasks = t;
    p->cap_tasks = cap;
  }
  struct task *t = &p->tasks[p->n_tasks];
  *t = (struct task){.pid = pid};
  if (!strcmp(rec->name, "task_switch")) task_comm(rec->fields, t->comm, sizeof t->comm);
  return u64map_put(&p->task_index, pid, p->n_tasks++);
}

static bool plan_np(struct plan *p) {
  if (p->n_np == p->cap_np) {
    size_t cap = p->cap_np ? p->cap_np * 2 : 256;
    uint8_t *a = realloc(p->np_paired, cap);
    if (!a) return false;
    p->np_paired = a;
    p->cap_np = cap;
  }
  p->np_paired[p->n_np++] = 0;
  return true;
}

static enum timeline_result scan(const char *path, struct plan *p, struct diag *d) {
  p->max_cpu = -1;
  p->cpu_seen = calloc(TRACE_CPU_MAX + 1, sizeof *p->cpu_seen);
  if (!p->cpu_seen) return diag_set(d, "out of memory"), TIMELINE_FAILED;
  struct trace_reader *r = trace_reader_open(path, d);
  if (!r) return TIMELINE_BAD_INPUT;
  struct apf_match m = {{0}, 0};
  bool ok = true, oom = false;
  for (;;) {
    struct trace_record rec;
    enum trace_read_status s = trace_reader_next(r, &rec, d);
    if (s == TRACE_READ_ERROR) {
      ok = false;
      break;
    }
    if (s == TRACE_READ_END) break;
    p->events++;
    p->end_ns = rec.time_ns;
    if (rec.cpu >= 0) {
      p->cpu_seen[rec.cpu] = true;
      if (rec.cpu > p->max_cpu) p->max_cpu = rec.cpu;
    } else if (rec.cpu == TRACE_CPU_HOST) {
      p->host = true;
    } else {
      p->dev = true;
    }
    uint64_t pid;
    if (task_pid_of(&rec, &pid) && !plan_task(p, pid, &rec)) oom = true;
    size_t ord, replaced;
    switch (apf_step(&m, &rec, &ord, &replaced, &oom)) {
      case APF_NOT_PRESENT:
        if (!plan_np(p)) oom = true;
        p->host = true; /* its async slice lives on the host track */
        break;
      case APF_READY:
        if (ord != SIZE_MAX && ord < p->n_np) p->np_paired[ord] = 1;
        break;
      default: break;
    }
    if (oom) break;
  }
  trace_reader_close(r);
  u64map_free(&m.open);
  if (!ok) return TIMELINE_BAD_INPUT;
  if (oom) return diag_set(d, "out of memory"), TIMELINE_FAILED;
  return TIMELINE_OK;
}

/* ---- pass 2: emitting ------------------------------------------------------ */

static void track_of(int cpu, uint32_t *pid, uint32_t *tid) {
  if (cpu >= 0) {
    *pid = PID_VCPUS;
    *tid = TID_VCPU0 + (uint32_t)cpu;
  } else if (cpu == TRACE_CPU_HOST) {
    *pid = PID_HOST;
    *tid = TID_HOST;
  } else {
    *pid = PID_DEVICES;
    *tid = TID_DEVICES;
  }
}

static void emit(struct exporter *x, struct json_event e) { json_out_event(&x->out, &e); }

static void instant(struct exporter *x, const struct trace_record *rec, const char *cat,
                    const char *scope) {
  struct json_event e = {.ph = 'i', .ts_ns = rec->time_ns, .name = rec->name, .cat = cat,
                         .scope = scope};
  track_of(rec->cpu, &e.pid, &e.tid);
  json_t *args = fields_args(x, rec);
  e.args = args;
  emit(x, e);
  json_decref(args);
  x->st->instants++;
}

static void meta(struct exporter *x, uint32_t pid, uint32_t tid, const char *what, const char *name,
                 int sort_index) {
  json_t *args = json_object();
  set(x, args, "name", jstr(x, name, strlen(name)));
  emit(x, (struct json_event){.ph = 'M', .pid = pid, .tid = tid, .name = what, .args = args});
  json_decref(args);
  args = json_object();
  set(x, args, "sort_index", json_integer(sort_index));
  emit(x, (struct json_event){.ph = 'M', .pid = pid, .tid = tid,
                              .name = strcmp(what, "process_name") ? "thread_sort_index"
                                                                   : "process_sort_index",
                              .args = args});
  json_decref(args);
}

static void task_name(const struct task *t, char *buf, size_t len) {
  if (t->comm[0]) snprintf(buf, len, "pid %" PRIu64 " (%s)", t->pid, t->comm);
  else snprintf(buf, len, "pid %" PRIu64, t->pid);
}

static void metadata(struct exporter *x) {
  struct plan *p = x->plan;
  bool first = true;
  char name[128];
  for (int c = 0; c <= p->max_cpu; c++) {
    if (!p->cpu_seen[c]) continue;
    /* process_name goes on a real thread of the process: a made-up tid
     * would appear as an empty thread. */
    if (first) meta(x, PID_VCPUS, TID_VCPU0 + (uint32_t)c, "process_name", "vCPUs", 1);
    first = false;
    snprintf(name, sizeof name, "vCPU %d", c);
    meta(x, PID_VCPUS, TID_VCPU0 + (uint32_t)c, "thread_name", name, c);
    x->st->vcpus++;
  }
  for (size_t i = 0; i < p->n_tasks; i++) {
    if (i == 0) meta(x, PID_TASKS, TID_TASK0, "process_name", "guest tasks", 2);
    task_name(&p->tasks[i], name, sizeof name);
    meta(x, PID_TASKS, TID_TASK0 + (uint32_t)i, "thread_name", name, (int)i);
    x->st->tasks++;
  }
  if (p->host) {
    meta(x, PID_HOST, TID_HOST, "process_name", "host (KVM)", 3);
    meta(x, PID_HOST, TID_HOST, "thread_name", "KVM", 0);
  }
  if (p->dev) {
    meta(x, PID_DEVICES, TID_DEVICES, "process_name", "devices", 4);
    meta(x, PID_DEVICES, TID_DEVICES, "thread_name", "swap device", 0);
  }
}

/* vCPU state slices: exactly one open per vCPU, so they never nest. */
static void vcpu_end(struct exporter *x, int cpu, uint64_t ts) {
  struct vcpu *v = &x->vcpus[cpu];
  if (v->state == VS_NONE) return;
  emit(x, (struct json_event){.ph = 'E', .ts_ns = ts, .pid = PID_VCPUS,
                              .tid = TID_VCPU0 + (uint32_t)cpu,
                              .name = vcpu_state_labels[v->state], .cat = "vcpu"});
  v->state = VS_NONE;
}

static void on_vcpu_state(struct exporter *x, const struct trace_record *rec, int state) {
  vcpu_end(x, rec->cpu, rec->time_ns);
  json_t *args = fields_args(x, rec);
  emit(x, (struct json_event){.ph = 'B', .ts_ns = rec->time_ns, .pid = PID_VCPUS,
                              .tid = TID_VCPU0 + (uint32_t)rec->cpu,
                              .name = vcpu_state_labels[state], .cat = "vcpu", .args = args});
  json_decref(args);
  x->vcpus[rec->cpu].state = state;
  x->st->slices++;
}

/* Task slices: one open per task (running or waiting), so they never nest
 * either: a task that starts waiting stops running, and the reverse. */
static void task_slice_name(const struct task *t, char *buf, size_t len) {
  if (t->open == TASK_RUNNING) snprintf(buf, len, "on vCPU %d", t->cpu);
  else snprintf(buf, len, "waiting for page");
}

static void task_end(struct exporter *x, size_t i, uint64_t ts) {
  struct task *t = &x->plan->tasks[i];
  if (t->open == TASK_IDLE) return;
  char name[64];
  task_slice_name(t, name, sizeof name);
  emit(x, (struct json_event){.ph = 'E', .ts_ns = ts, .pid = PID_TASKS,
                              .tid = TID_TASK0 + (uint32_t)i, .name = name, .cat = "task"});
  if (t->open == TASK_RUNNING && x->vcpus[t->cpu].has_task && x->vcpus[t->cpu].task == i)
    x->vcpus[t->cpu].has_task = false;
  t->open = TASK_IDLE;
}

static void task_begin(struct exporter *x, size_t i, const struct trace_record *rec,
                       enum task_open open, uint64_t token) {
  struct task *t = &x->plan->tasks[i];
  t->open = open;
  t->cpu = rec->cpu;
  t->token = token;
  char name[64];
  task_slice_name(t, name, sizeof name);
  /* Built rather than taken from the fields: a comm may contain spaces. */
  json_t *args = json_object();
  set(x, args, "pid", json_integer((json_int_t)t->pid));
  if (open == TASK_RUNNING) {
    char comm[128];
    task_comm(rec->fields, comm, sizeof comm);
    if (comm[0]) set(x, args, "comm", jstr(x, comm, strlen(comm)));
    set(x, args, "vcpu", json_integer(rec->cpu));
  } else {
    char tok[32];
    snprintf(tok, sizeof tok, "%#" PRIx64, token);
    set(x, args, "token", json_string(tok));
  }
  set(x, args, "trace_line", json_integer(rec->line_no));
  emit(x, (struct json_event){.ph = 'B', .ts_ns = rec->time_ns, .pid = PID_TASKS,
                              .tid = TID_TASK0 + (uint32_t)i, .name = name, .cat = "task",
                              .args = args});
  json_decref(args);
  if (open == TASK_RUNNING) {
    x->vcpus[rec->cpu].has_task = true;
    x->vcpus[rec->cpu].task = i;
  }
  x->st->slices++;
}

static size_t task_find(struct exporter *x, uint64_t pid) {
  uint64_t i;
  return u64map_get(&x->plan->task_index, pid, &i) ? (size_t)i : SIZE_MAX;
}

/* task_switch pid P comm C: P now runs on this vCPU; whatever ran there stops. */
static bool on_task_switch(struct exporter *x, const struct trace_record *rec) {
  uint64_t pid;
  if (rec->cpu < 0 || !field_u64(rec->fields, "pid", &pid)) return false;
  struct vcpu *v = &x->vcpus[rec->cpu];
  if (v->has_task) task_end(x, v->task, rec->time_ns);
  if (pid == 0) return true; /* the idle task: nothing runs */
  size_t i = task_find(x, pid);
  if (i == SIZE_MAX) return false;
  task_end(x, i, rec->time_ns); /* migrated from another vCPU, or woken */
  task_begin(x, i, rec, TASK_RUNNING, 0);
  return true;
}

static bool on_apf_wait(struct exporter *x, const struct trace_record *rec) {
  uint64_t pid, token = 0;
  if (!field_u64(rec->fields, "pid", &pid) || pid == 0) return false;
  field_u64(rec->fields, "token", &token);
  size_t i = task_find(x, pid);
  if (i == SIZE_MAX) return false;
  task_end(x, i, rec->time_ns);
  task_begin(x, i, rec, TASK_WAITING, token);
  return true;
}

/* apf_wake token T [pid P]: ends P's wait, or the first task waiting on T. */
static bool on_apf_wake(struct exporter *x, const struct trace_record *rec) {
  uint64_t pid, token;
  bool has_pid = field_u64(rec->fields, "pid", &pid);
  bool has_token = field_u64(rec->fields, "token", &token);
  if (!has_pid && !has_token) return false;
  for (size_t i = 0; i < x->plan->n_tasks; i++) {
    struct task *t = &x->plan->tasks[i];
    if (t->open != TASK_WAITING) continue;
    if (has_pid ? t->pid == pid : t->token == token) {
      task_end(x, i, rec->time_ns);
      return true;
    }
  }
  /* Nobody waits (yet): the wake came first, as when Linux leaves a dummy
   * node for the sleeper to find. Worth seeing where it happened. */
  instant(x, rec, "task", "t");
  return true;
}

static void apf_slice_name(int src, char *buf, size_t len) {
  if (src >= 0) snprintf(buf, len, "APF outstanding (vCPU %d)", src);
  else snprintf(buf, len, "APF outstanding");
}

static void apf_slice_end(struct exporter *x, size_t ord, uint64_t ts, const char *why_key,
                          json_t *why) {
  char name[64];
  apf_slice_name(x->np_src[ord], name, sizeof name);
  json_t *args = NULL;
  if (why_key) {
    args = json_object();
    set(x, args, why_key, why);
  }
  emit(x, (struct json_event){.ph = 'e', .ts_ns = ts, .pid = PID_HOST, .tid = TID_HOST,
                              .name = name, .cat = "apf", .has_id = true, .id = ord + 1,
                              .args = args});
  json_decref(args);
}

/* The flow arrows bind to the instant written just before them on the same
 * track (Perfetto binds a flow to the slice on top of that track's stack,
 * and an instant is a zero-length slice there), so each arrow runs from the
 * not-present marker to the page-ready marker. */
static void on_apf(struct exporter *x, const struct trace_record *rec, enum apf_step step,
                   size_t ord, size_t replaced) {
  instant(x, rec, "apf", "t");
  uint32_t pid, tid;
  track_of(rec->cpu, &pid, &tid);
  if (step == APF_NOT_PRESENT) {
    x->np_src[ord] = rec->cpu;
    if (x->plan->np_paired[ord]) {
      emit(x, (struct json_event){.ph = 's', .ts_ns = rec->time_ns, .pid = pid, .tid = tid,
                                  .name = "APF token", .cat = "apf", .has_id = true,
                                  .id = ord + 1});
      x->st->flows++;
    }
    if (replaced != SIZE_MAX) {
      apf_slice_end(x, replaced, rec->time_ns, "superseded_at_trace_line",
                    json_integer(rec->line_no));
      x->st->tokens_never_ready++;
    }
    char name[64];
    apf_slice_name(rec->cpu, name, sizeof name);
    json_t *args = fields_args(x, rec);
    emit(x, (struct json_event){.ph = 'b', .ts_ns = rec->time_ns, .pid = PID_HOST,
                                .tid = TID_HOST, .name = name, .cat = "apf", .has_id = true,
                                .id = ord + 1, .args = args});
    json_decref(args);
    x->st->slices++;
  } else if (step == APF_READY && ord != SIZE_MAX) {
    emit(x, (struct json_event){.ph = 'f', .ts_ns = rec->time_ns, .pid = pid, .tid = tid,
                                .name = "APF token", .cat = "apf", .has_id = true,
                                .id = ord + 1, .bp = "e"});
    apf_slice_end(x, ord, rec->time_ns, NULL, NULL);
  }
}

/* swap_{read,write}_{submit,done}: 1 read, 2 write; positive submit,
 * negative done; 0 for anything else. */
static int swap_kind(const char *name) {
  if (!strcmp(name, "swap_read_submit")) return 1;
  if (!strcmp(name, "swap_write_submit")) return 2;
  if (!strcmp(name, "swap_read_done")) return -1;
  if (!strcmp(name, "swap_write_done")) return -2;
  return 0;
}

static void swap_slice(struct exporter *x, char ph, uint64_t ts, uint64_t req, int kind,
                       json_t *args) {
  emit(x, (struct json_event){.ph = ph, .ts_ns = ts, .pid = PID_DEVICES, .tid = TID_DEVICES,
                              .name = kind == 1 ? "swap read" : "swap write", .cat = "swap",
                              .has_id = true, .id = req, .args = args});
}

static bool on_swap(struct exporter *x, const struct trace_record *rec, int kind) {
  uint64_t req, open_kind;
  if (!field_u64(rec->fields, "req", &req)) return false;
  bool open = u64map_get(&x->reqs, req, &open_kind);
  if (kind > 0) {
    if (open) { /* an id reused before its completion: end the old one here */
      json_t *why = json_object();
      set(x, why, "superseded_at_trace_line", json_integer(rec->line_no));
      swap_slice(x, 'e', rec->time_ns, req, (int)open_kind, why);
      json_decref(why);
      x->st->requests_unfinished++;
    }
    json_t *args = fields_args(x, rec);
    swap_slice(x, 'b', rec->time_ns, req, kind, args);
    json_decref(args);
    if (!u64map_put(&x->reqs, req, (uint64_t)kind)) x->oom = true;
    x->st->slices++;
    return true;
  }
  if (!open || (int)open_kind != -kind) {
    instant(x, rec, "swap", "t"); /* a completion without its submit */
    return true;
  }
  json_t *args = fields_args(x, rec);
  swap_slice(x, 'e', rec->time_ns, req, -kind, args);
  json_decref(args);
  u64map_del(&x->reqs, req);
  return true;
}

static bool on_task_exit(struct exporter *x, const struct trace_record *rec) {
  uint64_t pid;
  size_t i = field_u64(rec->fields, "pid", &pid) ? task_find(x, pid) : SIZE_MAX;
  if (i == SIZE_MAX) return false;
  task_end(x, i, rec->time_ns);
  instant(x, rec, "task", "t");
  return true;
}

static void on_event(struct exporter *x, const struct trace_record *rec) {
  size_t ord = SIZE_MAX, replaced = SIZE_MAX;
  enum apf_step step = apf_step(&x->apf, rec, &ord, &replaced, &x->oom);
  if (step == APF_NOT_PRESENT && ord >= x->plan->n_np) {
    x->changed = true; /* more not-presents than the first pass saw */
    return;
  }
  if (step == APF_NOT_PRESENT || step == APF_READY || step == APF_READY_WAKE_ALL) {
    on_apf(x, rec, step, ord, replaced);
    return;
  }
  bool known = true, handled = true;
  int kind = swap_kind(rec->name);
  if (step == APF_MALFORMED) {
    handled = false;
  } else if (is_vcpu_state_event(rec->name)) {
    int state = vcpu_state_of(rec);
    handled = rec->cpu >= 0 && state != VS_NONE;
    if (handled) on_vcpu_state(x, rec, state);
  } else if (!strcmp(rec->name, "task_switch")) {
    handled = on_task_switch(x, rec);
  } else if (!strcmp(rec->name, "apf_wait")) {
    handled = on_apf_wait(x, rec);
  } else if (!strcmp(rec->name, "apf_wake")) {
    handled = on_apf_wake(x, rec);
  } else if (!strcmp(rec->name, "task_exit")) {
    handled = on_task_exit(x, rec);
  } else if (kind) {
    handled = on_swap(x, rec, kind);
  } else if (!strcmp(rec->name, "guest_panic")) {
    instant(x, rec, "outcome", "g");
  } else {
    known = false;
  }

  if (!known) {
    instant(x, rec, "event", "t");
    x->st->unknown++;
  } else if (!handled) {
    /* In the vocabulary, but its fields do not say enough to draw it:
     * still shown, where it happened. */
    instant(x, rec, "malformed", "t");
    x->st->malformed++;
  }
}

static int cmp_u64_pair(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Open entries of a map as (value, key) or (key, value) pairs, sorted by the
 * first, so closing them at the end does not depend on the table's layout. */
static uint64_t *sorted_entries(const struct u64map *m, bool by_value, size_t *n) {
  *n = 0;
  uint64_t *a = malloc((m->live ? m->live : 1) * 2 * sizeof *a);
  if (!a) return NULL;
  for (size_t i = 0; i < m->cap; i++) {
    if (m->state[i] != 1) continue;
    a[2 * *n] = by_value ? m->vals[i] : m->keys[i];
    a[2 * *n + 1] = by_value ? m->keys[i] : m->vals[i];
    (*n)++;
  }
  qsort(a, *n, 2 * sizeof *a, cmp_u64_pair);
  return a;
}

/* The trace ends with slices still open: close them at its last event. */
static void close_all(struct exporter *x) {
  uint64_t end = x->plan->end_ns;
  for (int c = 0; c <= x->plan->max_cpu; c++) vcpu_end(x, c, end);
  for (size_t i = 0; i < x->plan->n_tasks; i++) task_end(x, i, end);
  size_t n;
  uint64_t *a = sorted_entries(&x->apf.open, true, &n);
  if (!a) x->oom = true;
  for (size_t i = 0; a && i < n; i++) {
    apf_slice_end(x, (size_t)(a[2 * i] - 1), end, "ready", json_string("never (trace ended)"));
    x->st->tokens_never_ready++;
  }
  free(a);
  a = sorted_entries(&x->reqs, false, &n);
  if (!a) x->oom = true;
  for (size_t i = 0; a && i < n; i++) {
    json_t *args = json_object();
    set(x, args, "done", json_string("never (trace ended)"));
    swap_slice(x, 'e', end, a[2 * i], (int)a[2 * i + 1], args);
    json_decref(args);
    x->st->requests_unfinished++;
  }
  free(a);
}

static bool write_timeline(struct exporter *x, const char *trace_path, FILE *f, struct diag *d) {
  json_out_begin(&x->out, f);
  metadata(x);
  struct trace_reader *r = trace_reader_open(trace_path, d);
  if (!r) return false;
  bool ok = true;
  uint64_t events = 0;
  for (;;) {
    struct trace_record rec;
    enum trace_read_status s = trace_reader_next(r, &rec, d);
    if (s == TRACE_READ_ERROR) {
      ok = false;
      break;
    }
    if (s == TRACE_READ_END) break;
    /* The file changed under us since the first pass. */
    if (++events > x->plan->events || rec.cpu > x->plan->max_cpu) x->changed = true;
    if (!x->changed) on_event(x, &rec);
    if (x->oom || x->changed) break;
  }
  trace_reader_close(r);
  if (!ok) return false;
  if (x->changed || events != x->plan->events)
    return diag_set(d, "%s: the trace changed while it was being exported", trace_path);
  close_all(x);
  if (x->oom) return diag_set(d, "out of memory");
  if (!json_out_end(&x->out)) return diag_set(d, "writing the timeline failed");
  return true;
}

enum timeline_result timeline_export_perfetto(const char *trace_path, const char *out_path,
                                              struct timeline_stats *stats, struct diag *d) {
  struct timeline_stats local;
  struct timeline_stats *st = stats ? stats : &local;
  memset(st, 0, sizeof *st);
  struct plan plan = {0};
  enum timeline_result res = scan(trace_path, &plan, d);
  if (res != TIMELINE_OK) {
    plan_free(&plan);
    return res;
  }
  st->events = plan.events;
  struct exporter x = {.st = st, .plan = &plan};
  x.vcpus = calloc((size_t)(plan.max_cpu + 1) + 1, sizeof *x.vcpus);
  x.np_src = calloc(plan.n_np + 1, sizeof *x.np_src);
  if (!x.vcpus || !x.np_src) {
    diag_set(d, "out of memory");
    res = TIMELINE_FAILED;
  }
  for (int c = 0; res == TIMELINE_OK && c <= plan.max_cpu; c++) x.vcpus[c].state = VS_NONE;

  if (res == TIMELINE_OK && !strcmp(out_path, "-")) {
    if (!write_timeline(&x, trace_path, stdout, d) || fflush(stdout) != 0) res = TIMELINE_FAILED;
  } else if (res == TIMELINE_OK) {
    struct atomic_file af = {0};
    if (!atomic_file_open(&af, out_path, "timeline", d)) {
      res = TIMELINE_BAD_INPUT;
    } else if (!write_timeline(&x, trace_path, af.f, d)) {
      atomic_file_abort(&af);
      res = TIMELINE_FAILED;
    } else if (!atomic_file_commit(&af, "timeline", d)) {
      res = TIMELINE_FAILED;
    }
  }
  free(x.vcpus);
  free(x.np_src);
  u64map_free(&x.apf.open);
  u64map_free(&x.reqs);
  plan_free(&plan);
  return res;
}
