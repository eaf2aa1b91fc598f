/* What an idle connection costs: after a handshake and a transfer, a
 * server engine must have given back its record buffers and both memory
 * BIOs' growth, so that thousands of idle TLS connections stay cheap.
 * Counted exactly by routing OpenSSL's allocations through counters. */
#include <string.h>

#include <openssl/crypto.h>

#include "helpers.h"

/* Bytes OpenSSL holds right now. Each block carries its size in front. */
static size_t live;

#define HDR 16

static void *count_malloc(size_t n, const char *file, int line) {
  unsigned char *p = malloc(n + HDR);

  (void)file;
  (void)line;
  if (p == NULL)
    return NULL;
  memcpy(p, &n, sizeof(n));
  live += n;
  return p + HDR;
}

static void count_free(void *ptr, const char *file, int line) {
  unsigned char *p = ptr;
  size_t n;

  (void)file;
  (void)line;
  if (p == NULL)
    return;
  memcpy(&n, p - HDR, sizeof(n));
  live -= n;
  free(p - HDR);
}

static void *count_realloc(void *ptr, size_t n, const char *file, int line) {
  unsigned char *p = ptr, *q;
  size_t old = 0;

  if (p == NULL)
    return count_malloc(n, file, line);
  memcpy(&old, p - HDR, sizeof(old));
  q = realloc(p - HDR, n + HDR);
  if (q == NULL)
    return NULL;
  memcpy(q, &n, sizeof(n));
  live = live - old + n;
  return q + HDR;
}

/* Sends len bytes from one engine to the other and reads them all. */
static void transfer(struct fstls_engine *from, struct fstls_engine *to,
                     size_t len) {
  static unsigned char buf[65536];
  size_t got = 0;

  memset(buf, 'm', sizeof(buf));
  while (len > 0) {
    size_t k = len < sizeof(buf) ? len : sizeof(buf);
    ssize_t r;
    ck_assert_int_eq(fstls_write(from, buf, k), (ssize_t)k);
    tt_move(from, to, 0);
    while ((r = fstls_read(to, buf, sizeof(buf))) > 0)
      got += (size_t)r;
    ck_assert_int_eq(r, FSTLS_EAGAIN);
    len -= k;
  }
  (void)got;
}

/* Bound on what an idle server connection may keep: the SSL object with
 * its TLS 1.3 keys and two empty BIOs (about 14 KiB with OpenSSL 3.0).
 * Keeping the grown BIOs and record buffers would cost about 160 KiB. */
#define IDLE_MAX 16384

START_TEST(test_memory_idle_connection) {
  SSL_CTX *sctx, *cctx;
  struct fstls_engine s, c;
  size_t idle;

  if (CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free) != 1) {
    /* OpenSSL already allocated in this process (CK_FORK=no): the count
     * would be wrong, so there is nothing to measure. */
    return;
  }
  sctx = tt_server_ctx(NULL);
  ck_assert_int_eq(fstls_client_ctx_new(NULL, &cctx, NULL, 0), 0);
  ck_assert_int_eq(fstls_engine_client(&c, cctx, "fsd.test", NULL), 0);
  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(tt_handshake(&c, &s, 0, NULL), 0);
  transfer(&c, &s, 1024 * 1024);
  transfer(&s, &c, 1024 * 1024);
  /* The count moves with both engines; take the client's share out by
   * measuring the server's alone: free it and see what comes back. */
  idle = live;
  fstls_engine_free(&s);
  ck_assert_msg(idle - live <= IDLE_MAX,
                "an idle server connection holds %zu bytes", idle - live);
  fstls_engine_free(&c);
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
}
END_TEST

Suite *memory_suite(void) {
  Suite *s = suite_create("memory");
  TCase *tc = tcase_create("memory");

  tcase_add_test(tc, test_memory_idle_connection);
  suite_add_tcase(s, tc);
  return s;
}
