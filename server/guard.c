/* Failure counting per source address. See guard.h. */
#include "guard.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Allocates the table (see guard.h). */
int fsd_guard_init(struct fsd_guard *g, size_t nslots) {
  g->slots = calloc(nslots, sizeof(*g->slots));
  g->nslots = g->slots != NULL ? nslots : 0;
  return g->slots != NULL ? 0 : UV_ENOMEM;
}

void fsd_guard_free(struct fsd_guard *g) {
  free(g->slots);
  g->slots = NULL;
  g->nslots = 0;
}

/* Maps an address to its key (see guard.h). */
void fsd_guard_key_of(const struct sockaddr *sa, struct fsd_guard_key *k) {
  memset(k, 0, sizeof(*k));
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    k->b[10] = 0xff;
    k->b[11] = 0xff;
    memcpy(k->b + 12, &in->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    const uint8_t *a = in6->sin6_addr.s6_addr;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};
    /* An IPv4 client on a dual-stack socket is the same host as on an
     * IPv4 socket: keep all of its address. */
    if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0)
      memcpy(k->b, a, 16);
    else
      memcpy(k->b, a, 8);
  }
}

static int live(const struct fsd_guard_slot *s, uint64_t now_ms) {
  return s->fails > 0 && now_ms - s->last_ms < FSD_GUARD_FORGET_MS;
}

static struct fsd_guard_slot *find(const struct fsd_guard *g,
                                   const struct fsd_guard_key *k,
                                   uint64_t now_ms) {
  for (size_t i = 0; i < g->nslots; i++)
    if (live(&g->slots[i], now_ms) &&
        memcmp(g->slots[i].key.b, k->b, sizeof(k->b)) == 0)
      return &g->slots[i];
  return NULL;
}

/* The delay for the next attempt (see guard.h). */
uint64_t fsd_guard_delay(const struct fsd_guard *g,
                         const struct fsd_guard_key *k, uint64_t now_ms) {
  const struct fsd_guard_slot *s = find(g, k, now_ms);
  uint64_t d;

  if (s == NULL)
    return 0;
  /* 50 ms << 7 is 6.4 s, already over the cap: no shift can overflow. */
  d = s->fails > 8 ? FSD_GUARD_MAX_MS
                   : (uint64_t)FSD_GUARD_BASE_MS << (s->fails - 1);
  return d < FSD_GUARD_MAX_MS ? d : FSD_GUARD_MAX_MS;
}

/* Counts a failure (see guard.h). */
void fsd_guard_fail(struct fsd_guard *g, const struct fsd_guard_key *k,
                    uint64_t now_ms) {
  struct fsd_guard_slot *s = find(g, k, now_ms), *victim = NULL;

  if (s != NULL) {
    if (s->fails < UINT32_MAX)
      s->fails++;
    s->last_ms = now_ms;
    return;
  }
  /* A free or expired slot, else the one with the oldest last failure. */
  for (size_t i = 0; i < g->nslots; i++) {
    struct fsd_guard_slot *c = &g->slots[i];
    if (!live(c, now_ms)) {
      victim = c;
      break;
    }
    if (victim == NULL || c->last_ms < victim->last_ms)
      victim = c;
  }
  if (victim == NULL)
    return; /* a table of no slots counts nothing */
  victim->key = *k;
  victim->fails = 1;
  victim->last_ms = now_ms;
}
