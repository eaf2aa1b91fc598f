/* Reopening a lost connection for a watch. See reconnect.h. */
#include "reconnect.h"

#include <stdio.h>

#include "run.h"

/* Reconnect delays: the first soon (a restarting server is often back at
 * once), then doubling, at most RETRY_MAX_MS (an hour-long outage costs
 * the server a connection attempt every few seconds, no more). */
#define RETRY_FIRST_MS 100u
#define RETRY_MAX_MS 5000u
/* A status line: a fixed sentence and HOST:PORT (at most 255 + 7 bytes). */
#define LINE_MAX_LEN 320

static void stop_timer(struct fsc_reconnect *r) {
  if (r->timer_open) {
    uv_close((uv_handle_t *)&r->timer, NULL);
    r->timer_open = 0;
  }
}

static void on_timer(uv_timer_t *t) {
  struct fsc_reconnect *r = t->data;
  if (!r->active || r->halted(r))
    return;
  r->attempting = 1;
  if (r->next != NULL)
    r->next(r);
  int rc = fsc_conn_open(&r->app->conn, r->app->loop, r->server);
  if (rc < 0)
    fsc_reconnect_closed(r, rc);
}

void fsc_reconnect_begin(struct fsc_reconnect *r) {
  r->active = 1;
  r->attempting = 0;
  r->failures = 0;
  r->backoff_ms = RETRY_FIRST_MS;
}

int fsc_reconnect_closed(struct fsc_reconnect *r, int err) {
  struct fsc_app *a = r->app;
  if (!r->active || r->halted(r))
    return 0;
  if (r->attempting) {
    /* The attempt that just ended failed. */
    r->attempting = 0;
    r->failures++;
    const char *why = fsc_conn_why(&a->conn, err);
    if (r->retry >= 0 && r->failures >= r->retry) {
      fsc_app_errorf(a, "cannot reconnect to %s: %s; giving up", a->server,
                     why);
      r->active = 0;
      a->reconnect = 0;
      stop_timer(r);
      fsc_run_conn_lost(a, err);
      return 1;
    }
    /* Once per outage: a server that stays down for an hour must not
     * fill the terminal. */
    if (r->failures == 1)
      fsc_app_errorf(a,
                     "cannot reconnect to %s yet: %s; still trying "
                     "(Ctrl-C to stop)",
                     a->server, why);
    r->backoff_ms =
        r->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r->backoff_ms * 2;
  }
  if (!r->timer_open) {
    uv_timer_init(a->loop, &r->timer);
    r->timer.data = r;
    r->timer_open = 1;
  }
  uv_timer_start(&r->timer, on_timer, r->backoff_ms, 0);
  return 1;
}

int fsc_reconnect_ready(struct fsc_reconnect *r, int status) {
  struct fsc_app *a = r->app;
  if (!r->active)
    return 0;
  /* A failed attempt is counted once its handle is closed. */
  if (status < 0 || r->halted(r))
    return 1;
  r->active = 0;
  r->attempting = 0;
  r->failures = 0;
  r->backoff_ms = RETRY_FIRST_MS;
  stop_timer(r);
  if (!a->quiet) {
    char line[LINE_MAX_LEN];
    snprintf(line, sizeof line, "fsc: reconnected to %s", a->server);
    a->print(a, 1, line);
  }
  fsc_run_reconnected(a);
  return 1;
}

void fsc_reconnect_stop(struct fsc_reconnect *r) {
  r->active = 0;
  stop_timer(r);
}
