/* ftrace_import.c — reads an ftrace text file and pairs each async fault's
 * start with its completion (see ftrace.h).
 *
 * Pairing is done after reading, on sorted arrays, rather than while
 * reading: ftrace merges per-CPU buffers, so a completion on one CPU can be
 * printed a line before its start on another when both fall in the same
 * timestamp tick (a microsecond by default). Within one key (gva or token),
 * starts and completions are matched first-in first-out in time order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftrace/ftrace.h"

/* KVM sends page-ready with this token to wake every sleeper (DESIGN.md §2). */
#define WAKE_ALL_TOKEN 0xffffffffULL
/* A config duration's limit (docs/config.md): longer pairs cannot be a bin. */
#define MAX_LATENCY_NS 1000000000000000ULL

/* trace-cmd's binary trace.dat starts with these bytes. */
static const char trace_dat_magic[] = "\x17\x08\x44tracing";

struct mark {
  uint64_t key, time_ns, gva;
  long line;
  bool end;
};

struct marks {
  struct mark *a;
  size_t n, cap;
};

static bool push(struct marks *m, struct mark x) {
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    struct mark *a = realloc(m->a, cap * sizeof *a);
    if (!a) return false;
    m->a = a;
    m->cap = cap;
  }
  m->a[m->n++] = x;
  return true;
}

const char *ftrace_pairing_name(enum ftrace_pairing p) {
  switch (p) {
    case FTRACE_PAIR_GET_PAGE: return "get-page";
    case FTRACE_PAIR_TOKEN: return "token";
    default: return "auto";
  }
}

bool ftrace_pairing_parse(const char *s, enum ftrace_pairing *p) {
  for (int i = FTRACE_PAIR_AUTO; i <= FTRACE_PAIR_TOKEN; i++) {
    if (!strcmp(s, ftrace_pairing_name((enum ftrace_pairing)i))) {
      *p = (enum ftrace_pairing)i;
      return true;
    }
  }
  return false;
}

/* By key, then time; at one timestamp starts before completions (the
 * timestamp tick hides their order, and a completion cannot precede its
 * start), then by line. */
static int cmp_mark(const void *pa, const void *pb) {
  const struct mark *a = pa, *b = pb;
  if (a->key != b->key) return a->key < b->key ? -1 : 1;
  if (a->time_ns != b->time_ns) return a->time_ns < b->time_ns ? -1 : 1;
  if (a->end != b->end) return a->end ? 1 : -1;
  return (a->line > b->line) - (a->line < b->line);
}

static int cmp_pair(const void *pa, const void *pb) {
  const struct ftrace_pair *a = pa, *b = pb;
  if (a->start_ns != b->start_ns) return a->start_ns < b->start_ns ? -1 : 1;
  return (a->start_line > b->start_line) - (a->start_line < b->start_line);
}

struct pairing_result {
  struct ftrace_pair *pairs;
  size_t n_pairs;
  uint64_t unpaired_starts, unpaired_ends, zero_latency, too_long;
};

/* FIFO matching within each key. False when out of memory. */
static bool pair_marks(struct marks *m, struct pairing_result *res) {
  memset(res, 0, sizeof *res);
  if (m->n) qsort(m->a, m->n, sizeof *m->a, cmp_mark); /* a is NULL when empty */
  res->pairs = malloc((m->n ? m->n : 1) * sizeof *res->pairs);
  size_t *queue = malloc((m->n ? m->n : 1) * sizeof *queue);
  if (!res->pairs || !queue) {
    free(res->pairs);
    free(queue);
    res->pairs = NULL;
    return false;
  }
  for (size_t g = 0; g < m->n;) {
    size_t head = 0, tail = 0, e = g;
    for (; e < m->n && m->a[e].key == m->a[g].key; e++) {
      const struct mark *x = &m->a[e];
      if (!x->end) {
        queue[tail++] = e;
        continue;
      }
      if (head == tail) {
        res->unpaired_ends++;
        continue;
      }
      const struct mark *s = &m->a[queue[head++]];
      uint64_t lat = x->time_ns - s->time_ns;
      if (lat > MAX_LATENCY_NS) {
        res->too_long++;
        continue;
      }
      if (lat == 0) {
        res->zero_latency++;
        lat = 1;
      }
      res->pairs[res->n_pairs++] =
          (struct ftrace_pair){.start_ns = s->time_ns, .latency_ns = lat, .gva = s->gva,
                               .start_line = s->line};
    }
    res->unpaired_starts += tail - head;
    g = e;
  }
  free(queue);
  qsort(res->pairs, res->n_pairs, sizeof *res->pairs, cmp_pair);
  return true;
}

static void note_bad(struct ftrace_import *im, long line, const char *why) {
  im->unparseable++;
  if (im->n_bad < FTRACE_REPORTED_LINES) {
    im->bad[im->n_bad].line = line;
    snprintf(im->bad[im->n_bad].why, sizeof im->bad[im->n_bad].why, "%s", why);
    im->n_bad++;
  }
}

void ftrace_import_free(struct ftrace_import *im) {
  free(im->pairs);
  im->pairs = NULL;
  im->n_pairs = 0;
}

bool ftrace_import_file(const char *path, enum ftrace_pairing pairing, struct ftrace_import *im,
                        struct diag *d) {
  memset(im, 0, sizeof *im);
  FILE *f = fopen(path, "rb");
  if (!f) return diag_at(d, path, 0, NULL, "cannot open: %s", strerror(errno));
  struct marks by_gva = {0}, by_token = {0};
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  bool ok = true;
  while ((len = getline(&line, &cap, f)) >= 0) {
    im->lines++;
    if (im->lines == 1 && (size_t)len >= sizeof trace_dat_magic - 1 &&
        !memcmp(line, trace_dat_magic, sizeof trace_dat_magic - 1)) {
      ok = diag_at(d, path, 0, NULL,
                   "a binary trace-cmd file (trace.dat), not text: convert it with "
                   "\"trace-cmd report -i %s > %s.txt\" first",
                   path, path);
      break;
    }
    if (memchr(line, '\0', (size_t)len)) {
      note_bad(im, im->lines, "line: NUL byte (binary data, not ftrace text)");
      continue;
    }
    struct ftrace_record r;
    char why[192];
    switch (ftrace_parse_line(line, &r, why, sizeof why)) {
      case FTRACE_LINE_SKIP:
        if (strstr(line, "[LOST ")) im->lost_notes++;
        else im->skipped++;
        continue;
      case FTRACE_LINE_BAD: note_bad(im, im->lines, why); continue;
      case FTRACE_LINE_EVENT: break;
    }
    im->events++;
    im->by_kind[r.kind]++;
    struct mark m = {.time_ns = r.time_ns, .gva = r.gva, .line = im->lines};
    bool pushed = true;
    switch (r.kind) {
      case FTRACE_EV_TRY_ASYNC_GET_PAGE:
      case FTRACE_EV_COMPLETED:
        m.key = r.gva;
        m.end = r.kind == FTRACE_EV_COMPLETED;
        pushed = push(&by_gva, m);
        break;
      case FTRACE_EV_NOT_PRESENT:
      case FTRACE_EV_READY:
        if (r.kind == FTRACE_EV_READY && r.token == WAKE_ALL_TOKEN) {
          im->wake_all++;
          break;
        }
        m.key = r.token;
        m.end = r.kind == FTRACE_EV_READY;
        pushed = push(&by_token, m);
        break;
      default: break;
    }
    if (!pushed) {
      ok = diag_set(d, "out of memory");
      break;
    }
  }
  if (ok && ferror(f)) ok = diag_at(d, path, im->lines + 1, NULL, "read error");
  free(line);
  fclose(f);

  if (ok && im->events == 0) {
    if (im->unparseable)
      ok = diag_at(d, path, 0, NULL,
                   "nothing parses as ftrace text: %ld lines, %llu unparseable (the first on "
                   "line %ld)",
                   im->lines, (unsigned long long)im->unparseable, im->bad[0].line);
    else
      ok = diag_at(d, path, 0, NULL, "no ftrace events in %ld lines", im->lines);
  }
  struct pairing_result gp = {0}, tk = {0};
  if (ok && (!pair_marks(&by_gva, &gp) || !pair_marks(&by_token, &tk)))
    ok = diag_set(d, "out of memory");
  if (ok) {
    if (pairing == FTRACE_PAIR_AUTO)
      pairing = tk.n_pairs > gp.n_pairs ? FTRACE_PAIR_TOKEN : FTRACE_PAIR_GET_PAGE;
    struct pairing_result *use = pairing == FTRACE_PAIR_TOKEN ? &tk : &gp;
    im->pairing = pairing;
    im->pairs = use->pairs;
    im->n_pairs = use->n_pairs;
    im->unpaired_starts = use->unpaired_starts;
    im->unpaired_ends = use->unpaired_ends;
    im->zero_latency = use->zero_latency;
    im->too_long = use->too_long;
    use->pairs = NULL;
  }
  free(gp.pairs);
  free(tk.pairs);
  free(by_gva.a);
  free(by_token.a);
  return ok;
}
