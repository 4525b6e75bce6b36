/* cmd_explore.c — `apfsim explore CONFIG --window EVENT+FROM..TO`: the injection-window
 * explorer (issue 7 item 5; docs/explorer.md). The scenario runs once up to the window's
 * anchor (the n-th EVENT on the target vCPU); there the process forks one child per offset
 * k — a copy-on-write snapshot, since SystemC cannot save its own state — and each child
 * plants an NMI k retired instructions later, runs to the anchor + the horizon and sends
 * its result back through a pipe. The parent never runs past the anchor: it prints the
 * table (offset, guest instruction, outcome) and writes it as CSV.
 *
 * Not for: judging outcomes (the machine's verdicts), planning NMIs (sim/machine). */
#include <capstone/capstone.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config/config.h"
#include "core/atomic_file.h"
#include "machine/machine.h"
#include "platform.h"
#include "report/report.h"
#include "sweep/quantity.h"

static const char usage[] =
    "usage: apfsim explore CONFIG --window EVENT+FROM..TO [options]\n"
    "\n"
    "Runs CONFIG up to the window's anchor (the n-th trace event EVENT on the target vCPU),\n"
    "then once per offset k in FROM..TO from a snapshot there (fork): an NMI lands k retired\n"
    "instructions after the anchor and the run goes on for the horizon. Prints a table\n"
    "(offset, address, symbol+offset, disassembly in Intel syntax, outcome) and the race\n"
    "windows (maximal runs of offsets whose outcome is not ok).\n"
    "\n"
    "options:\n"
    "  --window EVENT+FROM..TO  the anchor event and the offsets (retired instructions), e.g.\n"
    "                      apf_user_not_present+0..60; any trace event name (docs/trace-format.md)\n"
    "  --vcpu N            the target vCPU (default: the config's first after-event NMI plan's,\n"
    "                      whose own NMI is dropped; else 0)\n"
    "  --nth N             the anchor is the N-th EVENT on that vCPU (default: that plan's, else 1)\n"
    "  --horizon DURATION  simulated time each point runs after the anchor (default 20ms)\n"
    "  -j, --jobs N        children at a time (default: online CPUs)\n"
    "  --csv FILE          also write the table as CSV (atomically)\n"
    "  --seed N, --set PATH=VALUE  as for `apfsim run`\n"
    "  -h, --help          this help\n"
    "\n"
    "An offset is `ok` when no failure was detected within the horizon; `error` when its\n"
    "child crashed, failed or exceeded limits/max-host-seconds (60 s when 0).\n"
    "exit status: 0 table written, 2 bad input (also: the anchor never reached within\n"
    "limits/max-sim-time), 5 internal error.\n";

#define MAX_OVERRIDES 256
#define MAX_OFFSETS 100000u
#define CODE_BYTES 16
#define DETAIL_MAX 240

/* What a child sends back: one write, smaller than PIPE_BUF, so it arrives whole. */
struct point_result {
  uint64_t k;
  int32_t outcome; /* enum run_outcome; -1: the run failed (internal error) */
  uint8_t landed;  /* the NMI was injected */
  uint8_t n_code;
  uint8_t code[CODE_BYTES];
  uint64_t rip, retired;
  char detail[DETAIL_MAX];
};

struct running_child {
  pid_t pid;
  int fd;
  uint64_t k;
};

struct explorer {
  /* the request */
  struct machine_window_hook hook;
  struct sim_config *cfg; /* the run's: a child lifts its host-time limit (below) */
  uint64_t from, to, horizon_ps;
  unsigned jobs, guard_seconds;
  /* the parent's state */
  bool anchored;
  uint64_t anchor_ps, anchor_retired;
  struct point_result *results; /* to - from + 1, by offset */
  struct running_child *running;
  unsigned n_running;
  /* a child's state */
  bool is_child;
  int result_fd;
  struct point_result mine;
};

static bool parse_u64(const char *s, uint64_t *v) {
  if (!*s || *s == '-' || *s == '+') return false;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno) return false;
  *v = x;
  return true;
}

/* EVENT+FROM..TO; event names are trace names: letters, digits and '_'. */
static bool parse_window(const char *s, struct explorer *x, char *why, size_t len) {
  const char *plus = strrchr(s, '+'), *dots = strstr(s, "..");
  if (!plus || !dots || dots < plus) {
    snprintf(why, len, "'%s' is not EVENT+FROM..TO (e.g. apf_user_not_present+0..60)", s);
    return false;
  }
  size_t n = (size_t)(plus - s);
  if (n == 0 || n >= sizeof x->hook.event) {
    snprintf(why, len, "'%s': the event name is empty or longer than %zu characters", s, sizeof x->hook.event - 1);
    return false;
  }
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9'))) {
      snprintf(why, len, "'%s': '%.*s' is not a trace event name (letters, digits, '_')", s, (int)n, s);
      return false;
    }
  memcpy(x->hook.event, s, n);
  x->hook.event[n] = '\0';
  char a[32], b[32];
  size_t la = (size_t)(dots - plus - 1);
  if (la >= sizeof a || strlen(dots + 2) >= sizeof b) {
    snprintf(why, len, "'%s': offsets too long", s);
    return false;
  }
  memcpy(a, plus + 1, la);
  a[la] = '\0';
  snprintf(b, sizeof b, "%s", dots + 2);
  if (!parse_u64(a, &x->from) || !parse_u64(b, &x->to)) {
    snprintf(why, len, "'%s': FROM and TO must be non-negative integers", s);
    return false;
  }
  if (x->from > x->to) {
    snprintf(why, len, "'%s': FROM (%s) is after TO (%s)", s, a, b);
    return false;
  }
  if (x->to - x->from >= MAX_OFFSETS) {
    snprintf(why, len, "'%s': more than %u offsets", s, MAX_OFFSETS);
    return false;
  }
  return true;
}

/* ---------- the parent: children and their results ---------- */

static void describe_status(int status, char *buf, size_t len) {
  if (WIFSIGNALED(status))
    snprintf(buf, len, "the child was killed by signal %d%s", WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (its host-time guard)" : "");
  else
    snprintf(buf, len, "the child exited with status %d without a result", WEXITSTATUS(status));
}

/* Waits for one child and files its result (or an `error` one). */
static void reap_one(struct explorer *x) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, 0)) < 0 && errno == EINTR) {
  }
  unsigned i = 0;
  while (i < x->n_running && x->running[i].pid != pid) i++;
  if (i == x->n_running) { /* no child left to wait for (cannot happen): file the rest as errors */
    if (pid >= 0) return;
    i = 0;
    status = 0x7f00; /* "exited with status 127" */
  }
  struct running_child c = x->running[i];
  x->running[i] = x->running[--x->n_running];
  struct point_result r;
  ssize_t got;
  while ((got = read(c.fd, &r, sizeof r)) < 0 && errno == EINTR) {
  }
  close(c.fd);
  struct point_result *slot = &x->results[c.k - x->from];
  if (got == (ssize_t)sizeof r && r.k == c.k) {
    *slot = r;
    return;
  }
  memset(slot, 0, sizeof *slot);
  slot->k = c.k;
  slot->outcome = -1;
  describe_status(status, slot->detail, sizeof slot->detail);
}

/* In the vCPU's thread at the anchor: one child per offset, -j at a time. The child
 * returns false (run on); the parent returns true once every child reported (end). */
static bool at_anchor(void *ctx, struct machine *m, uint64_t t_ps, uint64_t retired) {
  struct explorer *x = ctx;
  x->anchored = true;
  x->anchor_ps = t_ps;
  x->anchor_retired = retired;
  fflush(stdout); /* a child's buffers must not repeat the parent's output */
  fflush(stderr);
  for (uint64_t k = x->from;; k++) {
    while (x->n_running >= x->jobs) reap_one(x);
    int fd[2];
    pid_t pid = -1;
    if (pipe(fd) == 0 && (pid = fork()) < 0) {
      close(fd[0]);
      close(fd[1]);
    }
    if (pid == 0) {
      close(fd[0]);
      x->is_child = true;
      x->result_fd = fd[1];
      x->mine.k = k;
      /* A point that runs away ends as `error`, never hangs the parent. An alarm, because
       * the platform's own limits/max-host-seconds counts from the parent's start. */
      x->cfg->limits.max_host_seconds = 0;
      alarm(x->guard_seconds);
      if (!machine_nmi_add_at(m, x->hook.vcpu, retired + k)) _exit(EXIT_INTERNAL);
      machine_set_run_end(m, t_ps + x->horizon_ps);
      return false;
    }
    if (pid < 0) {
      struct point_result *slot = &x->results[k - x->from];
      slot->k = k;
      slot->outcome = -1;
      snprintf(slot->detail, sizeof slot->detail, "fork: %s", strerror(errno));
    } else {
      close(fd[1]);
      x->running[x->n_running++] = (struct running_child){pid, fd[0], k};
    }
    if (k == x->to) break;
  }
  while (x->n_running) reap_one(x);
  return true;
}

/* In a child: where its NMI landed (the first one on the target vCPU), with the code there
 * (kernel text is identity-mapped, docs/guest.md §1.3: gva = gpa). */
static void nmi_landed(void *ctx, struct machine *m, unsigned vcpu, uint64_t rip, uint64_t retired) {
  struct explorer *x = ctx;
  if (!x->is_child || x->mine.landed || vcpu != x->hook.vcpu) return;
  x->mine.landed = 1;
  x->mine.rip = rip;
  x->mine.retired = retired;
  uint64_t ram;
  const uint8_t *mem = machine_guest_memory(m, &ram);
  if (rip < ram) {
    uint64_t n = ram - rip < CODE_BYTES ? ram - rip : CODE_BYTES;
    memcpy(x->mine.code, mem + rip, n);
    x->mine.n_code = (uint8_t)n;
  }
}

/* A child's end: its result to the parent, then _exit (no atexit handlers, no leak check:
 * the process is a copy of a run in progress). */
static void child_report(struct explorer *x, bool ran, const struct run_summary *s, const char *err) {
  x->mine.outcome = ran ? (int32_t)s->outcome : -1;
  snprintf(x->mine.detail, sizeof x->mine.detail, "%.*s", (int)sizeof x->mine.detail - 1, ran ? s->verdict : err);
  ssize_t w = write(x->result_fd, &x->mine, sizeof x->mine);
  /* exit_group as a plain system call: _exit is declared noreturn, and before such a call
   * ASan checks the stack bounds it recorded, which SystemC's coroutine switches leave
   * stale in a forked child (one warning per child on sanitizer builds). */
  syscall(SYS_exit_group, w == (ssize_t)sizeof x->mine ? 0 : EXIT_INTERNAL);
  _exit(EXIT_INTERNAL); /* not reached */
}

/* ---------- the table ---------- */

struct row_text {
  char address[24], symbol[160], disasm[96];
  const char *outcome;
  bool ok;
};

static void row_text(const struct point_result *r, const struct guest_image *img, csh cs, struct row_text *t) {
  if (r->outcome < 0)
    t->outcome = "error";
  else if (r->outcome == OUTCOME_TIMEOUT || r->outcome == OUTCOME_OK)
    t->outcome = "ok"; /* no failure within the horizon */
  else
    t->outcome = outcome_name((enum run_outcome)r->outcome);
  t->ok = !strcmp(t->outcome, "ok");
  if (!r->landed) {
    snprintf(t->address, sizeof t->address, "-");
    snprintf(t->symbol, sizeof t->symbol, "-");
    snprintf(t->disasm, sizeof t->disasm, "(no NMI injected)");
    return;
  }
  snprintf(t->address, sizeof t->address, "%#llx", (unsigned long long)r->rip);
  uint64_t off;
  const struct guest_symbol *sym = img ? guest_image_symbol_at(img, r->rip, &off) : NULL;
  if (sym)
    snprintf(t->symbol, sizeof t->symbol, "%s+0x%llx", sym->name, (unsigned long long)off);
  else
    snprintf(t->symbol, sizeof t->symbol, "?");
  cs_insn *insn = NULL;
  if (r->n_code && cs_disasm(cs, r->code, r->n_code, r->rip, 1, &insn) == 1) {
    snprintf(t->disasm, sizeof t->disasm, "%.31s%s%.63s", insn->mnemonic, insn->op_str[0] ? " " : "", insn->op_str);
    cs_free(insn, 1);
  } else {
    snprintf(t->disasm, sizeof t->disasm, "?");
  }
}

static void csv_field(FILE *f, const char *s, bool last) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s == '\n' ? ' ' : *s, f);
  }
  fputs(last ? "\"\n" : "\",", f);
}

/* The summary lines: one per maximal run of consecutive non-ok offsets. */
static void print_windows(const struct explorer *x, const struct row_text *t, FILE *out) {
  const uint64_t n = x->to - x->from + 1;
  bool any = false;
  for (uint64_t i = 0; i < n;) {
    if (t[i].ok) {
      i++;
      continue;
    }
    uint64_t j = i;
    while (j + 1 < n && !t[j + 1].ok) j++;
    const char *distinct[OUTCOME_COUNT + 1];
    size_t n_distinct = 0;
    char outcomes[160] = "";
    for (uint64_t q = i; q <= j; q++) {
      size_t d = 0;
      while (d < n_distinct && strcmp(distinct[d], t[q].outcome)) d++;
      if (d < n_distinct || n_distinct == OUTCOME_COUNT + 1) continue;
      distinct[n_distinct++] = t[q].outcome;
      size_t l = strlen(outcomes);
      snprintf(outcomes + l, sizeof outcomes - l, "%s%s", l ? "," : "", t[q].outcome);
    }
    fprintf(out, "race window: offsets %llu-%llu (%llu instructions, %s .. %s): %s\n",
            (unsigned long long)(x->from + i), (unsigned long long)(x->from + j), (unsigned long long)(j - i + 1),
            t[i].symbol, t[j].symbol, outcomes);
    any = true;
    i = j + 1;
  }
  if (!any)
    fprintf(out, "no race window in offsets %llu-%llu\n", (unsigned long long)x->from, (unsigned long long)x->to);
}

static bool write_table(const struct explorer *x, const char *config_path, const struct guest_image *img,
                        const char *csv_path, struct diag *err) {
  csh cs;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) return diag_set(err, "capstone: cannot open x86-64");
  const uint64_t n = x->to - x->from + 1;
  struct row_text *t = calloc(n, sizeof *t);
  if (!t) {
    cs_close(&cs);
    return diag_set(err, "out of memory");
  }
  for (uint64_t i = 0; i < n; i++) row_text(&x->results[i], img, cs, &t[i]);
  cs_close(&cs);

  char horizon[32];
  struct quantity q = {QUANTITY_DURATION, x->horizon_ps};
  quantity_format(&q, horizon, sizeof horizon); /* thousandths of ns = ps */
  printf("# apfsim explore %s: window %s+%llu..%llu (anchor: %s number %u on vCPU %u, retired %llu), horizon %s\n"
         "# simulated after the anchor; ok = no failure within the horizon; disassembly: Intel syntax\n",
         config_path, x->hook.event, (unsigned long long)x->from, (unsigned long long)x->to, x->hook.event,
         x->hook.nth, x->hook.vcpu, (unsigned long long)x->anchor_retired, horizon);
  printf("%6s  %-10s  %-40s  %-36s  %s\n", "offset", "address", "symbol+offset", "disassembly", "outcome");
  for (uint64_t i = 0; i < n; i++)
    printf("%6llu  %-10s  %-40s  %-36s  %s\n", (unsigned long long)(x->from + i), t[i].address, t[i].symbol,
           t[i].disasm, t[i].outcome);
  print_windows(x, t, stdout);

  bool ok = true;
  if (csv_path) {
    struct atomic_file af;
    ok = atomic_file_open(&af, csv_path, "explorer CSV", err);
    if (ok) {
      fputs("offset,address,symbol,disassembly,outcome,detail\n", af.f);
      for (uint64_t i = 0; i < n; i++) {
        char k[24], detail[121];
        snprintf(k, sizeof k, "%llu", (unsigned long long)(x->from + i));
        snprintf(detail, sizeof detail, "%.*s", (int)sizeof detail - 1, x->results[i].detail); /* the verdict's start */
        fprintf(af.f, "%s,", k);
        csv_field(af.f, t[i].address, false);
        csv_field(af.f, t[i].symbol, false);
        csv_field(af.f, t[i].disasm, false);
        csv_field(af.f, t[i].outcome, false);
        csv_field(af.f, detail, true);
      }
      ok = atomic_file_commit(&af, "explorer CSV", err);
    }
  }
  free(t);
  return ok;
}

/* ---------- the command ---------- */

/* The window's defaults come from the config's first after-event plan, which is dropped:
 * the explorer plants its own NMI at each offset. */
static void take_after_event_plan(struct sim_config *cfg, unsigned *vcpu, uint32_t *nth) {
  struct race_config *rc = &cfg->race;
  for (uint32_t i = 0; i < rc->n_nmi_plans; i++) {
    if (rc->nmi[i].trigger != NMI_AFTER_EVENT) continue;
    *vcpu = rc->nmi[i].vcpu;
    *nth = rc->nmi[i].nth;
    memmove(&rc->nmi[i], &rc->nmi[i + 1], (rc->n_nmi_plans - i - 1) * sizeof rc->nmi[0]);
    rc->n_nmi_plans--;
    return;
  }
}

int cmd_explore(int argc, char **argv) {
  static const struct option opts[] = {
      {"window", required_argument, NULL, 'w'}, {"vcpu", required_argument, NULL, 'v'},
      {"nth", required_argument, NULL, 'n'},    {"horizon", required_argument, NULL, 'H'},
      {"jobs", required_argument, NULL, 'j'},   {"csv", required_argument, NULL, 'c'},
      {"seed", required_argument, NULL, 's'},   {"set", required_argument, NULL, 'S'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
  const char *overrides[MAX_OVERRIDES + 1];
  size_t n_overrides = 0;
  char seed_override[64] = "", why[256];
  const char *window = NULL, *csv_path = NULL, *vcpu_arg = NULL, *nth_arg = NULL;
  struct explorer x;
  memset(&x, 0, sizeof x);
  x.horizon_ps = 20000000000u; /* 20 ms: enough for the guest's panic or hang to show */
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  x.jobs = cpus > 0 ? (unsigned)cpus : 1;
  uint64_t v;
  int c;
  while ((c = getopt_long(argc, argv, "hj:", opts, NULL)) != -1) {
    switch (c) {
      case 'w': window = optarg; break;
      case 'v': vcpu_arg = optarg; break;
      case 'n': nth_arg = optarg; break;
      case 'c': csv_path = optarg; break;
      case 'H': {
        struct quantity q = {QUANTITY_PLAIN, 0};
        why[0] = '\0';
        if (!quantity_parse(optarg, &q, why, sizeof why) || q.family != QUANTITY_DURATION || !q.milli) {
          fprintf(stderr, "apfsim explore: --horizon: '%s' is not a positive duration (e.g. 20ms)%s%s\n", optarg,
                  why[0] ? ": " : "", why);
          return EXIT_BAD_INPUT;
        }
        x.horizon_ps = q.milli; /* thousandths of ns */
        break;
      }
      case 'j':
        if (!parse_u64(optarg, &v) || v == 0 || v > 1024) {
          fprintf(stderr, "apfsim explore: -j: '%s' is not an integer in 1..1024\n", optarg);
          return EXIT_BAD_INPUT;
        }
        x.jobs = (unsigned)v;
        break;
      case 's':
        if (!parse_u64(optarg, &v)) {
          fprintf(stderr, "apfsim explore: --seed: '%s' is not a non-negative integer\n", optarg);
          return EXIT_BAD_INPUT;
        }
        snprintf(seed_override, sizeof seed_override, "seed=%s", optarg);
        break;
      case 'S':
        if (n_overrides == MAX_OVERRIDES) {
          fprintf(stderr, "apfsim explore: more than %d --set options\n", MAX_OVERRIDES);
          return EXIT_BAD_INPUT;
        }
        overrides[n_overrides++] = optarg;
        break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return EXIT_BAD_INPUT;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "apfsim explore: expected exactly one CONFIG\n\n%s", usage);
    return EXIT_BAD_INPUT;
  }
  if (!window) {
    fprintf(stderr, "apfsim explore: --window EVENT+FROM..TO is required\n");
    return EXIT_BAD_INPUT;
  }
  if (!parse_window(window, &x, why, sizeof why)) {
    fprintf(stderr, "apfsim explore: --window: %s\n", why);
    return EXIT_BAD_INPUT;
  }
  if (seed_override[0]) overrides[n_overrides++] = seed_override;

  struct diag err = {{0}};
  struct sim_config *cfg = config_new();
  struct run_summary *summary = calloc(1, sizeof *summary);
  x.results = calloc(x.to - x.from + 1, sizeof *x.results);
  x.running = calloc(x.jobs, sizeof *x.running);
  struct guest_image *img = NULL;
  int status = EXIT_INTERNAL;
  if (!cfg || !summary || !x.results || !x.running) {
    fprintf(stderr, "apfsim explore: out of memory\n");
    goto out;
  }
  status = EXIT_BAD_INPUT;
  if (!config_load(argv[optind], overrides, n_overrides, NULL, cfg, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    goto out;
  }
  if (cfg->smoke.enabled) {
    fprintf(stderr, "apfsim explore: %s: a smoke run has no guest to explore\n", argv[optind]);
    goto out;
  }
  x.hook.nth = 1;
  take_after_event_plan(cfg, &x.hook.vcpu, &x.hook.nth);
  if (vcpu_arg) {
    if (!parse_u64(vcpu_arg, &v) || v >= cfg->machine.vcpus) {
      fprintf(stderr, "apfsim explore: --vcpu: '%s' is not a vCPU of %s (0..%u)\n", vcpu_arg, argv[optind],
              cfg->machine.vcpus - 1);
      goto out;
    }
    x.hook.vcpu = (unsigned)v;
  }
  if (nth_arg) {
    if (!parse_u64(nth_arg, &v) || v == 0 || v > UINT32_MAX) {
      fprintf(stderr, "apfsim explore: --nth: '%s' is not a positive integer\n", nth_arg);
      goto out;
    }
    x.hook.nth = (uint32_t)v;
  }
  x.cfg = cfg;
  x.guard_seconds = cfg->limits.max_host_seconds && cfg->limits.max_host_seconds < 86400
                        ? (unsigned)cfg->limits.max_host_seconds : 60;
  if (!(img = machine_open_kernel(cfg, &err))) { /* symbols for the table */
    fprintf(stderr, "%s\n", err.msg);
    goto out;
  }
  x.hook.ctx = &x;
  x.hook.at_anchor = at_anchor;
  x.hook.nmi_landed = nmi_landed;

  bool bad_input = false;
  struct platform_run_request req = {
      .cfg = cfg, .trace_path = NULL, .progress = false, .console = NULL, .bad_input = &bad_input,
      .window_hook = &x.hook};
  bool ran = platform_run(&req, summary, &err);
  if (x.is_child) child_report(&x, ran, summary, err.msg); /* does not return */
  if (!x.anchored) {
    if (!ran) {
      fprintf(stderr, bad_input ? "%s\n" : "apfsim explore: %s\n", err.msg);
      status = bad_input ? EXIT_BAD_INPUT : EXIT_INTERNAL;
    } else {
      fprintf(stderr,
              "apfsim explore: %s: the window's anchor, '%s' number %u on vCPU %u, was not reached: the run ended "
              "first (%s: %s)\n",
              argv[optind], x.hook.event, x.hook.nth, x.hook.vcpu, outcome_name(summary->outcome), summary->verdict);
      status = EXIT_BAD_INPUT;
    }
    goto out;
  }
  if (!ran) { /* the parent stopped at the anchor; anything else is an internal error */
    fprintf(stderr, "apfsim explore: %s\n", err.msg);
    status = EXIT_INTERNAL;
    goto out;
  }
  status = EXIT_SIM_COMPLETED;
  if (!write_table(&x, argv[optind], img, csv_path, &err)) {
    fprintf(stderr, "apfsim explore: %s\n", err.msg);
    status = EXIT_INTERNAL;
  }
out:
  if (summary) platform_summary_release(summary);
  free(summary);
  guest_image_free(img);
  free(x.results);
  free(x.running);
  free(cfg);
  return status;
}
