/* XXH3-64 update dispatch. See hash.h. */
#include "hash.h"

#if defined(FSC_HAVE_XXH_AVX2)
/* In hash_avx2.c, compiled with -mavx2. */
void fsc_hash_update_avx2(XXH3_state_t *st, const void *p, size_t n);

static int use_avx2 = -1; /* not known yet */

static int have_avx2(void) {
  if (use_avx2 < 0) {
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  return use_avx2;
}
#endif

void fsc_hash_update(XXH3_state_t *st, const void *p, size_t n) {
#if defined(FSC_HAVE_XXH_AVX2)
  if (have_avx2()) {
    fsc_hash_update_avx2(st, p, n);
    return;
  }
#endif
  XXH3_64bits_update(st, p, n);
}

const char *fsc_hash_impl(void) {
#if defined(FSC_HAVE_XXH_AVX2)
  if (have_avx2())
    return "avx2";
#endif
  return "default";
}
