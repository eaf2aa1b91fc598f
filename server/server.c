/* fsd's start, stop and signals; see server.h. The pieces it wires
 * together: the listener (listener.c) accepts connections (conn.c), whose
 * sessions (session.c) hand file work to the host operations (host.c);
 * the watcher (watch.c) keeps the register current with other programs'
 * changes. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "alog.h"
#include "authsrv.h"
#ifdef FSD_HAVE_CLUSTER
#include "cluster.h"
#endif
#include "ctx.h"
#include "fsops.h"
#include "listener.h"
#include "log.h"
#include "op.h"
#include "put.h"
#include "sd.h"
#include "tls.h"
#include "watch.h"

#define SWEEP_MS 1000u        /* idle and flush checks */
#define RESCAN_MS 10000u      /* full rescan of the root */
#define STOP_TIMEOUT_MS 5000u /* shutdown waits this long for peers */
/* Threadpool threads: a few more than libuv's 4, so that fsyncs of
 * commits do not starve the reads of GETs. */
#define THREADPOOL_SIZE "8"

struct server {
  uv_loop_t *loop;
  struct fsd_ctx ctx;
  struct fsd_host host;
  struct fsd_net net;
  struct fsd_watch watch;
  struct fsd_listener listener;
  struct fsd_tlsd tls;
  struct fsd_authsrv auth;
  struct fsd_cluster *cluster; /* the shared event log, or NULL */
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t sweep;
  uv_timer_t stop_timer;
  uv_work_t look;      /* a look at the disk's free space */
  uint64_t look_mark;  /* fsd_space_mark() when it began */
  uint64_t look_avail; /* what it saw */
  int looking;         /* it runs */
  int stopping;
  int reloading; /* SIGHUP: rescanning, READY=1 not yet sent */
};

static void look_work(uv_work_t *w) {
  struct server *s = w->data;
  s->look_avail = fsd_free_bytes(s->host.rootfd);
}

static void after_look(uv_work_t *w, int status) {
  struct server *s = w->data;
  (void)status;
  s->looking = 0;
  fsd_space_seen(&s->host.space, s->look_avail, s->look_mark);
}

/* A look at the disk's free space on the threadpool, once per sweep: other
 * programs fill and free it too. */
static void space_look(struct server *s) {
  if (s->looking || s->stopping || s->ctx.read_only)
    return;
  s->look.data = s;
  s->look_mark = fsd_space_mark(&s->host.space);
  if (uv_queue_work(s->loop, &s->look, look_work, after_look) == 0)
    s->looking = 1;
}

/* Tells the service manager (NOTIFY_SOCKET, see sd.h) what fsd is doing.
 * A message it misses is no reason to stop serving: only logged. */
static void notify(const char *state) {
  int r = fsd_sd_notify(getenv("NOTIFY_SOCKET"), state);

  if (r != 0)
    fsd_warn("cannot notify the service manager: %s", uv_strerror(r));
}

static void on_sweep(uv_timer_t *t) {
  struct server *s = t->data;

  fsd_net_sweep(&s->net);
  fsd_put_sweep(&s->net);
  fsd_authsrv_sweep(&s->auth);
  fsd_watch_tick(&s->watch);
  space_look(s);
}

static void on_stop_timer(uv_timer_t *t) {
  struct server *s = t->data;

  fsd_warn("clients did not close in time, dropping them");
  fsd_net_drop_all(&s->net);
  uv_close((uv_handle_t *)t, NULL);
}

/* The last connection is gone while stopping: the stop timer has nothing
 * left to wait for. */
static void on_net_empty(struct fsd_net *net) {
  struct server *s = fsd_container_of(net, struct server, net);

  if (!uv_is_closing((uv_handle_t *)&s->stop_timer))
    uv_close((uv_handle_t *)&s->stop_timer, NULL);
}

static void on_reloaded(struct fsd_watch *w) {
  struct server *s = fsd_container_of(w, struct server, watch);

  s->reloading = 0;
  if (!s->stopping)
    notify("READY=1\nSTATUS=serving");
}

/* SIGHUP (systemctl reload): the users file is read again (--users), and
 * what else can be stale, the register, is rescanned now rather than at the
 * next periodic rescan. */
static void on_sighup(uv_signal_t *h, int signum) {
  struct server *s = h->data;

  (void)signum;
  if (s->stopping)
    return;
  fsd_authsrv_reload(&s->auth);
  if (s->reloading)
    return;
  s->reloading = 1;
  fsd_info("SIGHUP: rescanning the root");
  notify("RELOADING=1\nSTATUS=rescanning the root");
  fsd_watch_rescan(&s->watch, on_reloaded);
}

static void on_signal(uv_signal_t *h, int signum) {
  struct server *s = h->data;

  if (s->stopping)
    return;
  s->stopping = 1;
  fsd_info("%s: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
  notify("STOPPING=1\nSTATUS=shutting down");
  uv_close((uv_handle_t *)&s->listener.tcp, NULL);
  uv_close((uv_handle_t *)&s->sweep, NULL);
  /* Keep catching signals (a second Ctrl-C must not kill us half way), but
   * let the loop end without them. */
  uv_unref((uv_handle_t *)&s->sigint);
  uv_unref((uv_handle_t *)&s->sigterm);
  uv_close((uv_handle_t *)&s->sighup, NULL);
  fsd_watch_stop(&s->watch);
  fsd_tls_stop(&s->tls);
#ifdef FSD_HAVE_CLUSTER
  fsd_cluster_close(s->cluster);
#endif
  uv_timer_init(s->loop, &s->stop_timer);
  s->stop_timer.data = s;
  uv_timer_start(&s->stop_timer, on_stop_timer, STOP_TIMEOUT_MS, 0);
  fsd_net_shutdown(&s->net);
}

static void raise_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      fsd_warn("cannot raise the open file limit: %s", strerror(errno));
  }
}

/* The first scan of the tree, on the threadpool (a large tree takes a
 * while to read), before fsd listens. */
struct first_scan {
  uv_work_t work;
  int rootfd;
  int err;
  int done;
  struct fsd_scan sc;
};

static void first_scan_work(uv_work_t *w) {
  struct first_scan *fs = fsd_container_of(w, struct first_scan, work);

  fs->err = fsd_scan_tree(fs->rootfd, 1, &fs->sc);
}

static void first_scan_done(uv_work_t *w, int status) {
  struct first_scan *fs = fsd_container_of(w, struct first_scan, work);

  if (status != 0 && fs->err == 0)
    fs->err = status;
  fs->done = 1;
}

/* Fills the register from the tree. Folders come before their contents. */
static int load_register(struct server *s) {
  struct first_scan fs;
  size_t files = 0;
  int r;

  memset(&fs, 0, sizeof(fs));
  fs.rootfd = s->host.rootfd;
  r = uv_queue_work(s->loop, &fs.work, first_scan_work, first_scan_done);
  if (r != 0)
    return r;
  while (!fs.done)
    uv_run(s->loop, UV_RUN_ONCE);
  if (fs.err != 0)
    return fs.err;
  if (fs.sc.removed_temps > 0)
    fsd_info("removed %d stale temp file(s)", fs.sc.removed_temps);
  for (size_t i = 0; i < fs.sc.n; i++) {
    const struct fsd_scan_entry *e = &fs.sc.v[i];
    if (e->type == FSP_TYPE_FOLDER) {
      r = fsd_treereg_set(&s->ctx.tree, e->name, e->name_len, FSP_TYPE_FOLDER,
                          0, e->st.mtime_ns);
    } else {
      files++;
      r = fsd_register_put(&s->ctx.reg, e->name, e->name_len, &e->st);
      if (r >= 0)
        r = fsd_treereg_set(&s->ctx.tree, e->name, e->name_len, FSP_TYPE_FILE,
                            e->st.size, e->st.mtime_ns);
    }
    if (r < 0)
      break;
  }
  fsd_info("serving %zu file(s) in %zu folder(s)", files, s->ctx.tree.folders);
  fsd_scan_free(&fs.sc);
  return r < 0 ? r : 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Closes every handle and lets their callbacks run. */
static void close_loop(uv_loop_t *loop) {
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

/* An on/off switch from the environment (undocumented, for measuring):
 * on unless set to "0". */
static int env_flag(const char *name) {
  const char *v = getenv(name);

  return v == NULL || strcmp(v, "0") != 0;
}

/* A number of milliseconds from the environment (undocumented, for
 * tests), or 0 when unset. */
static unsigned long env_ms(const char *name) {
  const char *v = getenv(name);

  return v != NULL ? strtoul(v, NULL, 10) : 0;
}

/* The disk's size and free space, before the loop runs (the only statvfs()
 * not on the threadpool), and the space uploads may never take. */
static void space_init(struct server *s, const struct fsd_config *cfg) {
  uint64_t total = 0, avail = 0, min_free;

  if (fsd_disk_space(s->host.rootfd, &total, &avail) != 0)
    fsd_warn("cannot tell the disk's free space; uploads are refused");
  min_free =
      cfg->min_free_set ? cfg->min_free : fsd_space_default_min_free(total);
  fsd_space_init(&s->host.space, min_free, avail);
  if (!cfg->read_only)
    fsd_info("uploads keep %llu MiB of %llu MiB free (--min-free)",
             (unsigned long long)(min_free >> 20),
             (unsigned long long)(total >> 20));
}

/* Reads the settings of cfg and the environment into s. */
static void configure(struct server *s, const struct fsd_config *cfg) {
  /* sendfile() for GET payloads unless FSD_SENDFILE=0: it spends less CPU
   * than pread + write for the same throughput (bench/RESULTS.md). The
   * copy path stays for A/B runs, and for transports that need it. */
  s->host.zero_copy = (uint8_t)env_flag("FSD_SENDFILE");
  /* Early writeback of uploads unless FSD_WRITEBACK=0 (to measure it). */
  s->host.writeback = (uint8_t)env_flag("FSD_WRITEBACK");
  s->host.no_fsync = (uint8_t)cfg->no_fsync;
  s->ctx.read_only = cfg->read_only;
  s->ctx.anon_rights = cfg->anon_rights;
  if (cfg->no_fsync)
    fsd_warn("uploads are committed without fsync: an upload acknowledged "
             "just before a power failure may be lost");
}

/* Starts watching, reads the root, listens, and sets up signals and timers.
 * Returns 0 or a negative UV_E* code (logged; handles are left to close). */
static int start(struct server *s, const struct fsd_config *cfg) {
  /* FSD_RESCAN_MS (undocumented, for tests): rescan the root this often, so
   * that rescans racing with uploads and deletes can be provoked. */
  unsigned long rescan = env_ms("FSD_RESCAN_MS");
  unsigned rescan_ms =
      rescan > 0 && rescan < RESCAN_MS ? (unsigned)rescan : RESCAN_MS;
  unsigned sweep_ms = rescan_ms < SWEEP_MS ? rescan_ms : SWEEP_MS;
  struct sockaddr_storage where;
  socklen_t wlen = sizeof(where);
  char why[200];
  int r, fd;

  r = fsd_watch_init(&s->watch, s->loop, &s->ctx, s->host.rootfd, cfg->root,
                     rescan_ms, (unsigned)env_ms("FSD_WATCH_DELAY_MS"));
  if (r != 0)
    return r;
  s->host.watch = &s->watch;
  /* FSD_MAX_WATCHES (undocumented, for tests): the kernel's limit of
   * inotify watches, reached after this many folders. */
  s->watch.max_watches = (size_t)env_ms("FSD_MAX_WATCHES");
  r = load_register(s);
  if (r != 0) {
    fsd_error("cannot read root %s: %s", cfg->root, uv_strerror(r));
    return r;
  }
  fsd_watch_folders(&s->watch);
#ifdef FSD_HAVE_CLUSTER
  /* The stream's history goes over what the scan found; what differs
   * from the disk, the next rescan publishes. */
  if (cfg->cluster != NULL) {
    r = fsd_cluster_start(cfg->cluster, s->loop, &s->ctx, &s->watch,
                          &s->cluster);
    if (r != 0)
      return r;
  }
#endif
  /* A socket passed by systemd (fsd.socket) replaces --listen. */
  r = fsd_sd_take_listener(&fd, why, sizeof(why));
  if (r != 0) {
    fsd_error("%s", why);
    return r;
  }
  /* Whether plaintext is allowed depends on where fsd really listens, which
   * for a passed socket is its own address, not --listen. */
  where = cfg->addr;
  if (fd >= 0 && getsockname(fd, (struct sockaddr *)&where, &wlen) != 0) {
    fsd_error("cannot read the passed socket's address: %s", strerror(errno));
    return -errno;
  }
  r = fsd_tls_setup(&s->tls, cfg, &where);
  if (r != 0)
    return r;
  if (s->tls.ctx != NULL) {
    s->net.tls = &s->tls;
    s->net.first = &fsd_transport_sniff;
  }
  fsd_tls_start(&s->tls, s->loop);
  if (fd >= 0)
    r = fsd_listener_adopt(&s->listener, &s->net, &s->ctx, fd);
  else
    r = fsd_listener_start(&s->listener, &s->net, &s->ctx, &cfg->addr);
  if (r != 0) {
    fsd_error("cannot listen: %s", uv_strerror(r));
    return r;
  }
  /* A passed socket was not checked on the command line: the same rule as
   * for --listen, that beyond loopback only users (or --anonymous) get in. */
  if (fd >= 0 && cfg->users == NULL && !cfg->anonymous) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getsockname(&s->listener.tcp, (struct sockaddr *)&ss, &len) !=
            0 ||
        !fsd_tls_is_loopback(&ss)) {
      fsd_error("the socket from systemd is beyond loopback: it needs --users "
                "FILE (or --anonymous read|rw to let anyone in on purpose)");
      return FSD_RUN_BADCONFIG;
    }
  }
  uv_signal_init(s->loop, &s->sigint);
  s->sigint.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_init(s->loop, &s->sigterm);
  s->sigterm.data = s;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_init(s->loop, &s->sighup);
  s->sighup.data = s;
  uv_signal_start(&s->sighup, on_sighup, SIGHUP);
  uv_unref((uv_handle_t *)&s->sighup); /* never the reason to keep running */
  uv_timer_init(s->loop, &s->sweep);
  s->sweep.data = s;
  uv_timer_start(&s->sweep, on_sweep, sweep_ms, sweep_ms);
  return 0;
}

/* Runs the server; see server.h. */
int fsd_server_run(const struct fsd_config *cfg) {
  static struct server srv; /* large (the hash cache); not on the stack */
  struct server *s = &srv;
  uint64_t epoch = 0;
  int r;

  memset(s, 0, sizeof(*s));
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  /* The threadpool size is read on the first uv_queue_work: set it before. */
  setenv("UV_THREADPOOL_SIZE", THREADPOOL_SIZE, 0);
  s->host.rootfd = fsd_root_open(cfg->root);
  if (s->host.rootfd < 0) {
    fsd_error("cannot open root %s: %s", cfg->root,
              uv_strerror(s->host.rootfd));
    return s->host.rootfd;
  }
  if (getrandom(&epoch, sizeof(epoch), 0) != sizeof(epoch) || epoch == 0)
    epoch = (uint64_t)fsd_now_ns() ^ (uint64_t)getpid() << 32;
  r = fsd_ctx_init(&s->ctx, epoch);
  if (r != 0)
    goto out_fd;
  configure(s, cfg);
  space_init(s, cfg);
  s->loop = uv_default_loop();
  s->host.loop = s->loop;
  s->host.ctx = &s->ctx;
  fsd_hcache_init(&s->host.hcache);
  fsd_commitq_init(&s->host.commitq);
  fsd_net_init(&s->net, s->loop, &s->host, cfg->max_clients, cfg->idle_timeout);
  fsd_net_limit_per_ip(&s->net, cfg->max_per_ip, epoch);
  s->net.on_empty = on_net_empty;
  {
    char err[600];
    r = fsd_authsrv_init(&s->auth, s->loop, &s->ctx, &s->net, cfg->users,
                         cfg->max_unauth, cfg->auth_timeout_ms, err,
                         sizeof(err));
    if (r == 0 && cfg->access_log != NULL)
      r = fsd_alog_open(s->loop, cfg->access_log, 0, &s->host.alog, err,
                        sizeof(err));
    if (r != 0) {
      fsd_error("%s", err);
      close_loop(s->loop);
      uv_loop_close(s->loop);
      r = FSD_RUN_BADCONFIG;
      goto out;
    }
  }
  r = start(s, cfg);
  if (r != 0) {
    fsd_alog_close(s->host.alog);
    s->host.alog = NULL;
#ifdef FSD_HAVE_CLUSTER
    fsd_cluster_close(s->cluster);
#endif
    close_loop(s->loop);
    uv_loop_close(s->loop);
    goto out;
  }
  notify("READY=1\nSTATUS=serving");
  uv_run(s->loop, UV_RUN_DEFAULT);
  /* The access log writes what it holds while the handles close. */
  fsd_alog_close(s->host.alog);
  s->host.alog = NULL;
  /* Closing the signal handles restores the default action; ignore the
   * signals right away so that a second SIGTERM during the last steps of a
   * clean stop does not turn it into a kill. */
  uv_walk(s->loop, close_walk, NULL);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  uv_run(s->loop, UV_RUN_DEFAULT);
  r = uv_loop_close(s->loop);
  if (r != 0)
    fsd_warn("loop closed with handles open: %s", uv_strerror(r));
  fsd_info("stopped");
  r = 0;
out:
  fsd_tls_free(&s->tls);
  fsd_authsrv_close(&s->auth);
#ifdef FSD_HAVE_CLUSTER
  fsd_cluster_free(s->cluster);
#endif
  fsd_net_free(&s->net);
  fsd_watch_free(&s->watch);
  fsd_ctx_free(&s->ctx);
out_fd:
  close(s->host.rootfd);
  return r;
}
