/* The allocation hook; see mem.h. */
#include "mem.h"

#include <stdlib.h>

static void *libc_malloc(size_t size, void *user) {
  (void)user;
  return malloc(size);
}

static void *libc_calloc(size_t n, size_t size, void *user) {
  (void)user;
  return calloc(n, size);
}

static void *libc_realloc(void *p, size_t size, void *user) {
  (void)user;
  return realloc(p, size);
}

static void libc_free(void *p, void *user) {
  (void)user;
  free(p);
}

static const struct fsd_mem libc_mem = {libc_malloc, libc_calloc, libc_realloc,
                                        libc_free, NULL};
static struct fsd_mem mem = {libc_malloc, libc_calloc, libc_realloc, libc_free,
                             NULL};

/* Replaces the allocator; see mem.h. */
void fsd_mem_set_allocator(const struct fsd_mem *m) {
  mem = m != NULL ? *m : libc_mem;
}

void *fsd_malloc(size_t size) {
  return mem.malloc(size, mem.user);
}

void *fsd_calloc(size_t n, size_t size) {
  return mem.calloc(n, size, mem.user);
}

void *fsd_realloc(void *p, size_t size) {
  return mem.realloc(p, size, mem.user);
}

void fsd_free(void *p) {
  mem.free(p, mem.user);
}
