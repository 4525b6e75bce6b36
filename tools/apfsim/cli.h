/* cli.h — shared pieces of the apfsim command-line program: the exit codes of
 * DESIGN.md §6 and the subcommand entry points. Each cmd_*.c file is one
 * subcommand; main.c only dispatches. */
#ifndef APFSIM_CLI_H
#define APFSIM_CLI_H

/* Exit codes (DESIGN.md §6; docs/cli.md). */
enum {
  EXIT_SIM_COMPLETED = 0, /* the simulation ran to an outcome, whatever it was */
  EXIT_EXPECT_MISMATCH = 1, /* --expect OUTCOME and the outcome differed */
  EXIT_BAD_INPUT = 2,
  EXIT_REPLAY_DIVERGED = 3,
  EXIT_NOT_BUILT = 4, /* the subcommand's capability does not exist yet */
  EXIT_INTERNAL = 5,
};

int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_sweep(int argc, char **argv); /* cmd_sweep.c, cmd_merge.c, cmd_plot.c */
int cmd_merge(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_explore(int argc, char **argv); /* cmd_explore.c: the injection-window explorer */

#endif
