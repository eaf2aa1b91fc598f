/* Writing a TLS engine's records to a libuv stream. See uvwrite.h. */
#include "uvwrite.h"

#include <stdlib.h>

/* Records written to the socket, and the caller's request to complete
 * when they are out. */
struct records {
  uv_write_t req;
  uv_write_t *orig;        /* the request the caller gave, or NULL */
  uv_write_cb cb;          /* called with orig once the records are written */
  void *data;              /* the records (from fstls_take, freed with free) */
  void (*release)(void *); /* frees this struct */
};

static void on_written(uv_write_t *req, int status) {
  struct records *w = (struct records *)req;

  if (w->cb != NULL)
    w->cb(w->orig, status);
  free(w->data);
  w->release(w);
}

/* Writes e's records to s; see uvwrite.h. */
int fstls_write_out(struct fstls_engine *e, uv_stream_t *s, uv_write_t *orig,
                    uv_write_cb cb, const struct fstls_alloc *a) {
  size_t n = 0;
  void *data = fstls_take(e, &n);
  struct records *w;
  uv_buf_t b;
  int r;

  if (data == NULL && n > 0)
    return UV_ENOMEM;
  if (n == 0 && cb == NULL)
    return 0;
  w = a->alloc(sizeof(*w));
  if (w == NULL) {
    free(data);
    return UV_ENOMEM;
  }
  w->orig = orig;
  w->cb = cb;
  w->data = data;
  w->release = a->free;
  b = uv_buf_init(data, (unsigned)n);
  r = uv_write(&w->req, s, &b, 1, on_written);
  if (r != 0) {
    free(data);
    a->free(w);
  }
  return r;
}
