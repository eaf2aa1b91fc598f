/* Failed authentications per source address, and the growing delay they
 * earn (protocol.md section 11): after failures from one address, its next
 * attempts are held before they are verified, 50 ms after one failure,
 * doubling up to 5 s, forgotten 10 minutes after the last failure. IPv6
 * addresses count per /64, since one host usually holds a whole /64.
 *
 * The table is bounded: when it is full, the entry whose last failure is the
 * oldest makes room. Time is passed in (milliseconds from any monotonic
 * clock), so the tests need no clock. No I/O, no locking: the loop thread
 * owns it. */
#ifndef FSD_GUARD_H
#define FSD_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FSD_GUARD_SLOTS 4096u       /* addresses remembered */
#define FSD_GUARD_BASE_MS 50u       /* delay after one failure */
#define FSD_GUARD_MAX_MS 5000u      /* longest delay */
#define FSD_GUARD_FORGET_MS 600000u /* failures forgotten after 10 min */

/* The part of an address that failures are counted by. */
struct fsd_guard_key {
  uint8_t b[16]; /* IPv4 as ::ffff:a.b.c.d, IPv6 with the low 64 bits 0 */
};

struct fsd_guard_slot {
  struct fsd_guard_key key;
  uint32_t fails;   /* failures counted, 0 for a free slot */
  uint64_t last_ms; /* time of the latest failure */
};

struct fsd_guard {
  struct fsd_guard_slot *slots; /* nslots entries */
  size_t nslots;
};

/* Allocates a table of nslots entries (FSD_GUARD_SLOTS for fsd). Returns 0
 * or UV_ENOMEM. */
int fsd_guard_init(struct fsd_guard *g, size_t nslots);
void fsd_guard_free(struct fsd_guard *g);

/* The key of a peer address (AF_INET or AF_INET6; anything else maps to
 * one shared key). */
void fsd_guard_key_of(const struct sockaddr *sa, struct fsd_guard_key *k);

/* How long to hold the next attempt from k, in ms: 0 without recent
 * failures. */
uint64_t fsd_guard_delay(const struct fsd_guard *g,
                         const struct fsd_guard_key *k, uint64_t now_ms);

/* Records a failed attempt from k at now_ms. */
void fsd_guard_fail(struct fsd_guard *g, const struct fsd_guard_key *k,
                    uint64_t now_ms);

#endif /* FSD_GUARD_H */
