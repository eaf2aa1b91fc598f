/* fsc watch's way back after a lost connection: the connection is opened
 * again after a delay that starts short and doubles up to a ceiling, until
 * it is ready or --retry failed attempts in a row have been made; one line
 * says that the server is unreachable, however long the outage lasts. The
 * owner (main.c) feeds it the connection's callbacks. */
#ifndef FSC_RECONNECT_H
#define FSC_RECONNECT_H

#include <uv.h>

#include "app.h"

struct fsc_reconnect {
  struct fsc_app *app;
  const char *server; /* HOST:PORT to open again */
  /* Called before each attempt: the owner may point server elsewhere (the
   * next server of a cluster). NULL: always the same. */
  void (*next)(struct fsc_reconnect *r);
  int retry;           /* failed attempts in a row before giving up; -1:
                          no limit */
  uv_timer_t timer;    /* the delay before the next attempt */
  int timer_open;      /* timer is initialised and not closed */
  int active;          /* lost; reopening until ready or giving up */
  int attempting;      /* a reopened connection is connecting */
  int failures;        /* failed attempts in a row */
  unsigned backoff_ms; /* wait before the next attempt */
  /* The owner is ending (Ctrl-C, or the command ended): no more attempts,
   * and what an attempt reports is ignored. */
  int (*halted)(struct fsc_reconnect *r);
  void *data; /* for the owner */
};

/* The connection was lost: start reconnecting once its handle has closed
 * (fsc_reconnect_closed). */
void fsc_reconnect_begin(struct fsc_reconnect *r);

/* The connection's handle closed. Returns 1 when reconnecting (the next
 * attempt is scheduled, or the run was told that it gave up), else 0: the
 * connection is over, for the owner. */
int fsc_reconnect_closed(struct fsc_reconnect *r, int err);

/* The connection's on_ready. Returns 1 when it concerned an attempt (a
 * ready one tells the run, a failed one is counted when it closes), else
 * 0: the first connection, for the owner. */
int fsc_reconnect_ready(struct fsc_reconnect *r, int status);

/* Stops reconnecting (the command ended) and releases the timer. */
void fsc_reconnect_stop(struct fsc_reconnect *r);

#endif /* FSC_RECONNECT_H */
