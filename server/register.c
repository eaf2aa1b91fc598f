/* The register: a chained hash map of file names. See register.h. */
#include "register.h"

#include <fsproto/fsproto.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fnv.h"
#include "mem.h"

#define INITIAL_BUCKETS 64u

/* Initialises an empty register; see register.h. */
int fsd_register_init(struct fsd_register *reg) {
  reg->buckets = fsd_calloc(INITIAL_BUCKETS, sizeof(*reg->buckets));
  if (reg->buckets == NULL)
    return UV_ENOMEM;
  reg->nbuckets = INITIAL_BUCKETS;
  reg->count = 0;
  reg->gen = 0;
  return 0;
}

/* Frees all entries; see register.h. */
void fsd_register_free(struct fsd_register *reg) {
  for (size_t i = 0; i < reg->nbuckets; i++) {
    struct fsd_file *f = reg->buckets[i];
    while (f != NULL) {
      struct fsd_file *next = f->next;
      fsd_free(f);
      f = next;
    }
  }
  fsd_free(reg->buckets);
  reg->buckets = NULL;
  reg->nbuckets = 0;
  reg->count = 0;
}

static struct fsd_file **find_slot(const struct fsd_register *reg,
                                   const char *name, size_t len, uint32_t h) {
  struct fsd_file **pp = &reg->buckets[h & (reg->nbuckets - 1)];
  for (; *pp != NULL; pp = &(*pp)->next) {
    struct fsd_file *f = *pp;
    if (f->hash == h && f->name_len == len && memcmp(f->name, name, len) == 0)
      break;
  }
  return pp;
}

/* Looks a name up; see register.h. */
struct fsd_file *fsd_register_get(const struct fsd_register *reg,
                                  const char *name, size_t len) {
  return *find_slot(reg, name, len, fsd_fnv1a(name, len));
}

/* Doubles the bucket array. On allocation failure the map just stays denser,
 * which is slower but still correct. */
static void grow(struct fsd_register *reg) {
  size_t n = reg->nbuckets * 2;
  struct fsd_file **b = fsd_calloc(n, sizeof(*b));
  if (b == NULL)
    return;
  for (size_t i = 0; i < reg->nbuckets; i++) {
    struct fsd_file *f = reg->buckets[i];
    while (f != NULL) {
      struct fsd_file *next = f->next;
      f->next = b[f->hash & (n - 1)];
      b[f->hash & (n - 1)] = f;
      f = next;
    }
  }
  fsd_free(reg->buckets);
  reg->buckets = b;
  reg->nbuckets = n;
}

static int same_version(const struct fsd_file *f, const struct fsd_stamp *st) {
  return f->size == st->size && f->mtime_ns == st->mtime_ns &&
         f->ino == st->ino && f->ctime_ns == st->ctime_ns;
}

static void set_version(struct fsd_file *f, const struct fsd_stamp *st) {
  f->size = st->size;
  f->mtime_ns = st->mtime_ns;
  f->ino = st->ino;
  f->ctime_ns = st->ctime_ns;
}

/* Inserts or updates an entry; see register.h. */
int fsd_register_put(struct fsd_register *reg, const char *name, size_t len,
                     const struct fsd_stamp *st) {
  uint32_t h;
  struct fsd_file **pp;
  struct fsd_file *f;

  if (len == 0 || len > FSP_PATH_MAX)
    return UV_EINVAL;
  h = fsd_fnv1a(name, len);
  pp = find_slot(reg, name, len, h);
  if (*pp != NULL) {
    f = *pp;
    if (same_version(f, st))
      return 0;
    set_version(f, st);
    f->gen = ++reg->gen;
    return 2;
  }
  f = fsd_malloc(sizeof(*f) + len);
  if (f == NULL)
    return UV_ENOMEM;
  f->next = NULL;
  set_version(f, st);
  f->gen = ++reg->gen;
  f->hash = h;
  f->name_len = (uint16_t)len;
  memcpy(f->name, name, len);
  *pp = f;
  reg->count++;
  if (reg->count > reg->nbuckets)
    grow(reg);
  return 1;
}

/* Inserts or updates an entry known by size and mtime; see register.h. */
int fsd_register_set(struct fsd_register *reg, const char *name, size_t len,
                     uint64_t size, int64_t mtime_ns) {
  struct fsd_stamp st = {size, mtime_ns, 0, 0};

  return fsd_register_put(reg, name, len, &st);
}

/* Removes an entry; see register.h. */
int fsd_register_remove(struct fsd_register *reg, const char *name,
                        size_t len) {
  struct fsd_file **pp = find_slot(reg, name, len, fsd_fnv1a(name, len));
  struct fsd_file *f = *pp;

  if (f == NULL)
    return 0;
  *pp = f->next;
  fsd_free(f);
  reg->count--;
  reg->gen++;
  return 1;
}

/* Visits every entry; see register.h. */
int fsd_register_each(const struct fsd_register *reg,
                      int (*fn)(void *arg, const struct fsd_file *f),
                      void *arg) {
  for (size_t i = 0; i < reg->nbuckets; i++)
    for (const struct fsd_file *f = reg->buckets[i]; f != NULL; f = f->next) {
      int r = fn(arg, f);
      if (r != 0)
        return r;
    }
  return 0;
}

static uint64_t rev64(uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555u) | ((v & 0x5555555555555555u) << 1);
  v = ((v >> 2) & 0x3333333333333333u) | ((v & 0x3333333333333333u) << 2);
  v = ((v >> 4) & 0x0f0f0f0f0f0f0f0fu) | ((v & 0x0f0f0f0f0f0f0f0fu) << 4);
  v = ((v >> 8) & 0x00ff00ff00ff00ffu) | ((v & 0x00ff00ff00ff00ffu) << 8);
  v = ((v >> 16) & 0x0000ffff0000ffffu) | ((v & 0x0000ffff0000ffffu) << 16);
  return (v >> 32) | (v << 32);
}

/* One step of an incremental walk; see register.h. */
uint64_t fsd_register_scan(const struct fsd_register *reg, uint64_t cursor,
                           int (*fn)(void *arg, const struct fsd_file *f),
                           void *arg) {
  uint64_t mask = reg->nbuckets - 1;

  for (const struct fsd_file *f = reg->buckets[cursor & mask]; f != NULL;
       f = f->next)
    fn(arg, f);
  /* Increment the high bits first: a bucket that splits when the map
   * doubles leaves both halves at cursors not visited yet. */
  cursor |= ~mask;
  cursor = rev64(cursor);
  cursor++;
  return rev64(cursor);
}
