/* Buffers and their pool; see bufpool.h. */
#include "bufpool.h"

#include "mem.h"

/* Sets up a pool; see bufpool.h. */
void fsd_bufpool_init(struct fsd_bufpool *p, size_t keep_min, size_t keep_max,
                      size_t round, unsigned max_n, size_t max_bytes) {
  fsd_list_init(&p->spares);
  p->keep_min = keep_min;
  p->keep_max = keep_max;
  p->round = round;
  p->n = 0;
  p->max_n = max_n;
  p->bytes = 0;
  p->max_bytes = max_bytes;
  p->taken = 0;
}

/* Frees the spares; see bufpool.h. */
void fsd_bufpool_free(struct fsd_bufpool *p) {
  struct fsd_list *l;

  while ((l = fsd_list_pop(&p->spares)) != NULL)
    fsd_free(fsd_container_of(l, struct fsd_buf, link));
  p->n = 0;
  p->bytes = 0;
}

/* A buffer of cap bytes; see bufpool.h. */
struct fsd_buf *fsd_buf_new(size_t cap) {
  struct fsd_buf *b = fsd_malloc(sizeof(*b) + cap);

  if (b == NULL)
    return NULL;
  fsd_list_init(&b->link);
  b->owner = NULL;
  b->user = NULL;
  b->done = NULL;
  b->refs = 1;
  b->pins = 0;
  b->cap = cap;
  b->len = 0;
  return b;
}

/* Frees a buffer; see bufpool.h. */
void fsd_buf_free(struct fsd_buf *b) {
  fsd_free(b);
}

/* Takes a spare or makes a buffer; see bufpool.h. */
struct fsd_buf *fsd_bufpool_get(struct fsd_bufpool *p, size_t need) {
  struct fsd_buf *best = NULL;
  struct fsd_list *l, *n;

  /* Requests outside the kept sizes never look: a connection that only
   * asks questions keeps its small buffers, and a pool of thousands of
   * output buffers of one size is not walked for another size. */
  if (need >= p->keep_min && need <= p->keep_max) {
    fsd_list_each_safe(l, n, &p->spares) {
      struct fsd_buf *b = fsd_container_of(l, struct fsd_buf, link);
      if (b->cap >= need && (best == NULL || b->cap < best->cap)) {
        best = b;
        if (b->cap == need)
          break; /* nothing fits better */
      }
    }
  }
  if (best != NULL) {
    fsd_list_remove(&best->link);
    p->n--;
    p->bytes -= best->cap;
    p->taken = 1;
    best->refs = 1;
    best->pins = 0;
    best->len = 0;
    best->user = NULL;
    best->done = NULL;
    return best;
  }
  if (p->round != 0 && need > p->keep_min)
    need = (need + p->round - 1) / p->round * p->round;
  return fsd_buf_new(need);
}

/* Keeps or frees a buffer; see bufpool.h. */
void fsd_bufpool_put(struct fsd_bufpool *p, struct fsd_buf *b) {
  if (b == NULL)
    return;
  if (b->cap >= p->keep_min && b->cap <= p->keep_max && p->n < p->max_n &&
      b->cap <= p->max_bytes - p->bytes) {
    fsd_list_push(&p->spares, &b->link);
    p->n++;
    p->bytes += b->cap;
    return;
  }
  fsd_free(b);
}

/* Drops a reference; see bufpool.h. */
void fsd_buf_unref(struct fsd_bufpool *p, struct fsd_buf *b) {
  if (--b->refs == 0)
    fsd_bufpool_put(p, b);
}

/* Frees idle spares; see bufpool.h. */
void fsd_bufpool_trim(struct fsd_bufpool *p) {
  if (!p->taken)
    fsd_bufpool_free(p);
  p->taken = 0;
}
