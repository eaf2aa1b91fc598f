/* xxHash's own XXH3 code, compiled into this file with -mavx2 so that it
 * picks its AVX2 accumulator loop. Called only after the CPU was found to
 * have AVX2 (hash.c). The inlined functions get a private prefix, so they
 * do not clash with libxxhash's. */
#define XXH_INLINE_ALL
#include <xxhash.h>

void fsc_hash_update_avx2(XXH3_state_t *st, const void *p, size_t n);

void fsc_hash_update_avx2(XXH3_state_t *st, const void *p, size_t n) {
  XXH3_64bits_update(st, p, n);
}
