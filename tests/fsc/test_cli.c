/* Tests of fsc's argument parsing (client/cli.c), and of the choice
 * between plaintext and TLS that the server address leads to
 * (client/tls.c). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "suites.h"
#include "tls.h"

/* Parses a NULL-terminated list of words as a command line. The words are
 * copied into static storage because the parser keeps pointers to them and
 * reorders operands in place. */
static char words[32][64];
static char *argvv[33];

static int parse(struct fsc_opts *o, const char *env, char *err,
                 const char *first, ...) {
  va_list ap;
  int argc = 0;
  va_start(ap, first);
  for (const char *w = first; w != NULL; w = va_arg(ap, const char *)) {
    strcpy(words[argc], w);
    argvv[argc] = words[argc];
    argc++;
  }
  va_end(ap);
  argvv[argc] = NULL;
  return fsc_parse_args(argc, argvv, env, o, err, 256);
}

START_TEST(test_cli_default_server_and_env) {
  struct fsc_opts o;
  char err[256];
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", NULL), 0);
  ck_assert_str_eq(o.server, "127.0.0.1:7878");
  ck_assert_int_eq(o.cmd.kind, FSC_CMD_LS);
  ck_assert_int_eq(parse(&o, "example:9", err, "fsc", "ls", NULL), 0);
  ck_assert_str_eq(o.server, "example:9");
  ck_assert_int_eq(
      parse(&o, "example:9", err, "fsc", "-s", "[::1]:7878", "ls", NULL), 0);
  ck_assert_str_eq(o.server, "[::1]:7878");
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "--server=h:1", "-q", "ls", NULL), 0);
  ck_assert_str_eq(o.server, "h:1");
  ck_assert_int_eq(o.quiet, 1);
}
END_TEST

START_TEST(test_cli_usage_errors) {
  struct fsc_opts o;
  char err[256];
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", NULL), FSC_EXIT_USAGE);
  ck_assert_ptr_nonnull(strstr(err, "missing command"));
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "frob", NULL), FSC_EXIT_USAGE);
  ck_assert_ptr_nonnull(strstr(err, "frob"));
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "size", NULL), FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "-x", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_ptr_nonnull(strstr(err, "-x"));
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "a", "extra", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "-s", "nocolon", "ls", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "put", "-", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "put", "a", "b", "--as", "c", NULL),
      FSC_EXIT_USAGE);
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "get", "a", "b", "-o", "-", NULL),
      FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "get", "a", "-o", NULL),
                   FSC_EXIT_USAGE);
  /* The shell's own commands are not commands of the program. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "quit", NULL), FSC_EXIT_USAGE);
}
END_TEST

START_TEST(test_cli_options_anywhere) {
  struct fsc_opts o;
  char err[256];
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "get", "a", "-o", "dir", "b", "-c", NULL), 0);
  ck_assert_int_eq(o.cmd.kind, FSC_CMD_GET);
  ck_assert_str_eq(o.cmd.out, "dir");
  ck_assert_int_eq(o.cmd.resume, 1);
  ck_assert_int_eq(o.cmd.nargs, 2);
  ck_assert_str_eq(o.cmd.args[0], "a");
  ck_assert_str_eq(o.cmd.args[1], "b");

  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "-lh", "--json", NULL), 0);
  ck_assert_int_eq(o.cmd.long_fmt, 1);
  ck_assert_int_eq(o.cmd.human, 1);
  ck_assert_int_eq(o.cmd.json, 1);

  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "put", "-", "--as=x.bin",
                         "--no-clobber", NULL),
                   0);
  ck_assert_str_eq(o.cmd.as, "x.bin");
  ck_assert_int_eq(o.cmd.no_clobber, 1);
  ck_assert_int_eq(o.cmd.nargs, 1);
  ck_assert_str_eq(o.cmd.args[0], "-");

  /* After --, a name that looks like an option is an operand. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "rm", "--", "-l", NULL), 0);
  ck_assert_int_eq(o.cmd.nargs, 1);
  ck_assert_str_eq(o.cmd.args[0], "-l");

  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "get", "a", "-odir", NULL), 0);
  ck_assert_str_eq(o.cmd.out, "dir");
}
END_TEST

/* Global options after the command work as before it (`fsc get x -q`,
 * `fsc ls -s host:port`), a command option's value is never taken for one,
 * and after `--` nothing is an option. */
START_TEST(test_cli_global_options_after_command) {
  struct fsc_opts o;
  char err[256];
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "get", "big.iso", "-q", NULL),
                   0);
  ck_assert_int_eq(o.quiet, 1);
  ck_assert_int_eq(o.cmd.nargs, 1);
  ck_assert_str_eq(o.cmd.args[0], "big.iso");
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "-s", "h:1", "-l", NULL),
                   0);
  ck_assert_str_eq(o.server, "h:1");
  ck_assert_int_eq(o.cmd.long_fmt, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "put", "a", "--server=h:2",
                         "--tls", "--pin", "SHA256:x", "-u", "bob", NULL),
                   0);
  ck_assert_str_eq(o.server, "h:2");
  ck_assert_int_eq(o.tls, 1);
  ck_assert_str_eq(o.pin, "SHA256:x");
  ck_assert_str_eq(o.user, "bob");
  ck_assert_int_eq(o.cmd.nargs, 1);
  /* -o takes the next word, even one that looks like a global option. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "get", "x", "-o", "-q", NULL),
                   0);
  ck_assert_str_eq(o.cmd.out, "-q");
  ck_assert_int_eq(o.quiet, 0);
  /* After --, -q is a name. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "rm", "--", "-q", NULL), 0);
  ck_assert_int_eq(o.quiet, 0);
  ck_assert_str_eq(o.cmd.args[0], "-q");
  /* A global option's missing value names the option. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "-s", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_ptr_nonnull(strstr(err, "-s"));
}
END_TEST
START_TEST(test_cli_help_and_version) {
  struct fsc_opts o;
  char err[256];
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "--help", NULL), 0);
  ck_assert_int_eq(o.help, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "--version", NULL), 0);
  ck_assert_int_eq(o.version, 1);
  /* A broken FSC_SERVER does not stand in the way of help. */
  ck_assert_int_eq(parse(&o, "broken", err, "fsc", "--help", NULL), 0);
  ck_assert_int_eq(parse(&o, "broken", err, "fsc", "get", "--help", NULL), 0);
  ck_assert_int_eq(parse(&o, "broken", err, "fsc", "ls", NULL), FSC_EXIT_USAGE);
  ck_assert_ptr_nonnull(strstr(err, "broken"));
  /* A command's --help wins over its missing operands. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "get", "--help", NULL), 0);
  ck_assert_int_eq(o.cmd.kind, FSC_CMD_GET);
  ck_assert_int_eq(o.cmd.help, 1);
  const char *h = fsc_help_text(FSC_CMD_NONE);
  ck_assert_ptr_nonnull(strstr(h, "3    cannot connect"));
  ck_assert_ptr_nonnull(strstr(h, "2    usage error"));
  ck_assert_ptr_nonnull(strstr(fsc_help_text(FSC_CMD_GET), "--continue"));
  ck_assert_str_eq(fsc_cmd_name(FSC_CMD_ANNOUNCE), "announce");
}
END_TEST

START_TEST(test_cli_shell_commands) {
  struct fsc_cmd c;
  char err[256];
  char line[] = "help get";
  char *av[8];
  ck_assert_int_eq(fsc_split_line(line, av, 8), 2);
  ck_assert_int_eq(fsc_parse_cmd(2, av, 1, &c, err, sizeof err), 0);
  ck_assert_int_eq(c.kind, FSC_CMD_HELP);
  char line2[] = "quit";
  ck_assert_int_eq(fsc_split_line(line2, av, 8), 1);
  ck_assert_int_eq(fsc_parse_cmd(1, av, 1, &c, err, sizeof err), 0);
  ck_assert_int_eq(c.kind, FSC_CMD_QUIT);
  /* No shell inside the shell. */
  char line3[] = "shell";
  ck_assert_int_eq(fsc_split_line(line3, av, 8), 1);
  ck_assert_int_eq(fsc_parse_cmd(1, av, 1, &c, err, sizeof err),
                   FSC_EXIT_USAGE);
}
END_TEST

START_TEST(test_cli_split_line_quotes) {
  char line[] = "  put 'my file'  \"a \\\"b\\\"\" c\\ d  ";
  char *av[8];
  ck_assert_int_eq(fsc_split_line(line, av, 8), 4);
  ck_assert_str_eq(av[0], "put");
  ck_assert_str_eq(av[1], "my file");
  ck_assert_str_eq(av[2], "a \"b\"");
  ck_assert_str_eq(av[3], "c d");
  char bad[] = "put 'open";
  ck_assert_int_eq(fsc_split_line(bad, av, 8), -1);
  char many[] = "a b c";
  ck_assert_int_eq(fsc_split_line(many, av, 2), -1);
  char empty[] = "   ";
  ck_assert_int_eq(fsc_split_line(empty, av, 8), 0);
}
END_TEST

START_TEST(test_cli_hostport) {
  char host[64];
  int port;
  ck_assert_int_eq(fsc_parse_hostport("127.0.0.1:7878", host, 64, &port), 0);
  ck_assert_str_eq(host, "127.0.0.1");
  ck_assert_int_eq(port, 7878);
  ck_assert_int_eq(fsc_parse_hostport("[::1]:9", host, 64, &port), 0);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(port, 9);
  ck_assert_int_eq(fsc_parse_hostport("::1:9", host, 64, &port), -1);
  ck_assert_int_eq(fsc_parse_hostport("h:0", host, 64, &port), -1);
  ck_assert_int_eq(fsc_parse_hostport("h:65536", host, 64, &port), -1);
  ck_assert_int_eq(fsc_parse_hostport("h:", host, 64, &port), -1);
  ck_assert_int_eq(fsc_parse_hostport(":80", host, 64, &port), -1);
  ck_assert_int_eq(fsc_parse_hostport("h:8x", host, 64, &port), -1);
  ck_assert_int_eq(fsc_parse_hostport("[::1]9", host, 64, &port), -1);
}
END_TEST

/* TLS for every server that is not loopback, and for loopback with --tls
 * or --pin (protocol.md section 10); only a literal loopback address or
 * "localhost" may go plaintext. */
START_TEST(test_cli_tls_unless_loopback) {
  static const struct {
    const char *server, *opt, *val;
    int tls;
  } t[] = {
      {"127.0.0.1:7878", NULL, NULL, 0},
      {"127.200.3.4:1", NULL, NULL, 0},
      {"localhost:7878", NULL, NULL, 0},
      {"[::1]:7878", NULL, NULL, 0},
      {"127.0.0.1:7878", "--tls", NULL, 1},
      {"127.0.0.1:7878", "--pin",
       "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao", 1},
      {"10.0.0.1:7878", NULL, NULL, 1},
      {"128.0.0.1:7878", NULL, NULL, 1},
      {"[2001:db8::1]:7878", NULL, NULL, 1},
      {"[::ffff:127.0.0.1]:7878", NULL, NULL, 1},
      {"fsd.example:7878", NULL, NULL, 1},
      {"localhost.example:7878", NULL, NULL, 1},
  };
  char err[256], cfg[] = "/tmp/fsc-cli-XXXXXX";

  /* Trust on first use reads known_servers: an empty folder of our own. */
  ck_assert_ptr_nonnull(mkdtemp(cfg));
  setenv("XDG_CONFIG_HOME", cfg, 1);
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    struct fsc_opts o;
    struct fsc_conn c;
    /* Options go after the command; the list ends at the first NULL. */
    int rc = parse(&o, NULL, err, "fsc", "-s", t[i].server, "ls", t[i].opt,
                   t[i].val, NULL);
    ck_assert_msg(rc == 0, "%s: %s", t[i].server, err);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(fsc_tls_setup(&c, &o, err, sizeof(err)), 0);
    ck_assert_msg((c.transport != NULL) == t[i].tls, "%s %s: TLS %d expected",
                  t[i].server, t[i].opt ? t[i].opt : "", t[i].tls);
    fsc_tls_release(&c);
  }
  unsetenv("XDG_CONFIG_HOME");
  ck_assert_int_eq(rmdir(cfg), 0);
}
END_TEST

/* -s a:1,b:2: the servers of one cluster, tried in turn. */
START_TEST(test_cli_server_list) {
  struct fsc_opts o;
  char err[256], one[FSC_SERVER_MAX];
  ck_assert_int_eq(fsc_server_pick("a:1,[::1]:2,c:3", 0, one, sizeof one), 3);
  ck_assert_str_eq(one, "a:1");
  ck_assert_int_eq(fsc_server_pick("a:1,[::1]:2,c:3", 1, one, sizeof one), 3);
  ck_assert_str_eq(one, "[::1]:2");
  ck_assert_int_eq(fsc_server_pick("a:1,[::1]:2,c:3", 5, one, sizeof one), 3);
  ck_assert_str_eq(one, "c:3");
  ck_assert_int_eq(fsc_server_pick("a:1,[::1]:2,c:3", 6, one, sizeof one), 3);
  ck_assert_str_eq(one, "a:1");
  ck_assert_int_eq(fsc_server_pick("h:7878", 1, one, sizeof one), 1);
  ck_assert_str_eq(one, "h:7878");
  ck_assert_int_eq(fsc_server_pick("a:1,", 0, one, sizeof one), -1);
  ck_assert_int_eq(fsc_server_pick(",a:1", 0, one, sizeof one), -1);
  ck_assert_int_eq(fsc_server_pick("a:1,b", 0, one, sizeof one), -1);
  ck_assert_int_eq(fsc_server_pick("a:1,bb:2", 0, one, 4), -1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "-s", "a:1,b:2", "ls", NULL), 0);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "-s", "a:1,b", "ls", NULL), 2);
  ck_assert_ptr_nonnull(strstr(err, "bad server address"));
}
END_TEST

START_TEST(test_cli_watch_retry) {
  struct fsc_opts o;
  char err[256];
  /* Reconnect forever unless told otherwise. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "watch", NULL), 0);
  ck_assert_int_eq(o.cmd.retry, -1);
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "watch", "--retry", "5", "--json", NULL), 0);
  ck_assert_int_eq(o.cmd.retry, 5);
  ck_assert_int_eq(o.cmd.json, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "watch", "--retry=0", NULL), 0);
  ck_assert_int_eq(o.cmd.retry, 0);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "watch", "--retry", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_ptr_nonnull(strstr(err, "--retry"));
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "watch", "--retry", "-1", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "watch", "--retry=3x", NULL),
                   FSC_EXIT_USAGE);
  /* Only watch reconnects. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "--retry", "1", NULL),
                   FSC_EXIT_USAGE);
}
END_TEST

/* Folders (protocol version 3): the new commands and options. */
START_TEST(test_cli_folder_commands) {
  struct fsc_opts o;
  char err[256];
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "-lR", "photos", NULL), 0);
  ck_assert_int_eq(o.cmd.recursive, 1);
  ck_assert_int_eq(o.cmd.long_fmt, 1);
  ck_assert_int_eq(o.cmd.nargs, 1);
  ck_assert_str_eq(o.cmd.args[0], "photos");
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "ls", "-r", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "mkdir", "-p", "a/b", NULL), 0);
  ck_assert_int_eq(o.cmd.kind, FSC_CMD_MKDIR);
  ck_assert_int_eq(o.cmd.parents, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "mkdir", NULL), FSC_EXIT_USAGE);
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "mv", "a", "b/c", "--no-clobber", NULL), 0);
  ck_assert_int_eq(o.cmd.kind, FSC_CMD_MV);
  ck_assert_int_eq(o.cmd.no_clobber, 1);
  ck_assert_int_eq(o.cmd.nargs, 2);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "mv", "a", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "mv", "a", "b", "c", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "rm", "-r", "old", NULL), 0);
  ck_assert_int_eq(o.cmd.recursive, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "put", "--recursive", "d",
                         "--as", "x/y", NULL),
                   0);
  ck_assert_int_eq(o.cmd.recursive, 1);
  ck_assert_str_eq(o.cmd.as, "x/y");
  /* put -c: files already on the server whole are not sent again. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "put", "-rc", "d", NULL), 0);
  ck_assert_int_eq(o.cmd.recursive, 1);
  ck_assert_int_eq(o.cmd.resume, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "put", "a", "--continue", NULL),
                   0);
  ck_assert_int_eq(o.cmd.resume, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "put", "-r", "-", NULL),
                   FSC_EXIT_USAGE);
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "get", "-r", "p", "-o", "dl", NULL), 0);
  ck_assert_int_eq(o.cmd.recursive, 1);
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "get", "-r", "p", "-o", "-", NULL),
      FSC_EXIT_USAGE);
  /* get -r -c: files already there whole are kept, partial copies
   * resumed. */
  ck_assert_int_eq(
      parse(&o, NULL, err, "fsc", "get", "-r", "p", "-c", "-o", "dl", NULL), 0);
  ck_assert_int_eq(o.cmd.recursive, 1);
  ck_assert_int_eq(o.cmd.resume, 1);
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "watch", "photos", NULL), 0);
  ck_assert_int_eq(o.cmd.nargs, 1);
  /* cd and pwd belong to the shell. */
  ck_assert_int_eq(parse(&o, NULL, err, "fsc", "cd", "x", NULL),
                   FSC_EXIT_USAGE);
  struct fsc_cmd c;
  char *w[] = {"cd", "photos", NULL};
  ck_assert_int_eq(fsc_parse_cmd(2, w, 1, &c, err, 256), 0);
  ck_assert_int_eq(c.kind, FSC_CMD_CD);
  char *p[] = {"pwd", NULL};
  ck_assert_int_eq(fsc_parse_cmd(1, p, 1, &c, err, 256), 0);
  ck_assert_int_eq(c.kind, FSC_CMD_PWD);
}
END_TEST

Suite *cli_suite(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, test_cli_default_server_and_env);
  tcase_add_test(tc, test_cli_usage_errors);
  tcase_add_test(tc, test_cli_watch_retry);
  tcase_add_test(tc, test_cli_options_anywhere);
  tcase_add_test(tc, test_cli_global_options_after_command);
  tcase_add_test(tc, test_cli_help_and_version);
  tcase_add_test(tc, test_cli_shell_commands);
  tcase_add_test(tc, test_cli_split_line_quotes);
  tcase_add_test(tc, test_cli_hostport);
  tcase_add_test(tc, test_cli_tls_unless_loopback);
  tcase_add_test(tc, test_cli_server_list);
  tcase_add_test(tc, test_cli_folder_commands);
  suite_add_tcase(s, tc);
  return s;
}
