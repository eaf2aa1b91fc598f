/* FNV-1a, the hash of the server's path-keyed tables (register, tree
 * register, the watcher's pending stats, expected events): paths are
 * short, so a simple byte hash is as good as any. */
#ifndef FSD_FNV_H
#define FSD_FNV_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t fsd_fnv1a(const char *p, size_t len) {
  uint32_t h = 2166136261u;

  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)p[i]) * 16777619u;
  return h;
}

#endif /* FSD_FNV_H */
