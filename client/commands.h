/* fsc's commands on libuv: ls, size, rm, get, put, watch and announce, run
 * on one connection for the command line and the shell alike. One table
 * maps each command to its operations; the run (run.h) carries them out. */
#ifndef FSC_COMMANDS_H
#define FSC_COMMANDS_H

#include "app.h"
#include "cli.h"
#include "run.h"

/* Starts cmd on the ready connection. cmd (and the strings it points to)
 * must stay valid until on_done. Returns 0 (on_done will run) or an exit
 * status for a command that failed to start (on_done will not run):
 * FSC_EXIT_USAGE for a command that is not run on the server. */
int fsc_command_start(struct fsc_app *a, const struct fsc_cmd *cmd);

#endif /* FSC_COMMANDS_H */
