/* Disk space promised to uploads; see space.h. */
#include "space.h"

#include <uv.h>

#define MIB (1024u * 1024u)

/* 1% or 256 MiB; see space.h. */
uint64_t fsd_space_default_min_free(uint64_t total) {
  uint64_t pct = total / 100;
  return pct > 256ull * MIB ? pct : 256ull * MIB;
}

/* Sets up the accounting; see space.h. */
void fsd_space_init(struct fsd_space *s, uint64_t min_free, uint64_t avail) {
  s->min_free = min_free;
  s->avail = avail;
  s->reserved = 0;
  s->used = 0;
  s->looked = 0;
}

/* See space.h. */
uint64_t fsd_space_mark(const struct fsd_space *s) {
  return s->used;
}

/* A fresh look; see space.h. */
void fsd_space_seen(struct fsd_space *s, uint64_t avail, uint64_t mark) {
  uint64_t since = s->used - mark;

  if (avail == UINT64_MAX)
    return; /* the look failed */
  s->avail = avail > since ? avail - since : 0;
}

/* The one test of room; see space.h. */
int fsd_space_fits(uint64_t avail, uint64_t reserved, uint64_t min_free,
                   uint64_t n) {
  if (avail < min_free)
    return 0;
  avail -= min_free;
  if (avail < reserved)
    return 0;
  return n <= avail - reserved;
}

/* See space.h. */
int fsd_space_reserve(struct fsd_space *s, uint64_t n) {
  if (!fsd_space_fits(s->avail, s->reserved, s->min_free, n))
    return UV_ENOSPC;
  s->reserved += n;
  return 0;
}

/* Reserved bytes that are now on disk; see space.h. */
void fsd_space_used(struct fsd_space *s, uint64_t n) {
  if (n > s->reserved)
    n = s->reserved;
  s->reserved -= n;
  s->avail = s->avail > n ? s->avail - n : 0;
  s->used += n;
}

/* A removed temp file's bytes; see space.h. */
void fsd_space_freed(struct fsd_space *s, uint64_t n) {
  s->avail = s->avail > UINT64_MAX - n ? UINT64_MAX : s->avail + n;
}

/* See space.h. */
void fsd_space_release(struct fsd_space *s, uint64_t n) {
  s->reserved = n < s->reserved ? s->reserved - n : 0;
}

/* "512M"; see space.h. */
int fsd_parse_size(const char *s, uint64_t *out) {
  uint64_t v = 0, mul = 1;

  if (*s < '0' || *s > '9')
    return UV_EINVAL;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
      return UV_EINVAL;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  /* K, M, G, T: 2^10, 2^20, 2^30, 2^40. */
  for (int i = 0; i < 4; i++)
    if (*s == "KMGT"[i] || *s == "kmgt"[i]) {
      mul = 1ull << (10 * (i + 1));
      s++;
      break;
    }
  if (mul > 1 && s[0] == 'i' && s[1] == 'B')
    s += 2;
  else if (mul > 1 && s[0] == 'B')
    s++;
  if (*s != '\0' || (v != 0 && mul > UINT64_MAX / v))
    return UV_EINVAL;
  *out = v * mul;
  return 0;
}
