/* fsc shell: the interactive prompt. */
#ifndef FSC_SHELL_H
#define FSC_SHELL_H

#include "cli.h"

/* Runs the shell against o->server until the user quits. Returns the exit
 * status: 0, or FSC_EXIT_CONN when it cannot connect or the connection is
 * lost. */
int fsc_shell_main(const struct fsc_opts *o);

#endif /* FSC_SHELL_H */
