/* fsd's authentication, server side (protocol.md section 11): the users
 * file (loaded before the loop, reloaded on SIGHUP on the threadpool), the
 * cap on connections still waiting to authenticate (--max-unauth), their
 * deadline, and the growing delay that failed attempts from one address
 * earn: an AUTH from such an address is held on one timer before it is
 * checked, while its connection reads nothing more. */
#ifndef FSD_AUTHSRV_H
#define FSD_AUTHSRV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "guard.h"
#include "list.h"
#include "users.h"

#define FSD_MAX_UNAUTH 64u          /* default of --max-unauth */
#define FSD_AUTH_DEADLINE_MS 10000u /* default of --auth-timeout */

struct fsd_conn;
struct fsd_ctx;
struct fsd_net;

struct fsd_authsrv {
  uv_loop_t *loop;
  struct fsd_ctx *ctx;    /* its users point at users below when active */
  struct fsd_net *net;    /* the connections, for reloads and sweeps */
  const char *path;       /* --users FILE; NULL: no authentication */
  struct fsd_users users; /* the users in force */
  struct fsd_verifier verifier;
  struct fsd_guard guard; /* failures per source address */
  unsigned max_unauth;    /* connections allowed to wait for AUTH */
  unsigned nunauth;       /* connections waiting for AUTH now */
  unsigned deadline_ms;   /* time to authenticate after accept */
  uv_timer_t timer;       /* the earliest held AUTH is due */
  struct fsd_list held;   /* held AUTHs, by due time (fsd_conn.auth_link) */
  uv_work_t work;         /* a reload reading the file */
  struct fsd_users next;  /* what the reload read */
  int next_rc;            /* its result */
  char next_err[512];     /* its message */
  uint8_t reloading;      /* the work is queued */
  uint8_t again;          /* SIGHUP during a reload: reload once more */
};

/* Starts authentication for a server: with path NULL, none (every client is
 * served as today). Otherwise loads the users file now (blocking: before
 * the loop runs) and points ctx->users at it. Returns 0, or a negative code
 * with err saying why (fsd then refuses to start). */
int fsd_authsrv_init(struct fsd_authsrv *a, uv_loop_t *loop,
                     struct fsd_ctx *ctx, struct fsd_net *net, const char *path,
                     unsigned max_unauth, unsigned deadline_ms, char *err,
                     size_t errlen);

/* Frees the users and the failure table, once the loop has closed every
 * handle (the timer among them). */
void fsd_authsrv_close(struct fsd_authsrv *a);

/* A connection was accepted: counts it as waiting for AUTH. Returns 0, or
 * FSP_ST_LIMIT when max_unauth connections already wait, or half of them
 * from c's address (c is then refused with an ERROR LIMIT and closed; do
 * not start it). */
int fsd_authsrv_admit(struct fsd_authsrv *a, struct fsd_conn *c);

/* The session of c holds an AUTH (host operation): checks it now, or holds
 * it for the delay its address earned. */
void fsd_authsrv_hold(struct fsd_authsrv *a, struct fsd_conn *c);

/* c is being freed: it no longer waits. */
void fsd_authsrv_forget(struct fsd_authsrv *a, struct fsd_conn *c);

/* The periodic check: closes connections past their deadline. */
void fsd_authsrv_sweep(struct fsd_authsrv *a);

/* SIGHUP: reads the users file again on the threadpool; when it is good,
 * every connection is held to it at once (session.h fsd_session_reload);
 * when not, the old one stays and the error is logged. */
void fsd_authsrv_reload(struct fsd_authsrv *a);

#endif /* FSD_AUTHSRV_H */
