/* fsd's TLS settings: which listener needs TLS, the key and certificate,
 * and their reload on SIGHUP; see tls.h. */
#include "tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "server.h"

/* Whether the address is loopback; see tls.h. */
int fsd_tls_is_loopback(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
  }
  return 0;
}

/* Finds (or makes, in the state directory) the certificate and key of cfg
 * into t->cert and t->key. Returns 0 or a negative FSTLS_E* code, with the
 * reason in why. */
static int find_keys(struct fsd_tlsd *t, const struct fsd_config *cfg,
                     char *why, size_t whylen) {
  char dir[PATH_MAX];
  int rc;

  if (cfg->tls_cert != NULL) {
    snprintf(t->cert, sizeof(t->cert), "%s", cfg->tls_cert);
    snprintf(t->key, sizeof(t->key), "%s", cfg->tls_key);
    return 0;
  }
  if (cfg->state_dir != NULL)
    rc = snprintf(dir, sizeof(dir), "%s", cfg->state_dir) < (int)sizeof(dir)
             ? 0
             : FSTLS_EINVAL;
  else
    rc = fstls_state_dir_default(dir, sizeof(dir));
  if (rc != 0) {
    snprintf(why, whylen, "no state directory: give --state-dir DIR");
    return rc;
  }
  rc = fstls_keys_ensure(dir, t->key, t->cert, why, whylen);
  if (rc == 1)
    fsd_info("made a new TLS key in %s", dir);
  return rc < 0 ? rc : 0;
}

/* Decides and loads; see tls.h. */
int fsd_tls_setup(struct fsd_tlsd *t, const struct fsd_config *cfg,
                  const struct sockaddr_storage *where) {
  char why[512] = "", ktls[256] = "";
  int loopback = fsd_tls_is_loopback(where);
  int rc;

  memset(t, 0, sizeof(*t));
  if (!cfg->tls && loopback && cfg->tls_cert == NULL) {
    t->plaintext_ok = 1;
    return 0;
  }
  t->plaintext_ok = cfg->allow_plaintext;
  rc = find_keys(t, cfg, why, sizeof(why));
  if (rc == 0)
    rc =
        fstls_server_ctx_new(t->cert, t->key, &t->ctx, t->fp, why, sizeof(why));
  if (rc != 0) {
    fsd_error("TLS: %s", why[0] != '\0' ? why : fstls_strerror(rc));
    return rc;
  }
  /* Printed whatever the log level, like the listening line: the one thing
   * a user must pass on to the clients. */
  fprintf(stderr, "fsd: TLS key fingerprint %s\n", t->fp);
  fflush(stderr);
  if (t->plaintext_ok)
    fsd_warn("plaintext connections are accepted too (--allow-plaintext): "
             "anyone on their path can read and change them");
  fstls_ktls_available(ktls, sizeof(ktls));
  fsd_info("TLS downloads use the copy path (%s)", ktls);
  return 0;
}

/* --fingerprint; see tls.h. */
int fsd_tls_print_fingerprint(const struct fsd_config *cfg) {
  struct fsd_tlsd t;
  char why[512] = "";
  int rc;

  memset(&t, 0, sizeof(t));
  rc = find_keys(&t, cfg, why, sizeof(why));
  if (rc == 0)
    rc = fstls_server_ctx_new(t.cert, t.key, &t.ctx, t.fp, why, sizeof(why));
  if (rc != 0) {
    fprintf(stderr, "fsd: %s\n", why[0] != '\0' ? why : fstls_strerror(rc));
    return 1;
  }
  printf("%s\n", t.fp);
  SSL_CTX_free(t.ctx);
  return 0;
}

/* On the threadpool: the files are read and checked there, so a slow disk
 * does not stall the loop. */
static void reload_work(uv_work_t *w) {
  struct fsd_tlsd *t = w->data;

  t->why[0] = '\0';
  if (fstls_server_ctx_new(t->cert, t->key, &t->next, t->next_fp, t->why,
                           sizeof(t->why)) != 0 &&
      t->why[0] == '\0')
    snprintf(t->why, sizeof(t->why), "cannot load %.400s", t->key);
}

static void on_sighup(uv_signal_t *h, int signum);

/* Back on the loop: new connections get the new context; open ones keep
 * the one they started with (each SSL holds a reference to it). */
static void reload_done(uv_work_t *w, int status) {
  struct fsd_tlsd *t = w->data;

  t->reloading = 0;
  if (status == 0 && t->next != NULL) {
    SSL_CTX_free(t->ctx);
    t->ctx = t->next;
    t->next = NULL;
    memcpy(t->fp, t->next_fp, sizeof(t->fp));
    fsd_info("TLS certificate reloaded, key fingerprint %s", t->fp);
  } else {
    fsd_error("TLS reload failed, keeping the current certificate: %s", t->why);
  }
  if (t->again) {
    t->again = 0;
    on_sighup(&t->sighup, SIGHUP);
  }
}

static void on_sighup(uv_signal_t *h, int signum) {
  struct fsd_tlsd *t = fsd_container_of(h, struct fsd_tlsd, sighup);

  (void)signum;
  if (t->reloading) {
    t->again = 1;
    return;
  }
  t->work.data = t;
  t->next = NULL;
  if (uv_queue_work(h->loop, &t->work, reload_work, reload_done) == 0)
    t->reloading = 1;
}

/* Starts the SIGHUP watcher; see tls.h. */
void fsd_tls_start(struct fsd_tlsd *t, uv_loop_t *loop) {
  if (t->ctx == NULL)
    return;
  uv_signal_init(loop, &t->sighup);
  t->watching = 1;
  uv_signal_start(&t->sighup, on_sighup, SIGHUP);
  uv_unref((uv_handle_t *)&t->sighup);
}

/* Stops the SIGHUP watcher; see tls.h. */
void fsd_tls_stop(struct fsd_tlsd *t) {
  if (t->watching && !uv_is_closing((uv_handle_t *)&t->sighup))
    uv_close((uv_handle_t *)&t->sighup, NULL);
}

/* Frees the contexts; see tls.h. */
void fsd_tls_free(struct fsd_tlsd *t) {
  SSL_CTX_free(t->ctx);
  SSL_CTX_free(t->next);
  t->ctx = t->next = NULL;
}
