/* fsc command-line parsing and help texts. See cli.h. */
#include "cli.h"

#include <fsproto/fsproto.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which options a command takes. */
enum {
  OPT_LONG = 1 << 0,     /* -l */
  OPT_HUMAN = 1 << 1,    /* -h */
  OPT_JSON = 1 << 2,     /* --json */
  OPT_OUT = 1 << 3,      /* -o PATH */
  OPT_CONTINUE = 1 << 4, /* -c, --continue */
  OPT_AS = 1 << 5,       /* --as NAME */
  OPT_NOCLOB = 1 << 6,   /* --no-clobber */
  OPT_RETRY = 1 << 7,    /* --retry N */
  OPT_REC = 1 << 8,      /* -r, --recursive */
  OPT_REC_LS = 1 << 9,   /* -R, --recursive */
  OPT_PARENTS = 1 << 10, /* -p, --parents */
};

struct cmd_spec {
  const char *name;
  enum fsc_cmd_kind kind;
  unsigned opts;
  int min_args; /* operands needed */
  int max_args; /* -1: any number */
  int shell;    /* 1: only inside the shell; -1: only on the command line */
  const char *operand; /* what a missing operand is called */
  const char *help;    /* its help text */
};

static const char program_help[] =
    "Usage: fsc [-s HOST:PORT] [-u NAME] [-i FILE] [-q] [--tls]\n"
    "           [--pin SHA256:...] [--ca FILE] COMMAND [ARGS...]\n"
    "\n"
    "Client for the fsd file server.\n"
    "\n"
    "Commands:\n"
    "  ls [-l] [-h] [-R] [--json] [PATH]\n"
    "                                   list the files and folders on the "
    "server\n"
    "  size [-h] PATH...                print the size of files\n"
    "  rm [-r] PATH...                  remove files (-r: and folders)\n"
    "  mkdir [-p] PATH...               make folders\n"
    "  mv [--no-clobber] SRC DST        move or rename a file or folder\n"
    "  get PATH... [-o PATH] [-c]       download files\n"
    "  get -r PATH... [-o DIR]          download folders\n"
    "  put FILE... [--as PATH] [--no-clobber]\n"
    "                                   upload files ('-' is stdin)\n"
    "  put -r DIR... [--as PATH]        upload folders\n"
    "  watch [--json] [--retry N] [PATH]\n"
    "                                   print changes and notices as they "
    "happen\n"
    "  announce TEXT...                 send a notice to every watcher\n"
    "  shell                            interactive prompt\n"
    "  keygen                           make this client's key and print the\n"
    "                                   line for the server's users file\n"
    "\n"
    "Options:\n"
    "  -s, --server HOST:PORT  the server: default $FSC_SERVER, else\n"
    "                          " FSC_DEFAULT_SERVER "; IPv6 in brackets: "
    "[::1]:7878;\n"
    "                          several of one cluster, comma separated,\n"
    "                          are tried in turn\n"
    "  -u, --user NAME         who to authenticate as, when the server asks:\n"
    "                          default $FSC_USER, else the login name\n"
    "  -i, --identity FILE     the private key to sign with: default\n"
    "                          $FSC_IDENTITY, else\n"
    "                          $XDG_CONFIG_HOME/fsc/id_ed25519 (made by fsc\n"
    "                          keygen; an unencrypted ssh id_ed25519 works\n"
    "                          too; refused when others may read it)\n"
    "  -q, --quiet             no progress bar\n"
    "      --tls               TLS to a loopback server too (any other\n"
    "                          server is always reached over TLS 1.3)\n"
    "      --pin SHA256:...    trust only the server key with this\n"
    "                          fingerprint (fsd prints it); nothing recorded\n"
    "      --ca FILE           trust certificates from the CAs in FILE, for\n"
    "                          the server's host name, instead of pinning\n"
    "  A server met for the first time is trusted and its key recorded in\n"
    "  $XDG_CONFIG_HOME/fsc/known_servers (~/.config/fsc/known_servers);\n"
    "  a different key later is refused (exit 3) until its line is removed.\n"
    "      --help              this help; `fsc COMMAND --help` for a "
    "command\n"
    "      --version           print the version\n"
    "\n"
    "Exit status:\n"
    "  0    success\n"
    "  1    an operation failed (the error names the file)\n"
    "  2    usage error\n"
    "  3    cannot connect to the server (or its key or certificate is not\n"
    "       trusted), the server refused to let this user in, or the\n"
    "       connection was lost\n"
    "       (watch: once it gives up reconnecting, see fsc watch --help)\n"
    "  130  interrupted by Ctrl-C (128+N for signal N, e.g. 143 for kill);\n"
    "       transfers are canceled and temporary files removed\n";

static const char ls_help[] =
    "Usage: fsc ls [-l] [-h] [-R] [--json] [PATH]\n"
    "\n"
    "List the files and folders in the server's folder PATH (default: the\n"
    "top folder), sorted by name, one per line; folders end with '/'.\n"
    "A server without folders (protocol version 1 or 2) takes no PATH.\n"
    "\n"
    "  -l              also show size and modification time\n"
    "  -h              human-readable sizes (with -l)\n"
    "  -R, --recursive everything below PATH, as paths relative to it\n"
    "  --json          one JSON object per line: {\"name\", \"type\", "
    "\"size\",\n"
    "                  \"mtime_ns\"}\n";

static const char size_help[] =
    "Usage: fsc size [-h] PATH...\n"
    "\n"
    "Print the size of each file in bytes (one PATH) or as \"SIZE PATH\"\n"
    "lines (several PATHs); a folder is shown as \"folder\".\n"
    "\n"
    "  -h  human-readable sizes\n";

static const char rm_help[] =
    "Usage: fsc rm [-r] PATH...\n"
    "\n"
    "Remove files, and empty folders, from the server.\n"
    "\n"
    "  -r, --recursive  remove folders with everything in them; each entry\n"
    "                   the server could not remove is printed (\"skipped\n"
    "                   PATH: REASON\") and the status is 1\n";

static const char mkdir_help[] =
    "Usage: fsc mkdir [-p] PATH...\n"
    "\n"
    "Make folders on the server (protocol version 3).\n"
    "\n"
    "  -p, --parents  make missing parent folders too; an existing folder\n"
    "                 is no error\n";

static const char mv_help[] =
    "Usage: fsc mv [--no-clobber] SRC DST\n"
    "\n"
    "Move or rename the file or folder SRC to the path DST on the server, in\n"
    "one atomic step (protocol version 3). DST's folder must exist. An\n"
    "existing file DST is replaced, an existing folder DST only when empty.\n"
    "\n"
    "  --no-clobber  fail instead of replacing DST\n";

static const char get_help[] =
    "Usage: fsc get PATH... [-o PATH] [-c]\n"
    "       fsc get -r PATH... [-o DIR] [-c]\n"
    "\n"
    "Download files over one connection, all requests in flight together.\n"
    "Each file is written to a temporary file beside its target and renamed\n"
    "into place only once its size and checksum match.\n"
    "\n"
    "  -o PATH         the target file (one PATH) or folder (several); '-' "
    "writes\n"
    "                  to standard output. Default: the current folder.\n"
    "  -r, --recursive download the server folders PATH with all they hold\n"
    "                  into DIR/NAME (NAME: PATH's last part; the whole\n"
    "                  server for '/'); ends with \"N files, M bytes\".\n"
    "                  Nothing is written outside DIR, and no local link is\n"
    "                  followed; a file that fails is reported, the others\n"
    "                  go on, and the status is 1\n"
    "  -c, --continue  resume from TARGET.fsc-part, a partial copy kept by an\n"
    "                  interrupted `get -c`, once the server confirms that it\n"
    "                  matches the start of the file. With -r, a file already\n"
    "                  at its target is kept when its size and XXH3 are the\n"
    "                  server's, else fetched again; the count line ends\n"
    "                  with \"; K already there\"\n";

static const char put_help[] =
    "Usage: fsc put FILE... [--as PATH] [--no-clobber] [-c]\n"
    "       fsc put -r DIR... [--as PATH] [--no-clobber] [-c]\n"
    "\n"
    "Upload files. Each is stored under its base name, or under PATH (with\n"
    "its missing folders made, protocol version 3).\n"
    "FILE '-' reads standard input and needs --as; a pipe or a FIFO (such\n"
    "as bash's <(command)) is read to its end first, since the size goes\n"
    "ahead of the data.\n"
    "\n"
    "  --as PATH       the path on the server (one FILE or DIR only)\n"
    "  --no-clobber    fail instead of replacing an existing file\n"
    "  -r, --recursive upload the folders DIR with all they hold, as the\n"
    "                  server folder NAME (DIR's last part) or PATH;\n"
    "                  symbolic links are skipped with a warning, empty\n"
    "                  folders are made; ends with \"N files, M bytes\";\n"
    "                  a file that fails is reported, the others go on,\n"
    "                  and the status is 1\n"
    "  -c, --continue  send only what is not on the server yet: a file\n"
    "                  whose size and XXH3 the server's file has already\n"
    "                  (one HASH asks) is not sent again, and put says\n"
    "                  \"NAME: already there\" (with -r, the count line\n"
    "                  ends with \"; K already there\")\n";

static const char watch_help[] =
    "Usage: fsc watch [--json] [--retry N] [PATH]\n"
    "\n"
    "Print one line per change on the server (added, replaced, removed,\n"
    "renamed as \"renamed OLD -> NEW\", with full paths; folders end with\n"
    "'/') in the folder PATH and below (default: everywhere) and per\n"
    "notice, until interrupted (Ctrl-C ends it with status 0) or until its\n"
    "output can no longer be written (`fsc watch | head -1`; status 1).\n"
    "\n"
    "watch keeps a table of the server's files (name, size, time): memory\n"
    "grows with the number of files (a million files with 16-byte names\n"
    "take 99 MB), and doubles for a moment while it lists them again.\n"
    "When the server says events were missed (this watch read too slowly)\n"
    "or a reconnect finds a restarted server, watch lists the files again\n"
    "and prints the difference as the same lines, sorted by name: every\n"
    "change of state is shown, though not every version in between. It\n"
    "says so on stderr (\"fsc: resync: ...\"), or with --json in an object\n"
    "{\"type\":\"resync\",\"epoch\",\"seq\"} before those lines.\n"
    "\n"
    "When the connection drops or the server restarts, watch says so on\n"
    "stderr and reconnects after 0.1 s, then twice as long after each\n"
    "failure, up to 5 s, and catches up on the events it missed. A server\n"
    "that cannot be reached at the start is an error (exit 3).\n"
    "\n"
    "  --json     one JSON object per line\n"
    "  --retry N  give up (exit 3) after N failed reconnects in a row;\n"
    "             0: do not reconnect. Default: retry forever\n";

static const char announce_help[] =
    "Usage: fsc announce TEXT...\n"
    "\n"
    "Send TEXT (the words joined by spaces) to every watching client.\n";

static const char shell_help[] =
    "Usage: fsc shell\n"
    "\n"
    "Interactive prompt for the commands ls, size, rm, mkdir, mv, get, put,\n"
    "announce, cd, pwd, help and quit. Changes and notices are printed as\n"
    "they arrive. Paths are relative to the shell's current folder (cd PATH,\n"
    "cd .. and cd / move it; pwd shows it) unless they start with '/'.\n"
    "Line editing: arrows, Home/End, Ctrl-A/E/K/U/W, history with Up/Down;\n"
    "Ctrl-C cancels the running command or clears the line, Ctrl-D quits.\n"
    "\n"
    "When stdin is not a terminal (a pipe or a file), the shell runs its\n"
    "lines one after the other and exits at the end of the input, with the\n"
    "highest exit status of the commands it ran (0 when all succeeded).\n";

static const char keygen_help[] =
    "Usage: fsc [-u NAME] [-i FILE] keygen\n"
    "\n"
    "Make a new Ed25519 key for this client in FILE (default\n"
    "$FSC_IDENTITY, else $XDG_CONFIG_HOME/fsc/id_ed25519, else\n"
    "~/.config/fsc/id_ed25519; mode 0600, in OpenSSH's format), and print\n"
    "on stdout the line to add to the server's users file:\n"
    "  NAME read,write,delete,notice ssh-ed25519 AAAA... NAME@HOST\n"
    "NAME is -u, else $FSC_USER, else the login name. An existing key is\n"
    "never replaced. The key has no passphrase: keep the file private.\n";

static const char shell_cmds_help[] =
    "Commands: ls [-l] [-h] [-R] [--json] [PATH], size [-h] PATH...,\n"
    "  rm [-r] PATH..., mkdir [-p] PATH..., mv [--no-clobber] SRC DST,\n"
    "  get [-r] PATH... [-o PATH] [-c],\n"
    "  put [-r] FILE... [--as PATH] [--no-clobber] [-c],\n"
    "  announce TEXT..., cd [PATH], pwd, help [COMMAND], quit\n";

static const struct cmd_spec specs[] = {
    {"ls", FSC_CMD_LS, OPT_LONG | OPT_HUMAN | OPT_JSON | OPT_REC_LS, 0, 1, 0,
     NULL, ls_help},
    {"size", FSC_CMD_SIZE, OPT_HUMAN, 1, -1, 0, "PATH", size_help},
    {"rm", FSC_CMD_RM, OPT_REC, 1, -1, 0, "PATH", rm_help},
    {"mkdir", FSC_CMD_MKDIR, OPT_PARENTS, 1, -1, 0, "PATH", mkdir_help},
    {"mv", FSC_CMD_MV, OPT_NOCLOB, 2, 2, 0, "SRC and DST", mv_help},
    {"get", FSC_CMD_GET, OPT_OUT | OPT_CONTINUE | OPT_REC, 1, -1, 0, "PATH",
     get_help},
    {"put", FSC_CMD_PUT, OPT_AS | OPT_NOCLOB | OPT_REC | OPT_CONTINUE, 1, -1, 0,
     "FILE", put_help},
    {"watch", FSC_CMD_WATCH, OPT_JSON | OPT_RETRY, 0, 1, -1, NULL, watch_help},
    {"announce", FSC_CMD_ANNOUNCE, 0, 1, -1, 0, "TEXT", announce_help},
    {"shell", FSC_CMD_SHELL, 0, 0, 0, -1, NULL, shell_help},
    {"keygen", FSC_CMD_KEYGEN, 0, 0, 0, -1, NULL, keygen_help},
    {"help", FSC_CMD_HELP, 0, 0, 1, 1, NULL, shell_cmds_help},
    {"quit", FSC_CMD_QUIT, 0, 0, 0, 1, NULL, shell_cmds_help},
    {"exit", FSC_CMD_QUIT, 0, 0, 0, 1, NULL, shell_cmds_help},
    {"cd", FSC_CMD_CD, 0, 0, 1, 1, NULL, shell_cmds_help},
    {"pwd", FSC_CMD_PWD, 0, 0, 0, 1, NULL, shell_cmds_help},
};

#define NSPECS (sizeof specs / sizeof specs[0])

const char *fsc_help_text(enum fsc_cmd_kind kind) {
  for (size_t i = 0; kind != FSC_CMD_NONE && i < NSPECS; i++)
    if (specs[i].kind == kind)
      return specs[i].help;
  return program_help;
}

const char *fsc_cmd_name(enum fsc_cmd_kind kind) {
  for (size_t i = 0; i < NSPECS; i++)
    if (specs[i].kind == kind)
      return specs[i].name;
  return NULL;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
usage(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return FSC_EXIT_USAGE;
}

/* Matches a long option that takes a value, as "--opt VALUE" or
 * "--opt=VALUE". Returns 1 and sets *val (NULL when the value is missing),
 * or 0 when arg is not this option. */
static int long_with_value(const char *arg, const char *opt, int argc,
                           char **argv, int *i, const char **val) {
  size_t n = strlen(opt);
  if (strncmp(arg, opt, n) != 0)
    return 0;
  if (arg[n] == '=') {
    *val = arg + n + 1;
    return 1;
  }
  if (arg[n] != '\0')
    return 0;
  *val = (*i + 1 < argc) ? argv[++*i] : NULL;
  return 1;
}

/* The rules between a command's options and operands, once parsed.
 * Returns 0 or FSC_EXIT_USAGE with a message in err. */
static int check_operands(const struct fsc_cmd *c, char *err, size_t errlen) {
  char **ops = c->args;
  int nops = c->nargs;
  if (c->kind == FSC_CMD_GET && c->out && strcmp(c->out, "-") == 0 && nops > 1)
    return usage(err, errlen, "get: -o - takes exactly one NAME");
  if (c->kind == FSC_CMD_GET && c->out && strcmp(c->out, "-") == 0 && c->resume)
    return usage(err, errlen, "get: --continue cannot write to stdout");
  if (c->kind == FSC_CMD_GET && c->recursive && c->out &&
      strcmp(c->out, "-") == 0)
    return usage(err, errlen, "get: -r cannot write to stdout");
  if (c->kind == FSC_CMD_PUT) {
    if (c->as && nops > 1)
      return usage(err, errlen, "put: --as takes exactly one %s",
                   c->recursive ? "DIR" : "FILE");
    for (int i = 0; i < nops && c->recursive; i++)
      if (strcmp(ops[i], "-") == 0)
        return usage(err, errlen, "put: -r takes folders, not '-' (stdin)");
    for (int i = 0; i < nops; i++)
      if (strcmp(ops[i], "-") == 0 && c->as == NULL)
        return usage(err, errlen, "put: '-' (stdin) needs --as NAME");
  }
  if (c->kind == FSC_CMD_HELP && nops == 1) {
    const struct cmd_spec *t = NULL;
    for (size_t i = 0; i < NSPECS; i++)
      if (strcmp(ops[0], specs[i].name) == 0)
        t = &specs[i];
    if (t == NULL)
      return usage(err, errlen, "help: unknown command '%s'", ops[0]);
  }
  return 0;
}

int fsc_parse_cmd(int argc, char **argv, int shell, struct fsc_cmd *c,
                  char *err, size_t errlen) {
  const struct cmd_spec *sp = NULL;
  memset(c, 0, sizeof *c);
  if (argc < 1)
    return usage(err, errlen, "missing command (try --help)");
  for (size_t i = 0; i < NSPECS; i++) {
    int here = specs[i].shell == 0 || (specs[i].shell > 0) == (shell != 0);
    if (here && strcmp(argv[0], specs[i].name) == 0)
      sp = &specs[i];
  }
  if (sp == NULL)
    return usage(err, errlen, "unknown command '%s' (try %s)", argv[0],
                 shell ? "help" : "--help");
  c->kind = sp->kind;
  c->retry = -1;
  /* Operands are collected in place at the front of argv + 1, so the order
   * of operands is kept and options may come anywhere (`get a b -o dir`). */
  char **ops = argv + 1;
  int nops = 0, only_operands = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    if (only_operands || a[0] != '-' || strcmp(a, "-") == 0) {
      ops[nops++] = argv[i];
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_operands = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0) {
      c->help = 1;
      continue;
    }
    if (a[1] == '-') {
      if ((sp->opts & OPT_JSON) && strcmp(a, "--json") == 0)
        c->json = 1;
      else if ((sp->opts & OPT_CONTINUE) && strcmp(a, "--continue") == 0)
        c->resume = 1;
      else if ((sp->opts & OPT_NOCLOB) && strcmp(a, "--no-clobber") == 0)
        c->no_clobber = 1;
      else if ((sp->opts & (OPT_REC | OPT_REC_LS)) &&
               strcmp(a, "--recursive") == 0)
        c->recursive = 1;
      else if ((sp->opts & OPT_PARENTS) && strcmp(a, "--parents") == 0)
        c->parents = 1;
      else if ((sp->opts & OPT_AS) &&
               long_with_value(a, "--as", argc, argv, &i, &val)) {
        if (val == NULL || *val == '\0')
          return usage(err, errlen, "%s: --as needs a NAME", sp->name);
        c->as = val;
      } else if ((sp->opts & OPT_RETRY) &&
                 long_with_value(a, "--retry", argc, argv, &i, &val)) {
        char *end = NULL;
        long n = val != NULL && *val >= '0' && *val <= '9'
                     ? strtol(val, &end, 10)
                     : -1;
        if (n < 0 || *end != '\0' || n > 1000000)
          return usage(err, errlen, "%s: --retry needs a number (0-1000000)",
                       sp->name);
        c->retry = (int)n;
      } else if ((sp->opts & OPT_OUT) &&
                 long_with_value(a, "--output", argc, argv, &i, &val)) {
        if (val == NULL || *val == '\0')
          return usage(err, errlen, "%s: --output needs a PATH", sp->name);
        c->out = val;
      } else
        return usage(err, errlen, "%s: unknown option '%s'", sp->name, a);
      continue;
    }
    /* A cluster of short options, like -lh; -o takes the rest of the word
     * or the next word as its value. */
    for (const char *p = a + 1; *p; p++) {
      if (*p == 'l' && (sp->opts & OPT_LONG))
        c->long_fmt = 1;
      else if (*p == 'h' && (sp->opts & OPT_HUMAN))
        c->human = 1;
      else if (*p == 'c' && (sp->opts & OPT_CONTINUE))
        c->resume = 1;
      else if ((*p == 'r' && (sp->opts & OPT_REC)) ||
               (*p == 'R' && (sp->opts & OPT_REC_LS)))
        c->recursive = 1;
      else if (*p == 'p' && (sp->opts & OPT_PARENTS))
        c->parents = 1;
      else if (*p == 'o' && (sp->opts & OPT_OUT)) {
        if (p[1] != '\0')
          c->out = p + 1;
        else if (i + 1 < argc)
          c->out = argv[++i];
        else
          return usage(err, errlen, "%s: -o needs a PATH", sp->name);
        if (*c->out == '\0')
          return usage(err, errlen, "%s: -o needs a PATH", sp->name);
        break;
      } else
        return usage(err, errlen, "%s: unknown option '-%c'", sp->name, *p);
    }
  }
  c->args = ops;
  c->nargs = nops;
  if (c->help)
    return 0;
  if (nops < sp->min_args)
    return usage(err, errlen, "%s: missing %s (try %s --help)", sp->name,
                 sp->operand, sp->name);
  if (sp->max_args >= 0 && nops > sp->max_args)
    return usage(err, errlen, "%s: unexpected argument '%s'", sp->name,
                 ops[sp->max_args]);
  return check_operands(c, err, errlen);
}

/* One global option at argv[*i] (not --help or --version, which only
 * come before the command): 1 when taken into o (*i then indexes its last
 * word), 0 when a is not a global option, or FSC_EXIT_USAGE. */
static int take_global(int argc, char **argv, int *i, struct fsc_opts *o,
                       char *err, size_t errlen) {
  const char *a = argv[*i];
  const char *val = NULL;
  if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
    o->quiet = 1;
  else if (long_with_value(a, "--user", argc, argv, i, &val) ||
           strncmp(a, "-u", 2) == 0) {
    if (a[1] == 'u')
      val = a[2] ? a + 2 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (val == NULL || fsp_user_check(val, strlen(val)) != 0)
      return usage(err, errlen,
                   "-u needs a user NAME (letters, digits, '.', '_', '-')");
    o->user = val;
  } else if (long_with_value(a, "--identity", argc, argv, i, &val) ||
             strncmp(a, "-i", 2) == 0) {
    if (a[1] == 'i')
      val = a[2] ? a + 2 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (val == NULL || *val == '\0')
      return usage(err, errlen, "-i needs a key FILE");
    o->identity = val;
  } else if (strcmp(a, "--tls") == 0)
    o->tls = 1;
  else if (long_with_value(a, "--pin", argc, argv, i, &val)) {
    if (val == NULL || *val == '\0')
      return usage(err, errlen, "--pin needs SHA256:... (fsd --fingerprint)");
    o->pin = val;
  } else if (long_with_value(a, "--ca", argc, argv, i, &val)) {
    if (val == NULL || *val == '\0')
      return usage(err, errlen, "--ca needs a file of CA certificates");
    o->ca = val;
  } else if (long_with_value(a, "--server", argc, argv, i, &val) ||
             strncmp(a, "-s", 2) == 0) {
    if (a[1] == 's')
      val = a[2] ? a + 2 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (val == NULL || *val == '\0')
      return usage(err, errlen, "-s needs HOST:PORT");
    o->server = val;
  } else
    return 0;
  return 1;
}

/* Whether a command option takes the next word as its value (-o PATH,
 * --as NAME, ...), so that word is never read as a global option. */
static int takes_next_word(const char *a) {
  if (a[1] == '-')
    return strcmp(a, "--output") == 0 || strcmp(a, "--as") == 0 ||
           strcmp(a, "--retry") == 0;
  const char *o = strchr(a, 'o');
  return o != NULL && o[1] == '\0';
}

/* Takes the global options that follow the command out of argv[first..]
 * (`fsc get big.iso -q`), keeping the rest in order; returns the new argc,
 * or FSC_EXIT_USAGE as a negative number. */
static int take_late_globals(int argc, char **argv, int first,
                             struct fsc_opts *o, char *err, size_t errlen) {
  int n = first, only_operands = 0;
  for (int j = first; j < argc; j++) {
    const char *a = argv[j];
    if (!only_operands && strcmp(a, "--") == 0)
      only_operands = 1;
    else if (!only_operands && a[0] == '-' && a[1] != '\0') {
      int k = j;
      int r = take_global(argc, argv, &k, o, err, errlen);
      if (r == FSC_EXIT_USAGE)
        return -FSC_EXIT_USAGE;
      if (r == 1) {
        j = k;
        continue;
      }
      if (takes_next_word(a) && j + 1 < argc)
        argv[n++] = argv[j++];
    }
    argv[n++] = argv[j];
  }
  return n;
}

int fsc_parse_args(int argc, char **argv, const char *env_server,
                   struct fsc_opts *o, char *err, size_t errlen) {
  int i, r;
  memset(o, 0, sizeof *o);
  o->server = (env_server && *env_server) ? env_server : FSC_DEFAULT_SERVER;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0)
      break;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
      o->help = 1;
    else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0)
      o->version = 1;
    else if ((r = take_global(argc, argv, &i, o, err, errlen)) != 1)
      return r != 0 ? r
                    : usage(err, errlen, "unknown option '%s' (try --help)", a);
  }
  if (o->help || o->version)
    return 0; /* whatever the address: help must always work */
  if (i >= argc)
    return usage(err, errlen, "missing command (try --help)");
  argc = take_late_globals(argc, argv, i + 1, o, err, errlen);
  if (argc < 0)
    return -argc;
  int rc = fsc_parse_cmd(argc - i, argv + i, 0, &o->cmd, err, errlen);
  if (rc != 0 || o->cmd.help)
    return rc;
  char one[FSC_SERVER_MAX];
  if (fsc_server_pick(o->server, 0, one, sizeof one) < 0)
    return usage(err, errlen,
                 "bad server address '%s' (want HOST:PORT or [ADDR]:PORT, "
                 "comma separated)",
                 o->server);
  return 0;
}

int fsc_server_pick(const char *list, unsigned i, char *out, size_t cap) {
  char host[FSC_HOST_MAX];
  int n = 0, port;
  const char *p = list;
  /* Count and check every entry, so that a bad one is found at once. */
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 || len >= cap || len >= FSC_SERVER_MAX)
      return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    if (fsc_parse_hostport(out, host, sizeof host, &port) != 0)
      return -1;
    n++;
    if (end == NULL)
      break;
    p = end + 1;
  }
  i %= (unsigned)n;
  p = list;
  while (i-- > 0)
    p = strchr(p, ',') + 1;
  size_t len = strcspn(p, ",");
  memcpy(out, p, len);
  out[len] = '\0';
  return n;
}

int fsc_split_line(char *line, char **argv, int max) {
  int n = 0;
  char *r = line, *w = line;
  for (;;) {
    while (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r')
      r++;
    if (*r == '\0')
      return n;
    if (n >= max)
      return -1;
    argv[n++] = w;
    /* Read one word; w never passes r, so unquoting in place is safe. */
    while (*r && *r != ' ' && *r != '\t' && *r != '\n' && *r != '\r') {
      if (*r == '\'') {
        r++;
        while (*r && *r != '\'')
          *w++ = *r++;
        if (*r != '\'')
          return -1;
        r++;
      } else if (*r == '"') {
        r++;
        while (*r && *r != '"') {
          if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
            r++;
          *w++ = *r++;
        }
        if (*r != '"')
          return -1;
        r++;
      } else if (*r == '\\' && r[1] != '\0') {
        r++;
        *w++ = *r++;
      } else
        *w++ = *r++;
    }
    int end = *r == '\0';
    *w++ = '\0';
    if (end)
      return n;
    r++;
  }
}

int fsc_parse_hostport(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon, *h = s;
  size_t hl;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':')
      return -1;
    h = s + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL)
      return -1;
    hl = (size_t)(colon - s);
    /* A bare IPv6 address would be ambiguous: ask for brackets. */
    if (memchr(s, ':', hl) != NULL)
      return -1;
  }
  if (hl == 0 || hl >= hostlen)
    return -1;
  const char *p = colon + 1;
  if (*p == '\0')
    return -1;
  long v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (*p - '0');
    if (v > 65535)
      return -1;
  }
  if (v < 1)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)v;
  return 0;
}
