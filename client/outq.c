/* fsc output gathering. See outq.h. */
#include "outq.h"

#include <string.h>

#include "alloc.h"

/* Grows *arr (of *cap items of size sz) to hold need items. Returns 0 or
 * UV_ENOMEM (the array is unchanged). */
static int grow(void **arr, size_t *cap, size_t need, size_t sz, size_t min) {
  if (need <= *cap)
    return 0;
  size_t nc = *cap ? *cap : min;
  while (nc < need)
    nc *= 2;
  void *n = fsc_realloc(*arr, nc * sz);
  if (n == NULL)
    return UV_ENOMEM;
  *arr = n;
  *cap = nc;
  return 0;
}

struct fsc_outq *fsc_outq_new(void) {
  return fsc_calloc(1, sizeof(struct fsc_outq));
}

/* Appends a run of n bytes (own bytes when ext is NULL), joining it to
 * the last run when both are own bytes. */
static int add_seg(struct fsc_outq *q, const uint8_t *ext, size_t n) {
  if (ext == NULL && q->nsegs > 0 && q->segs[q->nsegs - 1].ext == NULL) {
    q->segs[q->nsegs - 1].len += n;
    return 0;
  }
  if (grow((void **)&q->segs, &q->segcap, q->nsegs + 1, sizeof *q->segs, 16) <
      0)
    return UV_ENOMEM;
  q->segs[q->nsegs].ext = ext;
  q->segs[q->nsegs].len = n;
  q->nsegs++;
  return 0;
}

uint8_t *fsc_outq_reserve(struct fsc_outq *q, size_t n) {
  if (grow((void **)&q->own, &q->own_cap, q->own_len + n, 1, 4096) < 0 ||
      add_seg(q, NULL, n) < 0)
    return NULL;
  uint8_t *p = q->own + q->own_len;
  q->own_len += n;
  q->bytes += n;
  return p;
}

int fsc_outq_add(struct fsc_outq *q, const uint8_t *p, size_t n,
                 uv_write_t *req, uv_write_cb cb) {
  if (grow((void **)&q->cbs, &q->cbcap, q->ncbs + 1, sizeof *q->cbs, 16) < 0 ||
      add_seg(q, p, n) < 0)
    return UV_ENOMEM;
  q->cbs[q->ncbs].req = req;
  q->cbs[q->ncbs].cb = cb;
  q->ncbs++;
  q->bytes += n;
  return 0;
}

int fsc_outq_bufs(struct fsc_outq *q, uv_buf_t **bufs, unsigned *n) {
  fsc_free(q->bufs);
  q->bufs = fsc_malloc((q->nsegs ? q->nsegs : 1) * sizeof *q->bufs);
  if (q->bufs == NULL)
    return UV_ENOMEM;
  /* Own runs take the own buffer's bytes in order; it no longer moves. */
  size_t off = 0;
  for (size_t i = 0; i < q->nsegs; i++) {
    const struct fsc_outq_seg *s = &q->segs[i];
    const uint8_t *p = s->ext;
    if (p == NULL) {
      p = q->own + off;
      off += s->len;
    }
    q->bufs[i] = uv_buf_init((char *)p, (unsigned)s->len);
  }
  *bufs = q->bufs;
  *n = (unsigned)q->nsegs;
  return 0;
}

void fsc_outq_done(struct fsc_outq *q, int status) {
  for (size_t i = 0; i < q->ncbs; i++)
    q->cbs[i].cb(q->cbs[i].req, status);
}

void fsc_outq_free(struct fsc_outq *q) {
  if (q == NULL)
    return;
  fsc_free(q->own);
  fsc_free(q->segs);
  fsc_free(q->cbs);
  fsc_free(q->bufs);
  fsc_free(q);
}
