/* Tests of fsc's transfer state machines (client/xfer.c), fed the frames a
 * server would send. */
#include <string.h>

#include <xxhash.h>

#include "hash.h"
#include "suites.h"
#include "xfer.h"

static struct fsp_msg begin(uint64_t size, uint64_t off, uint64_t len) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_BEGIN;
  m.u.begin.file_size = size;
  m.u.begin.offset = off;
  m.u.begin.length = len;
  m.u.begin.mtime_ns = 5;
  return m;
}

static struct fsp_msg end(uint64_t size, uint64_t hash) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_END;
  m.u.end.size = size;
  m.u.end.hash = hash;
  return m;
}

static struct fsp_msg digest(uint64_t off, uint64_t len, uint64_t hash) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_DIGEST;
  m.u.digest.offset = off;
  m.u.digest.length = len;
  m.u.digest.hash = hash;
  return m;
}

static const char text[] = "hello, world";

START_TEST(test_xfer_get_whole_file) {
  struct fsc_get g;
  ck_assert_int_eq(fsc_get_init(&g, 0), 0);
  ck_assert_int_eq(g.state, FSC_GET_BEGIN);
  struct fsp_msg b = begin(12, 0, 12);
  ck_assert_int_eq(fsc_get_on_begin(&g, &b), 0);
  /* Pieces of any size, in order. */
  ck_assert_int_eq(fsc_get_on_data(&g, text, 5), 0);
  ck_assert_int_eq(fsc_get_on_data(&g, text + 5, 0), 0);
  ck_assert_int_eq(fsc_get_on_data(&g, text + 5, 7), 0);
  struct fsp_msg e = end(12, XXH3_64bits(text, 12));
  ck_assert_int_eq(fsc_get_on_end(&g, &e), 0);
  ck_assert_int_eq(g.state, FSC_GET_DONE);
  ck_assert_uint_eq(fsc_get_whole_hash(&g), XXH3_64bits(text, 12));
  fsc_get_free(&g);
  fsc_get_free(&g); /* harmless twice */
}
END_TEST

START_TEST(test_xfer_get_empty_file) {
  struct fsc_get g;
  ck_assert_int_eq(fsc_get_init(&g, 0), 0);
  struct fsp_msg b = begin(0, 0, 0);
  ck_assert_int_eq(fsc_get_on_begin(&g, &b), 0);
  struct fsp_msg e = end(0, 0x2d06800538d394c2ull);
  ck_assert_int_eq(fsc_get_on_end(&g, &e), 0);
  fsc_get_free(&g);
}
END_TEST

START_TEST(test_xfer_get_corruption_detected) {
  struct fsc_get g;
  fsc_get_init(&g, 0);
  struct fsp_msg b = begin(12, 0, 12);
  fsc_get_on_begin(&g, &b);
  fsc_get_on_data(&g, "hello, World", 12);
  struct fsp_msg e = end(12, XXH3_64bits(text, 12));
  ck_assert_int_eq(fsc_get_on_end(&g, &e), FSC_ECHECKSUM);
  ck_assert_int_eq(g.state, FSC_GET_FAILED);
  fsc_get_free(&g);
}
END_TEST

START_TEST(test_xfer_get_short_and_long) {
  struct fsc_get g;
  fsc_get_init(&g, 0);
  struct fsp_msg b = begin(12, 0, 12);
  fsc_get_on_begin(&g, &b);
  fsc_get_on_data(&g, text, 11);
  /* END that agrees with the short data still fails: BEGIN promised 12. */
  struct fsp_msg e = end(11, XXH3_64bits(text, 11));
  ck_assert_int_eq(fsc_get_on_end(&g, &e), FSC_ESIZE);
  fsc_get_free(&g);

  fsc_get_init(&g, 0);
  fsc_get_on_begin(&g, &b);
  ck_assert_int_eq(fsc_get_on_data(&g, text, 12), 0);
  ck_assert_int_eq(fsc_get_on_data(&g, "x", 1), FSC_ETOOMUCH);
  fsc_get_free(&g);
}
END_TEST

START_TEST(test_xfer_get_out_of_sequence) {
  struct fsc_get g;
  fsc_get_init(&g, 0);
  ck_assert_int_eq(fsc_get_on_data(&g, "x", 1), FSC_ESTATE);
  fsc_get_free(&g);
  fsc_get_init(&g, 0);
  struct fsp_msg e = end(0, 0);
  ck_assert_int_eq(fsc_get_on_end(&g, &e), FSC_ESTATE);
  fsc_get_free(&g);
  /* A BEGIN for another range than asked is refused, as is one whose range
   * does not fit the file. */
  fsc_get_init(&g, 0);
  struct fsp_msg b = begin(12, 3, 9);
  ck_assert_int_eq(fsc_get_on_begin(&g, &b), FSC_ERANGE);
  fsc_get_free(&g);
  fsc_get_init(&g, 0);
  b = begin(12, 0, 13);
  ck_assert_int_eq(fsc_get_on_begin(&g, &b), FSC_ERANGE);
  fsc_get_free(&g);
}
END_TEST

START_TEST(test_xfer_get_resume_match) {
  struct fsc_get g;
  ck_assert_int_eq(fsc_get_init(&g, 5), 0);
  ck_assert_int_eq(g.state, FSC_GET_PREFIX);
  fsc_get_prefix_data(&g, text, 2);
  fsc_get_prefix_data(&g, text + 2, 3);
  fsc_get_prefix_done(&g);
  ck_assert_int_eq(g.state, FSC_GET_DIGEST);
  struct fsp_msg d = digest(0, 5, XXH3_64bits(text, 5));
  ck_assert_int_eq(fsc_get_on_digest(&g, &d), 1);
  ck_assert_uint_eq(g.offset, 5);
  struct fsp_msg b = begin(12, 5, 7);
  ck_assert_int_eq(fsc_get_on_begin(&g, &b), 0);
  fsc_get_on_data(&g, text + 5, 7);
  struct fsp_msg e = end(7, XXH3_64bits(text + 5, 7));
  ck_assert_int_eq(fsc_get_on_end(&g, &e), 0);
  /* The whole local file (prefix + rest) hashes like the server's file. */
  ck_assert_uint_eq(fsc_get_whole_hash(&g), XXH3_64bits(text, 12));
  fsc_get_free(&g);
}
END_TEST

START_TEST(test_xfer_get_resume_mismatch_restarts) {
  struct fsc_get g;
  fsc_get_init(&g, 5);
  fsc_get_prefix_data(&g, "HELLO", 5);
  fsc_get_prefix_done(&g);
  struct fsp_msg d = digest(0, 5, XXH3_64bits(text, 5));
  ck_assert_int_eq(fsc_get_on_digest(&g, &d), 0);
  ck_assert_uint_eq(g.offset, 0);
  struct fsp_msg b = begin(12, 0, 12);
  ck_assert_int_eq(fsc_get_on_begin(&g, &b), 0);
  fsc_get_on_data(&g, text, 12);
  struct fsp_msg e = end(12, XXH3_64bits(text, 12));
  ck_assert_int_eq(fsc_get_on_end(&g, &e), 0);
  ck_assert_uint_eq(fsc_get_whole_hash(&g), XXH3_64bits(text, 12));
  fsc_get_free(&g);

  /* The server's file is shorter than the partial copy: DIGEST's length is
   * clamped, and that is no match either. */
  fsc_get_init(&g, 5);
  fsc_get_prefix_data(&g, text, 5);
  fsc_get_prefix_done(&g);
  d = digest(0, 3, XXH3_64bits(text, 3));
  ck_assert_int_eq(fsc_get_on_digest(&g, &d), 0);
  fsc_get_free(&g);
}
END_TEST

START_TEST(test_xfer_put_chunks_and_end) {
  struct fsc_put p;
  ck_assert_int_eq(fsc_put_init(&p, 12, 65536, 5), 0);
  ck_assert_uint_eq(p.chunk, 5);
  ck_assert_int_eq(fsc_put_on_read(&p, text, 5, 5), FSC_ESTATE);
  fsc_put_free(&p);

  fsc_put_init(&p, 12, 65536, 5);
  ck_assert_int_eq(fsc_put_on_ready(&p), 0);
  ck_assert_uint_eq(fsc_put_next_len(&p), 5);
  ck_assert_int_eq(fsc_put_on_read(&p, text, 5, 5), 0);
  ck_assert_int_eq(fsc_put_on_read(&p, text + 5, 5, 5), 0);
  ck_assert_uint_eq(fsc_put_next_len(&p), 2);
  struct fsp_msg e;
  ck_assert_int_eq(fsc_put_end(&p, &e, 3), FSC_ESTATE); /* not all read */
  fsc_put_free(&p);

  fsc_put_init(&p, 12, 65536, 5);
  fsc_put_on_ready(&p);
  fsc_put_on_read(&p, text, 5, 5);
  fsc_put_on_read(&p, text + 5, 5, 5);
  fsc_put_on_read(&p, text + 10, 2, 2);
  ck_assert_uint_eq(fsc_put_next_len(&p), 0);
  ck_assert_int_eq(fsc_put_end(&p, &e, 3), 0);
  ck_assert_uint_eq(e.op, FSP_OP_END);
  ck_assert_uint_eq(e.id, 3);
  ck_assert_uint_eq(e.u.end.size, 12);
  ck_assert_uint_eq(e.u.end.hash, XXH3_64bits(text, 12));
  struct fsp_msg info;
  memset(&info, 0, sizeof info);
  info.op = FSP_OP_INFO;
  info.u.entry.size = 11;
  ck_assert_int_eq(fsc_put_on_info(&p, &info), FSC_ESIZE);
  fsc_put_free(&p);
}
END_TEST

START_TEST(test_xfer_put_chunk_capped_by_server) {
  struct fsc_put p;
  fsc_put_init(&p, 10u << 20, 65536, 1u << 20);
  ck_assert_uint_eq(p.chunk, 65536);
  ck_assert_uint_eq(fsc_put_next_len(&p), 65536);
  fsc_put_free(&p);
}
END_TEST

START_TEST(test_xfer_put_file_shrank) {
  struct fsc_put p;
  fsc_put_init(&p, 12, 65536, 8);
  fsc_put_on_ready(&p);
  ck_assert_int_eq(fsc_put_on_read(&p, text, 8, 8), 0);
  ck_assert_int_eq(fsc_put_on_read(&p, text + 8, 1, 4), FSC_ECHANGED);
  ck_assert_int_eq(p.state, FSC_PUT_FAILED);
  fsc_put_free(&p);
  ck_assert_str_eq(fsc_xfer_strerror(FSC_ECHECKSUM),
                   "checksum mismatch: data corrupted in transit");
  ck_assert_ptr_null(fsc_xfer_strerror(-1));
}
END_TEST

START_TEST(test_xfer_hash_matches_xxh3) {
  /* Whatever vector code fsc_hash_update picks, fed in whatever pieces,
   * it must give XXH3_64bits()'s answer: lengths around the 64-byte stripe
   * and 1 KiB block edges, split at odd places. */
  static unsigned char buf[70000];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(i * 2654435761u >> 13);
  const size_t lens[] = {0,   1,    63,   64,   65,   239,   240,
                         241, 1023, 1024, 1025, 4096, 65536, sizeof buf};
  XXH3_state_t *st = XXH3_createState();
  ck_assert_ptr_nonnull(st);
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    size_t len = lens[k];
    for (size_t step = 1; step <= 4099; step = step * 3 + 2) {
      XXH3_64bits_reset(st);
      for (size_t off = 0; off < len; off += step)
        fsc_hash_update(st, buf + off, len - off < step ? len - off : step);
      ck_assert_msg(XXH3_64bits_digest(st) == XXH3_64bits(buf, len),
                    "len %zu step %zu (%s)", len, step, fsc_hash_impl());
    }
  }
  XXH3_freeState(st);
}
END_TEST

Suite *xfer_suite(void) {
  Suite *s = suite_create("xfer");
  TCase *tc = tcase_create("get");
  tcase_add_test(tc, test_xfer_get_whole_file);
  tcase_add_test(tc, test_xfer_get_empty_file);
  tcase_add_test(tc, test_xfer_get_corruption_detected);
  tcase_add_test(tc, test_xfer_get_short_and_long);
  tcase_add_test(tc, test_xfer_get_out_of_sequence);
  tcase_add_test(tc, test_xfer_get_resume_match);
  tcase_add_test(tc, test_xfer_get_resume_mismatch_restarts);
  suite_add_tcase(s, tc);
  tc = tcase_create("put");
  tcase_add_test(tc, test_xfer_put_chunks_and_end);
  tcase_add_test(tc, test_xfer_put_chunk_capped_by_server);
  tcase_add_test(tc, test_xfer_put_file_shrank);
  tcase_add_test(tc, test_xfer_hash_matches_xxh3);
  suite_add_tcase(s, tc);
  return s;
}
