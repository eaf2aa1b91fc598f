/* The byte budget one connection's downloads share, in the way HTTP/2 bounds
 * all streams of a connection with one connection-level window: a transfer
 * takes bytes before it reads a chunk ahead and gives them back as the
 * chunk leaves through the socket. Transfers that find the budget spent
 * queue, oldest first, so a connection's memory is bounded whatever the
 * number of its requests, and its transfers take turns. No I/O, no
 * allocation. */
#ifndef FSD_BUDGET_H
#define FSD_BUDGET_H

#include <stddef.h>

/* A transfer's place in the queue; embedded in the transfer, zero-filled
 * before first use. */
struct fsd_budget_wait {
  struct fsd_budget_wait *next; /* next in the queue */
  size_t least;                 /* the smallest grant it can use */
  unsigned char queued;         /* in the queue */
};

struct fsd_budget {
  size_t cap;                    /* bytes that may be held at once */
  size_t used;                   /* bytes held */
  struct fsd_budget_wait *head;  /* waiting transfers, oldest first */
  struct fsd_budget_wait **tail; /* where the next waiter is linked */
};

/* Initialises b with room for cap bytes and nobody waiting. */
void fsd_budget_init(struct fsd_budget *b, size_t cap);

/* Takes up to want bytes for the transfer w. Grants only to the oldest
 * waiter (or to anyone when nobody waits), and only when at least
 * min(want, least) bytes are free; then returns the bytes granted (at most
 * want, at most what is free) and w leaves the queue. Otherwise returns 0
 * and w waits in the queue (it keeps its place if it already waited). */
size_t fsd_budget_take(struct fsd_budget *b, struct fsd_budget_wait *w,
                       size_t want, size_t least);

/* Gives back n bytes taken earlier. The caller then offers them to the
 * waiters: see fsd_budget_next(). */
void fsd_budget_give(struct fsd_budget *b, size_t n);

/* The oldest waiter when enough bytes are free for it, else NULL. */
struct fsd_budget_wait *fsd_budget_next(const struct fsd_budget *b);

/* Takes w out of the queue (a transfer that ends while it waits). */
void fsd_budget_cancel(struct fsd_budget *b, struct fsd_budget_wait *w);

#endif /* FSD_BUDGET_H */
