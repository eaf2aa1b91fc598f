/* Helpers shared by the libfsproto unit tests. */
#ifndef FSP_TEST_HELPERS_H
#define FSP_TEST_HELPERS_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "fsproto/fsproto.h"

/* A cheap assertion for hot loops. Check's ck_assert_* records a "last
 * point reached" on every call, through a pipe to the parent process when
 * tests fork, which makes loops of millions of checks slow; this one only
 * costs when it fails. */
#define TH_REQUIRE(cond)                                                       \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg("%s:%d: requirement failed: %s", __FILE__, __LINE__,        \
                   #cond);                                                     \
  } while (0)

/* Suite constructors, one per test program (see main.c). */
Suite *error_suite(void);
Suite *version_suite(void);
Suite *name_suite(void);
Suite *frame_suite(void);
Suite *decoder_suite(void);
Suite *msg_suite(void);
Suite *spec_suite(void);
Suite *path_suite(void);
Suite *tree_suite(void);
Suite *auth_suite(void);

/* Command line of the test program (main.c), for tests that read files. */
extern int fsp_test_argc;
extern char **fsp_test_argv;

/* Parses whitespace-separated hex bytes from text into out[0..cap). Returns
 * the number of bytes, or -1 on a bad token or when cap is too small. */
ssize_t th_hex(const char *text, uint8_t *out, size_t cap);

/* Makes an fsp_str from a C string (without its NUL). */
struct fsp_str th_str(const char *s);

/* Asserts that a and b are the same message: op, id and every field that op
 * uses, strings compared byte for byte. where names the case in failures. */
void th_check_msg_eq(const struct fsp_msg *a, const struct fsp_msg *b,
                     const char *where);
/* The same for messages of a connection speaking `version`. */
void th_check_msg_eq_v(const struct fsp_msg *a, const struct fsp_msg *b,
                       unsigned version, const char *where);

/* One sample message for every opcode this library knows, with field values
 * chosen to show byte-order and sign mistakes (all bytes distinct, top bits
 * set, negative times). */
size_t th_samples(const struct fsp_msg **out);

/* Encodes m into a fresh buffer of exactly the frame's size (malloc'd;
 * caller frees). Fails the test on an encoding error. */
uint8_t *th_encode(const struct fsp_msg *m, size_t *len);

/* Guard pages: th_guard_alloc(len) returns a pointer p such that p[0..len)
 * is readable and writable and p[len] is the first byte of a PROT_NONE page,
 * so any read past the end crashes the test. Release with th_guard_free(). */
uint8_t *th_guard_alloc(size_t len);
void th_guard_free(uint8_t *p, size_t len);
/* Copies buf[0..len) to the end of a guard allocation. */
uint8_t *th_guard_copy(const void *buf, size_t len);

#endif
