/* Connections per client address; see peers.h. */
#include "peers.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xxhash.h>

struct fsd_peer {
  struct fsd_peer *next; /* in its bucket */
  uint8_t addr[16];      /* IPv6, or IPv4-mapped IPv6 */
  unsigned count;        /* connections from addr */
};

#define FIRST_BUCKETS 64u

/* The 16-byte key of sa; -1 for a family without one. */
static int key_of(const struct sockaddr *sa, uint8_t key[16]) {
  if (sa->sa_family == AF_INET6) {
    memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
  }
  if (sa->sa_family == AF_INET) {
    memset(key, 0, 10);
    key[10] = key[11] = 0xff;
    memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 0;
  }
  return -1;
}

static size_t bucket_of(const struct fsd_peers *p, const uint8_t key[16],
                        size_t nbuckets) {
  return (size_t)(XXH3_64bits_withSeed(key, 16, p->seed) & (nbuckets - 1));
}

/* Sets up an empty table; see peers.h. */
void fsd_peers_init(struct fsd_peers *p, uint64_t seed) {
  p->buckets = NULL;
  p->nbuckets = 0;
  p->n = 0;
  p->seed = seed;
}

/* Frees the table; see peers.h. */
void fsd_peers_free(struct fsd_peers *p) {
  for (size_t i = 0; p->buckets != NULL && i < p->nbuckets; i++)
    while (p->buckets[i] != NULL) {
      struct fsd_peer *e = p->buckets[i];
      p->buckets[i] = e->next;
      free(e);
    }
  free(p->buckets);
  p->buckets = NULL;
  p->nbuckets = p->n = 0;
}

static struct fsd_peer **find(const struct fsd_peers *p,
                              const uint8_t key[16]) {
  struct fsd_peer **pp;

  if (p->buckets == NULL)
    return NULL;
  pp = &p->buckets[bucket_of(p, key, p->nbuckets)];

  while (*pp != NULL && memcmp((*pp)->addr, key, 16) != 0)
    pp = &(*pp)->next;
  return pp;
}

/* Doubles the buckets; on failure the table stays as it is (only slower). */
static void grow(struct fsd_peers *p) {
  size_t nb = p->nbuckets * 2;
  struct fsd_peer **b = calloc(nb, sizeof(*b));

  if (b == NULL)
    return;
  for (size_t i = 0; i < p->nbuckets; i++)
    while (p->buckets[i] != NULL) {
      struct fsd_peer *e = p->buckets[i];
      size_t j = bucket_of(p, e->addr, nb);
      p->buckets[i] = e->next;
      e->next = b[j];
      b[j] = e;
    }
  free(p->buckets);
  p->buckets = b;
  p->nbuckets = nb;
}

/* Counts a connection; see peers.h. */
int fsd_peers_add(struct fsd_peers *p, const struct sockaddr *sa) {
  uint8_t key[16];
  struct fsd_peer **pp, *e;

  if (key_of(sa, key) != 0)
    return UV_EAFNOSUPPORT;
  if (p->buckets == NULL) {
    p->buckets = calloc(FIRST_BUCKETS, sizeof(*p->buckets));
    if (p->buckets == NULL)
      return UV_ENOMEM;
    p->nbuckets = FIRST_BUCKETS;
  }
  pp = find(p, key);
  if (*pp != NULL)
    return (int)++(*pp)->count;
  e = malloc(sizeof(*e));
  if (e == NULL)
    return UV_ENOMEM;
  memcpy(e->addr, key, 16);
  e->count = 1;
  e->next = NULL;
  *pp = e;
  if (++p->n > 2 * p->nbuckets)
    grow(p);
  return 1;
}

/* Counts a connection less; see peers.h. */
void fsd_peers_remove(struct fsd_peers *p, const struct sockaddr *sa) {
  uint8_t key[16];
  struct fsd_peer **pp, *e;

  if (key_of(sa, key) != 0 || (pp = find(p, key)) == NULL)
    return;
  e = *pp;
  if (e == NULL || --e->count > 0)
    return;
  *pp = e->next;
  free(e);
  p->n--;
}

/* Connections from an address; see peers.h. */
unsigned fsd_peers_count(const struct fsd_peers *p, const struct sockaddr *sa) {
  uint8_t key[16];
  struct fsd_peer *e, **pp;

  if (key_of(sa, key) != 0 || (pp = find(p, key)) == NULL)
    return 0;
  e = *pp;
  return e != NULL ? e->count : 0;
}
