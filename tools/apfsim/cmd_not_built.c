/* cmd_not_built.c — subcommands whose capability does not exist yet. They say
 * so and exit non-zero rather than pretend (issue 2). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_not_built(const char *name, const char *what, const char *issue, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: apfsim %s ...\n\n%s is not built yet (tracked in %s).\n"
             "This command exits with status 4 until it is.\n", name, what, issue);
      return 0;
    }
  }
  fprintf(stderr, "apfsim %s: %s is not built yet (tracked in %s)\n", name, what, issue);
  return EXIT_NOT_BUILT;
}
