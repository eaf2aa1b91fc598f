/* fsc command line: parsing of the program's and each command's arguments,
 * and their help texts. Pure functions: nothing here touches the network, the
 * file system or the terminal, so the tests can drive it directly. */
#ifndef FSC_CLI_H
#define FSC_CLI_H

#include <stddef.h>

/* Exit codes, as listed by `fsc --help`. */
#define FSC_EXIT_OK 0     /* everything worked */
#define FSC_EXIT_FAIL 1   /* at least one operation failed */
#define FSC_EXIT_USAGE 2  /* bad command line */
#define FSC_EXIT_CONN 3   /* cannot connect, or the connection was lost */
#define FSC_EXIT_INTR 130 /* interrupted (Ctrl-C); 128 + N for signal N */

#define FSC_DEFAULT_SERVER "127.0.0.1:7878"

/* Room for the HOST of HOST:PORT: a DNS name is at most 253 bytes, and an
 * IPv6 literal far less. */
#define FSC_HOST_MAX 256

enum fsc_cmd_kind {
  FSC_CMD_NONE = 0,
  FSC_CMD_LS,
  FSC_CMD_SIZE,
  FSC_CMD_RM,
  FSC_CMD_GET,
  FSC_CMD_PUT,
  FSC_CMD_WATCH,
  FSC_CMD_ANNOUNCE,
  FSC_CMD_MKDIR, /* version 3 servers (folders) */
  FSC_CMD_MV,    /* version 3 servers (folders) */
  FSC_CMD_SHELL,
  FSC_CMD_KEYGEN, /* command line only: make this client's key */
  FSC_CMD_HELP,   /* shell only: `help [COMMAND]` */
  FSC_CMD_QUIT,   /* shell only: `quit`, `exit` */
  FSC_CMD_CD,     /* shell only: `cd [PATH]`, the shell's current folder */
  FSC_CMD_PWD,    /* shell only: `pwd` */
};

/* One parsed command. Strings point into the argv that was parsed. */
struct fsc_cmd {
  enum fsc_cmd_kind kind;
  int help;        /* --help: print this command's help and stop */
  int long_fmt;    /* ls -l */
  int human;       /* ls/size -h */
  int json;        /* ls/watch --json */
  int resume;      /* get -c/--continue */
  int no_clobber;  /* put, mv --no-clobber */
  int recursive;   /* ls -R, rm -r, get -r, put -r */
  int parents;     /* mkdir -p */
  int retry;       /* watch --retry N: failed reconnects in a row before
                      giving up; -1 (the default): no limit */
  const char *out; /* get -o PATH ("-" is stdout), or NULL */
  const char *as;  /* put --as NAME (a path), or NULL */
  char **args;     /* operands (NAMEs, FILEs, TEXT words, help topic) */
  int nargs;
};

/* The whole command line. */
struct fsc_opts {
  const char *server;   /* HOST:PORT from -s, else FSC_SERVER, else default */
  int quiet;            /* -q: no progress bar */
  const char *user;     /* -u NAME, or NULL ($FSC_USER, the login name) */
  const char *identity; /* -i FILE, or NULL ($FSC_IDENTITY, the default) */
  int help;             /* --help before any command */
  int version;          /* --version */
  int tls;              /* --tls: TLS even to a loopback server */
  const char *pin;      /* --pin SHA256:...: trust that server key only */
  const char *ca;       /* --ca FILE: trust certificates from these CAs */
  struct fsc_cmd cmd;
};

/* Parses argv[0..argc) (argv[0] is the program name). env_server is the value
 * of FSC_SERVER or NULL. On success fills o and returns 0; on a usage error
 * returns FSC_EXIT_USAGE and writes a one-line message (without "fsc: ") to
 * err[0..errlen). argv must outlive o. */
int fsc_parse_args(int argc, char **argv, const char *env_server,
                   struct fsc_opts *o, char *err, size_t errlen);

/* Parses one command, argv[0] being its name (as typed in the shell, where
 * `help` and `quit` are commands too when shell is non-zero). Returns 0 or
 * FSC_EXIT_USAGE with a message in err. */
int fsc_parse_cmd(int argc, char **argv, int shell, struct fsc_cmd *c,
                  char *err, size_t errlen);

/* Splits a shell line in place into words: blanks separate words, single
 * quotes keep everything literally, double quotes allow \" and \\, and a
 * backslash outside quotes escapes the next character. Fills argv with at
 * most max words. Returns the number of words, or -1 on an unterminated quote
 * or too many words. */
int fsc_split_line(char *line, char **argv, int max);

/* Splits "HOST:PORT" or "[V6ADDR]:PORT" into host (NUL-terminated, brackets
 * removed) and port. Returns 0, or -1 when the text is not of that form or
 * the port is not 1..65535. */
int fsc_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* The longest HOST:PORT of a server list: a host, brackets, colon, port. */
#define FSC_SERVER_MAX (FSC_HOST_MAX + 8)

/* Copies the i-th (modulo their number) of the comma-separated servers in
 * list ("a:7878,b:7878", servers of one cluster) into out[0..cap). Returns
 * the number of servers, or -1 when an entry is not HOST:PORT or does not
 * fit. */
int fsc_server_pick(const char *list, unsigned i, char *out, size_t cap);

/* Help text of the program (kind FSC_CMD_NONE) or of one command. Static. */
const char *fsc_help_text(enum fsc_cmd_kind kind);

/* The command's name ("ls", ...) or NULL. */
const char *fsc_cmd_name(enum fsc_cmd_kind kind);

#endif /* FSC_CLI_H */
