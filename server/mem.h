/* fsd's allocation hook. Every allocation of fsdcore goes through these
 * wrappers, so that tests can make any one of them fail (as nghttp2's
 * failmalloc tests do) and check that the code reports a clear error and
 * leaks nothing. The daemon never changes the allocator. */
#ifndef FSD_MEM_H
#define FSD_MEM_H

#include <stddef.h>

/* An allocator: the C library's four functions with a user pointer. */
struct fsd_mem {
  void *(*malloc)(size_t size, void *user);
  void *(*calloc)(size_t n, size_t size, void *user);
  void *(*realloc)(void *p, size_t size, void *user);
  void (*free)(void *p, void *user);
  void *user; /* passed to each call */
};

/* Makes m the allocator of fsdcore, or the C library's when m is NULL. The
 * struct is copied. Only call it while nothing allocated with the previous
 * allocator is still held, or make both allocators compatible. */
void fsd_mem_set_allocator(const struct fsd_mem *m);

/* malloc(), calloc(), realloc() and free() through the current allocator. */
void *fsd_malloc(size_t size);
void *fsd_calloc(size_t n, size_t size);
void *fsd_realloc(void *p, size_t size);
void fsd_free(void *p);

#endif /* FSD_MEM_H */
