/* Paths awaiting the event of our own change; see expect.h. */
#include "expect.h"

#include <string.h>
#include <uv.h>

#include "fnv.h"
#include "mem.h"

struct fsd_expect_ent {
  struct fsd_expect_ent *next;
  uint64_t at;    /* uv_now() of the latest add */
  uint32_t hash;  /* of the path */
  uint32_t count; /* events still expected */
  uint16_t len;
  char path[];
};

/* The link that points at path's entry (or at the NULL ending its chain). */
static struct fsd_expect_ent **find(struct fsd_expect *e, const char *path,
                                    size_t len, uint32_t h) {
  struct fsd_expect_ent **pp = &e->b[h & (FSD_EXPECT_BUCKETS - 1)];

  for (; *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->hash == h && (*pp)->len == len &&
        memcmp((*pp)->path, path, len) == 0)
      break;
  return pp;
}

static void unlink_ent(struct fsd_expect *e, struct fsd_expect_ent **pp) {
  struct fsd_expect_ent *x = *pp;

  *pp = x->next;
  fsd_free(x);
  e->n--;
}

/* See expect.h. */
void fsd_expect_init(struct fsd_expect *e) {
  memset(e, 0, sizeof(*e));
}

/* See expect.h. */
int fsd_expect_add(struct fsd_expect *e, const char *path, size_t len,
                   uint64_t now) {
  uint32_t h = fsd_fnv1a(path, len);
  struct fsd_expect_ent **pp = find(e, path, len, h), *x;

  if (*pp != NULL) {
    (*pp)->count++;
    (*pp)->at = now;
    return 0;
  }
  if (e->n >= FSD_EXPECT_MAX || len > UINT16_MAX)
    return UV_ENOBUFS;
  x = fsd_malloc(sizeof(*x) + len);
  if (x == NULL)
    return UV_ENOMEM;
  x->next = NULL;
  x->at = now;
  x->hash = h;
  x->count = 1;
  x->len = (uint16_t)len;
  memcpy(x->path, path, len);
  *pp = x;
  e->n++;
  return 0;
}

/* See expect.h. */
int fsd_expect_take(struct fsd_expect *e, const char *path, size_t len,
                    uint64_t now) {
  struct fsd_expect_ent **pp;

  if (e->n == 0)
    return 0;
  pp = find(e, path, len, fsd_fnv1a(path, len));
  if (*pp == NULL)
    return 0;
  if (now - (*pp)->at > FSD_EXPECT_MS) {
    unlink_ent(e, pp); /* stale: its events went elsewhere */
    return 0;
  }
  if (--(*pp)->count == 0)
    unlink_ent(e, pp);
  return 1;
}

/* See expect.h. */
int fsd_expect_drop(struct fsd_expect *e, const char *path, size_t len) {
  struct fsd_expect_ent **pp = find(e, path, len, fsd_fnv1a(path, len));

  if (*pp == NULL)
    return 0;
  if (--(*pp)->count == 0)
    unlink_ent(e, pp);
  return 1;
}

/* See expect.h. */
void fsd_expect_expire(struct fsd_expect *e, uint64_t now) {
  for (size_t i = 0; i < FSD_EXPECT_BUCKETS && e->n > 0; i++)
    for (struct fsd_expect_ent **pp = &e->b[i]; *pp != NULL;)
      if (now - (*pp)->at > FSD_EXPECT_MS)
        unlink_ent(e, pp);
      else
        pp = &(*pp)->next;
}

/* See expect.h. */
void fsd_expect_free(struct fsd_expect *e) {
  for (size_t i = 0; i < FSD_EXPECT_BUCKETS; i++)
    while (e->b[i] != NULL)
      unlink_ent(e, &e->b[i]);
}
