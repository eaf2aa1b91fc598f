/* A connection's shared transfer budget; see budget.h. */
#include "budget.h"

#include <assert.h>

/* Sets up an empty budget; see budget.h. */
void fsd_budget_init(struct fsd_budget *b, size_t cap) {
  b->cap = cap;
  b->used = 0;
  b->head = NULL;
  b->tail = &b->head;
}

static void enqueue(struct fsd_budget *b, struct fsd_budget_wait *w,
                    size_t least) {
  w->least = least;
  if (w->queued)
    return;
  w->next = NULL;
  w->queued = 1;
  *b->tail = w;
  b->tail = &w->next;
}

/* Takes w out of the queue; see budget.h. */
void fsd_budget_cancel(struct fsd_budget *b, struct fsd_budget_wait *w) {
  struct fsd_budget_wait **pp;

  if (!w->queued)
    return;
  for (pp = &b->head; *pp != NULL; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      if (b->tail == &w->next)
        b->tail = pp;
      break;
    }
  w->next = NULL;
  w->queued = 0;
}

/* Grants bytes in queue order; see budget.h. */
size_t fsd_budget_take(struct fsd_budget *b, struct fsd_budget_wait *w,
                       size_t want, size_t least) {
  size_t free_bytes = b->cap - b->used;
  size_t grant;

  if (want == 0)
    return 0;
  if (least > want)
    least = want;
  if (least == 0)
    least = 1;
  /* Someone older waits: wait behind it, so that a transfer that just
   * had its turn cannot take the bytes another is waiting for. */
  if ((b->head != NULL && b->head != w) || free_bytes < least) {
    enqueue(b, w, least);
    return 0;
  }
  grant = want < free_bytes ? want : free_bytes;
  b->used += grant;
  fsd_budget_cancel(b, w);
  return grant;
}

/* Gives bytes back; see budget.h. */
void fsd_budget_give(struct fsd_budget *b, size_t n) {
  assert(n <= b->used);
  b->used -= n;
}

/* The waiter whose turn it is; see budget.h. */
struct fsd_budget_wait *fsd_budget_next(const struct fsd_budget *b) {
  if (b->head == NULL || b->cap - b->used < b->head->least)
    return NULL;
  return b->head;
}
