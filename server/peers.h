/* Connections per client address, for --max-clients-per-ip. IPv4 addresses
 * and their IPv4-mapped IPv6 form count as one address. A hash table keyed
 * with a random seed (chosen addresses cannot pile into one bucket); an
 * address with no connection left holds no memory. No I/O. */
#ifndef FSD_PEERS_H
#define FSD_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct fsd_peer; /* one address and its count (peers.c) */

struct fsd_peers {
  struct fsd_peer **buckets; /* chains, nbuckets of them */
  size_t nbuckets;           /* a power of two */
  size_t n;                  /* addresses held */
  uint64_t seed;             /* hash seed */
};

/* Initialises p, empty, hashing with seed. Allocates nothing (the table
 * is made at the first address). */
void fsd_peers_init(struct fsd_peers *p, uint64_t seed);

/* Frees everything p holds. */
void fsd_peers_free(struct fsd_peers *p);

/* Counts one more connection from sa (AF_INET or AF_INET6). Returns the
 * address's new count, UV_ENOMEM, or UV_EAFNOSUPPORT for another family. */
int fsd_peers_add(struct fsd_peers *p, const struct sockaddr *sa);

/* Counts one connection from sa less (one that fsd_peers_add() counted). */
void fsd_peers_remove(struct fsd_peers *p, const struct sockaddr *sa);

/* Connections counted from sa. */
unsigned fsd_peers_count(const struct fsd_peers *p, const struct sockaddr *sa);

#endif /* FSD_PEERS_H */
