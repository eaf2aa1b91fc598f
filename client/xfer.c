/* fsc transfer state machines. See xfer.h. */
#include "xfer.h"

#include <string.h>

#include "alloc.h"
#include "hash.h"

const char *fsc_xfer_strerror(int err) {
  switch (err) {
#define FSC_XS(name, val, msg)                                                 \
  case val:                                                                    \
    return msg;
    FSC_XFER_ERRNO_MAP(FSC_XS)
#undef FSC_XS
  }
  return NULL;
}

/* An XXH3 state from xxhash's own allocator, which the allocation hook
 * can make fail like any other. */
static XXH3_state_t *new_state(void) {
  return fsc_alloc_inject() ? NULL : XXH3_createState();
}

int fsc_get_init(struct fsc_get *g, uint64_t prefix) {
  memset(g, 0, sizeof *g);
  g->range = new_state();
  g->whole = new_state();
  if (g->range == NULL || g->whole == NULL) {
    fsc_get_free(g);
    return FSC_ENOMEM;
  }
  XXH3_64bits_reset(g->range);
  XXH3_64bits_reset(g->whole);
  g->prefix = prefix;
  g->state = prefix > 0 ? FSC_GET_PREFIX : FSC_GET_BEGIN;
  return 0;
}

void fsc_get_free(struct fsc_get *g) {
  XXH3_freeState(g->range);
  XXH3_freeState(g->whole);
  g->range = NULL;
  g->whole = NULL;
}

void fsc_get_prefix_data(struct fsc_get *g, const void *p, size_t n) {
  fsc_hash_update(g->whole, p, n);
}

void fsc_get_prefix_done(struct fsc_get *g) {
  g->state = FSC_GET_DIGEST;
}

int fsc_get_on_digest(struct fsc_get *g, const struct fsp_msg *m) {
  if (g->state != FSC_GET_DIGEST || m->op != FSP_OP_DIGEST) {
    g->state = FSC_GET_FAILED;
    return FSC_ESTATE;
  }
  g->state = FSC_GET_BEGIN;
  /* A shorter digest means the server's file is now shorter than our
   * partial copy: it cannot be a prefix of it. */
  if (m->u.digest.offset == 0 && m->u.digest.length == g->prefix &&
      m->u.digest.hash == XXH3_64bits_digest(g->whole)) {
    g->offset = g->prefix;
    return 1;
  }
  g->offset = 0;
  g->prefix = 0;
  XXH3_64bits_reset(g->whole);
  return 0;
}

int fsc_get_on_begin(struct fsc_get *g, const struct fsp_msg *m) {
  if (g->state != FSC_GET_BEGIN || m->op != FSP_OP_BEGIN) {
    g->state = FSC_GET_FAILED;
    return FSC_ESTATE;
  }
  if (m->u.begin.offset != g->offset ||
      m->u.begin.offset > m->u.begin.file_size ||
      m->u.begin.length > m->u.begin.file_size - m->u.begin.offset) {
    g->state = FSC_GET_FAILED;
    return FSC_ERANGE;
  }
  g->length = m->u.begin.length;
  g->file_size = m->u.begin.file_size;
  g->mtime_ns = m->u.begin.mtime_ns;
  g->state = FSC_GET_DATA;
  return 0;
}

int fsc_get_on_data(struct fsc_get *g, const void *p, size_t n) {
  if (g->state != FSC_GET_DATA) {
    g->state = FSC_GET_FAILED;
    return FSC_ESTATE;
  }
  if (n > g->length - g->received) {
    g->state = FSC_GET_FAILED;
    return FSC_ETOOMUCH;
  }
  g->received += n;
  fsc_hash_update(g->range, p, n);
  /* Without a resumed prefix the whole file is the range: hash once. */
  if (g->offset > 0)
    fsc_hash_update(g->whole, p, n);
  return 0;
}

int fsc_get_on_end(struct fsc_get *g, const struct fsp_msg *m) {
  if (g->state != FSC_GET_DATA || m->op != FSP_OP_END) {
    g->state = FSC_GET_FAILED;
    return FSC_ESTATE;
  }
  if (m->u.end.size != g->received || g->received != g->length) {
    g->state = FSC_GET_FAILED;
    return FSC_ESIZE;
  }
  if (m->u.end.hash != XXH3_64bits_digest(g->range)) {
    g->state = FSC_GET_FAILED;
    return FSC_ECHECKSUM;
  }
  g->state = FSC_GET_DONE;
  return 0;
}

uint64_t fsc_get_whole_hash(const struct fsc_get *g) {
  return XXH3_64bits_digest(g->offset > 0 ? g->whole : g->range);
}

int fsc_put_init(struct fsc_put *p, uint64_t size, uint32_t max_payload,
                 uint32_t want_chunk) {
  memset(p, 0, sizeof *p);
  p->hash = new_state();
  if (p->hash == NULL)
    return FSC_ENOMEM;
  XXH3_64bits_reset(p->hash);
  p->size = size;
  p->chunk = want_chunk < max_payload ? want_chunk : max_payload;
  if (p->chunk == 0)
    p->chunk = FSP_MIN_PAYLOAD;
  p->state = FSC_PUT_READY;
  return 0;
}

void fsc_put_free(struct fsc_put *p) {
  XXH3_freeState(p->hash);
  p->hash = NULL;
}

int fsc_put_on_ready(struct fsc_put *p) {
  if (p->state != FSC_PUT_READY) {
    p->state = FSC_PUT_FAILED;
    return FSC_ESTATE;
  }
  p->state = FSC_PUT_SENDING;
  return 0;
}

uint32_t fsc_put_next_len(const struct fsc_put *p) {
  uint64_t left = p->size - p->read;
  return left < p->chunk ? (uint32_t)left : p->chunk;
}

int fsc_put_on_read(struct fsc_put *p, const void *buf, size_t n, size_t want) {
  if (p->state != FSC_PUT_SENDING || n > p->size - p->read) {
    p->state = FSC_PUT_FAILED;
    return FSC_ESTATE;
  }
  fsc_hash_update(p->hash, buf, n);
  p->read += n;
  if (n < want) {
    p->state = FSC_PUT_FAILED;
    return FSC_ECHANGED;
  }
  return 0;
}

int fsc_put_end(struct fsc_put *p, struct fsp_msg *end, uint32_t id) {
  if (p->state != FSC_PUT_SENDING || p->read != p->size) {
    p->state = FSC_PUT_FAILED;
    return FSC_ESTATE;
  }
  memset(end, 0, sizeof *end);
  end->op = FSP_OP_END;
  end->id = id;
  end->u.end.size = p->size;
  end->u.end.hash = XXH3_64bits_digest(p->hash);
  p->state = FSC_PUT_INFO;
  return 0;
}

int fsc_put_on_info(struct fsc_put *p, const struct fsp_msg *m) {
  if (p->state != FSC_PUT_INFO || m->op != FSP_OP_INFO) {
    p->state = FSC_PUT_FAILED;
    return FSC_ESTATE;
  }
  if (m->u.entry.size != p->size) {
    p->state = FSC_PUT_FAILED;
    return FSC_ESIZE;
  }
  p->state = FSC_PUT_DONE;
  return 0;
}
