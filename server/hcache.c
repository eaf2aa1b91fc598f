/* The hash cache; see hcache.h. */
#include "hcache.h"

#include <string.h>

/* Empties the cache; see hcache.h. */
void fsd_hcache_init(struct fsd_hcache *hc) {
  memset(hc, 0, sizeof(*hc));
}

static int same_file(const struct fsd_file_id *a, const struct fsd_file_id *b) {
  return a->ino == b->ino && a->dev == b->dev && a->size == b->size &&
         a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* Looks up a hash; see hcache.h. */
int fsd_hcache_find(const struct fsd_hcache *hc, const struct fsd_file_id *id,
                    uint64_t *hash) {
  for (unsigned i = 0; i < FSD_HCACHE_SLOTS; i++)
    if (same_file(&hc->slot[i].id, id)) {
      *hash = hc->slot[i].hash;
      return 1;
    }
  return 0;
}

/* Remembers a hash; see hcache.h. */
int fsd_hcache_put(struct fsd_hcache *hc, const struct fsd_file_id *id,
                   uint64_t hash, int64_t now_ns) {
  struct fsd_hcache_entry *e;

  if (now_ns - id->ctime_ns < FSD_HCACHE_RACY_NS)
    return 0;
  e = &hc->slot[hc->next++ % FSD_HCACHE_SLOTS];
  e->id = *id;
  e->hash = hash;
  return 1;
}
