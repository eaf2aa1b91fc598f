/* The command table. See commands.h. */
#include "commands.h"

#include "cmds.h"

/* Each command's operations, by kind; shell-only commands (help, quit) and
 * the shell itself have none. */
static const struct fsc_run_ops *const commands[] = {
    [FSC_CMD_LS] = &fsc_ls_ops,
    [FSC_CMD_SIZE] = &fsc_size_ops,
    [FSC_CMD_RM] = &fsc_rm_ops,
    [FSC_CMD_GET] = &fsc_get_ops,
    [FSC_CMD_PUT] = &fsc_put_ops,
    [FSC_CMD_WATCH] = &fsc_watch_ops,
    [FSC_CMD_ANNOUNCE] = &fsc_announce_ops,
    [FSC_CMD_MKDIR] = &fsc_mkdir_ops,
    [FSC_CMD_MV] = &fsc_mv_ops,
    [FSC_CMD_CD] = &fsc_cd_ops,
};

int fsc_command_start(struct fsc_app *a, const struct fsc_cmd *cmd) {
  size_t k = (size_t)cmd->kind;
  if (k >= sizeof commands / sizeof commands[0] || commands[k] == NULL)
    return FSC_EXIT_USAGE;
  return fsc_run_start(a, cmd, commands[k]);
}
