/* XXH3-64 streaming updates using the widest vector unit the CPU has.
 *
 * Every transferred byte is hashed, so the hash is a good part of fsc's CPU
 * time: Debian's libxxhash is built for the x86-64 baseline (SSE2), and an
 * AVX2 build of the same code hashes about twice as fast. The states are
 * plain XXH3_state_t from libxxhash (the vector code only changes how the
 * accumulators are computed, not the state layout or the result), so
 * XXH3_createState(), XXH3_64bits_reset() and XXH3_64bits_digest() stay
 * libxxhash's. */
#ifndef FSC_HASH_H
#define FSC_HASH_H

#include <stddef.h>

#include <xxhash.h>

/* Same contract as XXH3_64bits_update(). */
void fsc_hash_update(XXH3_state_t *st, const void *p, size_t n);

/* The code path in use: "avx2" or "default". */
const char *fsc_hash_impl(void);

#endif /* FSC_HASH_H */
