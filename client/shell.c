/* fsc shell. See shell.h. */
#include "shell.h"

#include <stdio.h>

int fsc_shell_main(const struct fsc_opts *o) {
  (void)o;
  fputs("fsc: shell: not available yet\n", stderr);
  return FSC_EXIT_USAGE;
}
