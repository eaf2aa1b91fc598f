/* fsd: serves one folder over the fsproto protocol. Command line parsing;
 * the server itself is in server.c. */
#include <fsproto/fsproto.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "authsrv.h"
#ifdef FSD_HAVE_CLUSTER
#include "cluster.h"
#endif
#include "log.h"
#include "server.h"
#include "space.h"
#include "tls.h"
#include "users.h"

static const char usage_text[] =
    "usage: fsd [--root DIR] [--listen HOST:PORT] [--max-clients N]\n"
    "           [--max-clients-per-ip N] [--idle-timeout SECONDS]\n"
    "           [--min-free SIZE] [--read-only] [--no-fsync]\n"
    "           [--tls] [--allow-plaintext] [--state-dir DIR]\n"
    "           [--tls-cert FILE --tls-key FILE] [--fingerprint]\n"
    "           [--users FILE] [--max-unauth N] [--auth-timeout SECONDS]\n"
    "           [--anonymous read|rw] [--access-log FILE|-]\n"
    "           [--log-level error|warn|info|debug] [--help] [--version]\n"
    "           [--cluster nats://HOST:PORT[,...] [--node NAME]\n"
    "            [--cluster-creds FILE] [--cluster-ca FILE]\n"
    "            [--cluster-stream NAME] [--cluster-retention SECONDS]\n"
    "            [--cluster-replicas N]]\n"
    "\n"
    "Serves the regular files of DIR (default ./files, created if missing)\n"
    "over the fsproto protocol.\n"
    "\n"
    "  --root DIR            folder to serve\n"
    "  --listen HOST:PORT    address to listen on (default 127.0.0.1:7878;\n"
    "                        IPv6 as [::1]:7878; port 0 picks a free port)\n"
    "  --max-clients N       clients served at once (default 1024)\n"
    "  --max-clients-per-ip N\n"
    "                        connections from one address (default 64)\n"
    "  --idle-timeout SECS   close connections idle this long, and end\n"
    "                        transfers that move no byte this long\n"
    "                        (default 300, 0 never)\n"
    "  --min-free SIZE       free disk space uploads in progress never take\n"
    "                        (like 512M or 2G; default 1% of the file\n"
    "                        system or 256M, whichever is larger)\n"
    "  --read-only           refuse uploads and deletions\n"
    "  --no-fsync            commit uploads without waiting for the disk:\n"
    "                        faster where the disk is slower than the\n"
    "                        network, still atomic, but an upload confirmed\n"
    "                        just before a power failure may be lost\n"
    "                        (a crash of fsd alone loses nothing)\n"
    "  --tls                 TLS 1.3 on a loopback listener too (any other\n"
    "                        listener is TLS already); plaintext clients get\n"
    "                        an error saying TLS is required\n"
    "  --allow-plaintext     serve plaintext clients beside TLS ones on the\n"
    "                        same port (warned about at start)\n"
    "  --state-dir DIR       where fsd makes and keeps its TLS key (default\n"
    "                        $STATE_DIRECTORY, else $XDG_STATE_HOME/fsd, else\n"
    "                        ~/.local/state/fsd)\n"
    "  --tls-cert FILE       serve this certificate (chain, PEM) instead ...\n"
    "  --tls-key FILE        ... with this private key (PEM, mode 0600)\n"
    "  --fingerprint         print the TLS key's fingerprint and exit\n"
    "                        (SIGHUP reloads the certificate and key)\n"
    "  --users FILE          only users in FILE may connect, each with its\n"
    "                        rights: lines 'NAME RIGHTS KEY', RIGHTS from\n"
    "                        read,write,delete,notice, KEY an ssh-ed25519\n"
    "                        public key (fsc keygen prints the line);\n"
    "                        SIGHUP reads it again\n"
    "  --max-unauth N        connections allowed to wait for authentication\n"
    "                        (default 64; half of them from one address)\n"
    "  --auth-timeout SECS   time a client has to authenticate (default 10)\n"
    "  --anonymous read|rw   serve a non-loopback listener without --users:\n"
    "                        read (a public read-only share) or rw (anyone\n"
    "                        may change files); without --users and this, fsd\n"
    "                        listens only on loopback\n"
    "  --access-log FILE|-   one line per finished request (time, peer, user,\n"
    "                        operation, file, bytes, status, duration)\n"
    "  --log-level LEVEL     error, warn, info (default) or debug\n";

/* Split from usage_text: ISO C promises string literals of 4,095 bytes. */
static const char usage_cluster[] =
    "  --cluster URLS        serve DIR together with other fsd: events go\n"
    "                        through this NATS JetStream (comma separated\n"
    "                        nats:// or tls:// URLs of one NATS cluster)\n"
    "  --node NAME           this server's name in the cluster (default:\n"
    "                        the host name)\n"
    "  --cluster-creds FILE  NATS credentials file (JWT and NKey seed)\n"
    "  --cluster-ca FILE     CA certificates to verify tls:// NATS servers\n"
    "  --cluster-stream NAME JetStream stream of the events (default\n"
    "                        FSD_EVENTS; locks in NAME_LOCKS)\n"
    "  --cluster-retention SECONDS\n"
    "                        events older than this are dropped; watchers\n"
    "                        further behind RESYNC (default 0: kept)\n"
    "  --cluster-replicas N  copies of the stream in the NATS cluster\n"
    "                        (default 1; 3 survives the loss of one)\n"
    "  --help                show this help\n"
    "  --version             show the version\n";

static int usage_error(const char *msg, const char *arg) {
  fprintf(stderr, "fsd: %s%s%s (see fsd --help)\n", msg, arg ? ": " : "",
          arg ? arg : "");
  return 2;
}

static int parse_uint(const char *s, unsigned long max, unsigned *out) {
  char *end;
  unsigned long v;

  if (*s < '0' || *s > '9')
    return -1;
  v = strtoul(s, &end, 10);
  if (*end != '\0' || v > max)
    return -1;
  *out = (unsigned)v;
  return 0;
}

/* getopt values of the cluster options: past any character, so that
 * short option letters stay free. */
enum {
  OPT_CLUSTER = 0x100,
  OPT_NODE,
  OPT_CREDS,
  OPT_CA,
  OPT_STREAM,
  OPT_RETENTION,
  OPT_REPLICAS,
};

/* The --cluster options as given. */
struct cluster_args {
  const char *urls, *node, *creds, *ca, *stream;
  unsigned retention, replicas;
  int others; /* a --cluster-* or --node option was given */
};

static int cluster_option(struct cluster_args *cl, int opt, const char *arg) {
  cl->others |= opt != OPT_CLUSTER;
  switch (opt) {
  case OPT_CLUSTER:
    if (arg[0] == '\0')
      return usage_error("--cluster needs nats://HOST:PORT", NULL);
    cl->urls = arg;
    return 0;
  case OPT_NODE:
    if (arg[0] == '\0' || strlen(arg) > 64)
      return usage_error("--node needs a name of 1 to 64 bytes", arg);
    cl->node = arg;
    return 0;
  case OPT_CREDS:
    cl->creds = arg;
    return 0;
  case OPT_CA:
    cl->ca = arg;
    return 0;
  case OPT_STREAM:
    /* JetStream stream names: no dots, spaces or wildcards. */
    if (arg[0] == '\0' || strlen(arg) > 64 ||
        strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789_-") != strlen(arg))
      return usage_error("--cluster-stream needs letters, digits, _ or -", arg);
    cl->stream = arg;
    return 0;
  case OPT_RETENTION:
    if (parse_uint(arg, 86400u * 36500u, &cl->retention) != 0)
      return usage_error("--cluster-retention needs a number of seconds", arg);
    return 0;
  default:
    if (parse_uint(arg, 5, &cl->replicas) != 0 || cl->replicas == 0)
      return usage_error("--cluster-replicas needs a number from 1 to 5", arg);
    return 0;
  }
}

/* Checks the --cluster options and points cfg at them. */
static int cluster_config(const struct cluster_args *cl,
                          struct fsd_config *cfg) {
#ifdef FSD_HAVE_CLUSTER
  static struct fsd_cluster_config cc;
  static char host[65];

  if (cl->urls == NULL)
    return cl->others
               ? usage_error("--node and --cluster-* need --cluster", NULL)
               : 0;
  cc.urls = cl->urls;
  cc.node = cl->node;
  if (cc.node == NULL) {
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
      snprintf(host, sizeof(host), "fsd-%ld", (long)getpid());
    cc.node = host;
  }
  cc.creds = cl->creds;
  cc.ca = cl->ca;
  cc.stream = cl->stream != NULL ? cl->stream : FSD_CLUSTER_STREAM;
  cc.retention_s = cl->retention;
  cc.replicas = cl->replicas != 0 ? cl->replicas : 1;
  cfg->cluster = &cc;
  return 0;
#else
  (void)cfg;
  if (cl->urls != NULL || cl->others)
    return usage_error("this fsd was built without cluster support (libnats)",
                       NULL);
  return 0;
#endif
}

/* What the command line says, gathered by take_option(). */
struct cmdline {
  struct fsd_config cfg;
  struct cluster_args cl;
  const char *listen;    /* --listen, parsed at the end */
  const char *anonymous; /* --anonymous read|rw, or NULL */
  int fingerprint;       /* --fingerprint: print it and exit */
};

/* The options about users, logs and the cluster, and --help/--version;
 * same returns as take_option(). */
static int take_option2(struct cmdline *c, int opt, const char *arg,
                        const char *word) {
  unsigned secs;
  int level, r;

  switch (opt) {
  case 'u':
    if (arg[0] == '\0')
      return usage_error("--users needs a file", NULL);
    c->cfg.users = arg;
    break;
  case 'U':
    if (parse_uint(arg, 1000000, &c->cfg.max_unauth) != 0 ||
        c->cfg.max_unauth == 0)
      return usage_error("--max-unauth needs a number from 1", arg);
    break;
  case 'A':
    if (parse_uint(arg, 3600, &secs) != 0 || secs == 0)
      return usage_error("--auth-timeout needs 1 to 3600 seconds", arg);
    c->cfg.auth_timeout_ms = secs * 1000u;
    break;
  case 'a':
    if (strcmp(arg, "read") != 0 && strcmp(arg, "rw") != 0)
      return usage_error("--anonymous is read or rw", arg);
    c->anonymous = arg;
    break;
  case 'g':
    if (arg[0] == '\0')
      return usage_error("--access-log needs a file or -", NULL);
    c->cfg.access_log = arg;
    break;
  case 'L':
    level = fsd_log_parse_level(arg);
    if (level < 0)
      return usage_error("--log-level is error, warn, info or debug", arg);
    fsd_log_threshold = level;
    break;
  case 'h':
    fputs(usage_text, stdout);
    fputs(usage_cluster, stdout);
    return 0;
  case 'V':
    /* fsd is built with the library of its own release. */
    printf("fsd %s (libfsproto %s, protocol %u)\n", FSP_VERSION_STRING,
           fsp_version_string(), FSP_HELLO_VERSION);
    return 0;
  case OPT_CLUSTER:
  case OPT_NODE:
  case OPT_CREDS:
  case OPT_CA:
  case OPT_STREAM:
  case OPT_RETENTION:
  case OPT_REPLICAS:
    r = cluster_option(&c->cl, opt, arg);
    if (r != 0)
      return r;
    break;
  default:
    return usage_error("unknown or incomplete option", word);
  }
  return -1;
}

/* Takes one option of getopt_long (its value arg; word is the option as
 * written, for messages) into c. Returns -1 to go on, or the exit status
 * (after --help, --version or a usage error). */
static int take_option(struct cmdline *c, int opt, const char *arg,
                       const char *word) {
  switch (opt) {
  case 'r':
    if (arg[0] == '\0')
      return usage_error("--root needs a folder", NULL);
    c->cfg.root = arg;
    break;
  case 'l':
    c->listen = arg;
    break;
  case 'm':
    if (parse_uint(arg, 1000000, &c->cfg.max_clients) != 0 ||
        c->cfg.max_clients == 0)
      return usage_error("--max-clients needs a number from 1", arg);
    break;
  case 'p':
    if (parse_uint(arg, 1000000, &c->cfg.max_per_ip) != 0 ||
        c->cfg.max_per_ip == 0)
      return usage_error("--max-clients-per-ip needs a number from 1", arg);
    break;
  case 'f':
    if (fsd_parse_size(arg, &c->cfg.min_free) != 0)
      return usage_error("--min-free needs a size like 512M or 2G", arg);
    c->cfg.min_free_set = 1;
    break;
  case 't':
    if (parse_uint(arg, 86400 * 365, &c->cfg.idle_timeout) != 0)
      return usage_error("--idle-timeout needs a number of seconds", arg);
    break;
  case 'R':
    c->cfg.read_only = 1;
    break;
  case 'F':
    c->cfg.no_fsync = 1;
    break;
  case 'T':
    c->cfg.tls = 1;
    break;
  case 'P':
    c->cfg.allow_plaintext = 1;
    break;
  case 'S':
    if (arg[0] == '\0')
      return usage_error("--state-dir needs a folder", NULL);
    c->cfg.state_dir = arg;
    break;
  case 'C':
    c->cfg.tls_cert = arg;
    break;
  case 'K':
    c->cfg.tls_key = arg;
    break;
  case 'G':
    c->fingerprint = 1;
    break;
  default:
    return take_option2(c, opt, arg, word);
  }
  return -1;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"root", required_argument, NULL, 'r'},
      {"listen", required_argument, NULL, 'l'},
      {"max-clients", required_argument, NULL, 'm'},
      {"max-clients-per-ip", required_argument, NULL, 'p'},
      {"min-free", required_argument, NULL, 'f'},
      {"idle-timeout", required_argument, NULL, 't'},
      {"read-only", no_argument, NULL, 'R'},
      {"no-fsync", no_argument, NULL, 'F'},
      {"tls", no_argument, NULL, 'T'},
      {"allow-plaintext", no_argument, NULL, 'P'},
      {"state-dir", required_argument, NULL, 'S'},
      {"tls-cert", required_argument, NULL, 'C'},
      {"tls-key", required_argument, NULL, 'K'},
      {"fingerprint", no_argument, NULL, 'G'},
      {"users", required_argument, NULL, 'u'},
      {"max-unauth", required_argument, NULL, 'U'},
      {"auth-timeout", required_argument, NULL, 'A'},
      {"anonymous", required_argument, NULL, 'a'},
      {"access-log", required_argument, NULL, 'g'},
      {"log-level", required_argument, NULL, 'L'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {"cluster", required_argument, NULL, OPT_CLUSTER},
      {"node", required_argument, NULL, OPT_NODE},
      {"cluster-creds", required_argument, NULL, OPT_CREDS},
      {"cluster-ca", required_argument, NULL, OPT_CA},
      {"cluster-stream", required_argument, NULL, OPT_STREAM},
      {"cluster-retention", required_argument, NULL, OPT_RETENTION},
      {"cluster-replicas", required_argument, NULL, OPT_REPLICAS},
      {NULL, 0, NULL, 0},
  };
  static struct cmdline c; /* zeroed */
  struct fsd_config *cfg = &c.cfg;
  int opt, r;

  c.listen = "127.0.0.1:7878";
  cfg->root = "files";
  cfg->max_clients = 1024;
  cfg->max_per_ip = 64;
  cfg->idle_timeout = 300;
  cfg->max_unauth = FSD_MAX_UNAUTH;
  cfg->auth_timeout_ms = FSD_AUTH_DEADLINE_MS;
  cfg->anon_rights = FSD_RIGHTS_ALL;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    r = take_option(&c, opt, optarg, argv[optind - 1]);
    if (r >= 0)
      return r;
  }
  if (optind < argc)
    return usage_error("unexpected argument", argv[optind]);
  if (fsd_parse_listen(c.listen, &cfg->addr) != 0)
    return usage_error("--listen needs HOST:PORT (IPv6 as [ADDR]:PORT)",
                       c.listen);
  if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
    return usage_error("--tls-cert and --tls-key go together", NULL);
  r = cluster_config(&c.cl, cfg);
  if (r != 0)
    return r;
  if (c.fingerprint)
    return fsd_tls_print_fingerprint(cfg);
  if (c.anonymous != NULL && cfg->users != NULL)
    return usage_error("--anonymous and --users exclude each other", NULL);
  cfg->anonymous = c.anonymous != NULL;
  if (c.anonymous != NULL && strcmp(c.anonymous, "read") == 0) {
    cfg->read_only = 1;
    cfg->anon_rights = FSD_RIGHT_READ;
  }
  /* Open to anyone who can connect is fine on loopback (only this machine's
   * users), not beyond it unless asked for. */
  /* (A socket from systemd replaces --listen: the server checks that one.) */
  if (cfg->users == NULL && c.anonymous == NULL &&
      getenv("LISTEN_FDS") == NULL && !fsd_tls_is_loopback(&cfg->addr))
    return usage_error(
        "a listener beyond loopback needs --users FILE (or --anonymous "
        "read|rw to let anyone in on purpose)",
        c.listen);
  r = fsd_server_run(cfg);
  return r == 0 ? 0 : r == FSD_RUN_BADCONFIG ? 2 : 1;
}
