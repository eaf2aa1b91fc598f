/* Frame headers and the stateless frame decoder (frame.c). */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* STAT id 7 "a.txt", as in protocol.md. */
static const uint8_t stat_frame[] = {0xf5, 0x01, 0x11, 0x00, 0x00, 0x00,
                                     0x00, 0x07, 0x00, 0x00, 0x00, 0x05,
                                     'a',  '.',  't',  'x',  't'};

START_TEST(test_frame_header_write_layout) {
  uint8_t buf[FSP_HDR_LEN + 1];
  static const uint8_t want[FSP_HDR_LEN] = {0xf5, 0x01, 0x44, 0x00, 0x01, 0x02,
                                            0x03, 0x04, 0xa1, 0xb2, 0xc3, 0xd4};

  memset(buf, 0xee, sizeof(buf));
  fsp_header_write(buf, FSP_OP_BEGIN, 0x01020304, 0xa1b2c3d4);
  ck_assert_mem_eq(buf, want, FSP_HDR_LEN);
  ck_assert_uint_eq(buf[FSP_HDR_LEN], 0xee); /* nothing past the header */
}
END_TEST

START_TEST(test_frame_header_round_trip) {
  static const uint32_t ids[] = {0, 1, 0x80000000u, 0xffffffffu};
  static const uint32_t lens[] = {0, 1, 0x00010000u, FSP_MAX_PAYLOAD};
  uint8_t buf[FSP_HDR_LEN];
  struct fsp_frame f;

  for (size_t i = 0; i < 4; i++) {
    for (size_t j = 0; j < 4; j++) {
      fsp_header_write(buf, FSP_OP_DATA, ids[i], lens[j]);
      ck_assert_int_eq(fsp_header_parse(buf, FSP_MAX_PAYLOAD, &f), 0);
      ck_assert_uint_eq(f.op, FSP_OP_DATA);
      ck_assert_uint_eq(f.flags, 0);
      ck_assert_uint_eq(f.id, ids[i]);
      ck_assert_uint_eq(f.len, lens[j]);
      ck_assert_ptr_null(f.payload);
    }
  }
}
END_TEST

START_TEST(test_frame_decode_whole) {
  struct fsp_frame f;
  ssize_t n = fsp_frame_decode(stat_frame, sizeof(stat_frame), 0, &f);

  ck_assert_int_eq(n, sizeof(stat_frame));
  ck_assert_uint_eq(f.op, FSP_OP_STAT);
  ck_assert_uint_eq(f.id, 7);
  ck_assert_uint_eq(f.len, 5);
  ck_assert_ptr_eq(f.payload, stat_frame + FSP_HDR_LEN);
  ck_assert_int_eq(fsp_frame_need(stat_frame, sizeof(stat_frame), 0), 0);
}
END_TEST

/* Every prefix of a frame is FSP_EAGAIN and says how much is still missing;
 * the whole frame then decodes. */
START_TEST(test_frame_decode_split) {
  size_t cut = (size_t)_i;
  struct fsp_frame f;
  ssize_t need;

  memset(&f, 0xa5, sizeof(f));
  ck_assert_int_eq(fsp_frame_decode(stat_frame, cut, 0, &f), FSP_EAGAIN);
  need = fsp_frame_need(stat_frame, cut, 0);
  if (cut < FSP_HDR_LEN)
    ck_assert_int_eq(need, FSP_HDR_LEN - cut);
  else
    ck_assert_int_eq(need, sizeof(stat_frame) - cut);
  ck_assert_int_eq(fsp_frame_decode(stat_frame, sizeof(stat_frame), 0, &f),
                   sizeof(stat_frame));
}
END_TEST

/* Every prefix again, but each ends at a PROT_NONE page: a decoder that
 * peeks beyond len crashes here. */
START_TEST(test_frame_decode_no_over_read) {
  for (size_t cut = 0; cut <= sizeof(stat_frame); cut++) {
    uint8_t *p = th_guard_copy(stat_frame, cut);
    struct fsp_frame f;
    ssize_t want = cut == sizeof(stat_frame) ? (ssize_t)cut : FSP_EAGAIN;

    ck_assert_int_eq(fsp_frame_decode(p, cut, 0, &f), want);
    ck_assert_int_ge(fsp_frame_need(p, cut, 0), 0);
    th_guard_free(p, cut);
  }
}
END_TEST

START_TEST(test_frame_decode_two_frames_in_one_buffer) {
  uint8_t buf[2 * sizeof(stat_frame) + FSP_HDR_LEN];
  struct fsp_frame f;
  size_t off = 0;
  ssize_t n;

  memcpy(buf, stat_frame, sizeof(stat_frame));
  fsp_header_write(buf + sizeof(stat_frame), FSP_OP_OK, 7, 0);
  memcpy(buf + sizeof(stat_frame) + FSP_HDR_LEN, stat_frame,
         sizeof(stat_frame));

  n = fsp_frame_decode(buf + off, sizeof(buf) - off, 0, &f);
  ck_assert_int_eq(n, sizeof(stat_frame));
  ck_assert_uint_eq(f.op, FSP_OP_STAT);
  off += (size_t)n;
  n = fsp_frame_decode(buf + off, sizeof(buf) - off, 0, &f);
  ck_assert_int_eq(n, FSP_HDR_LEN);
  ck_assert_uint_eq(f.op, FSP_OP_OK);
  ck_assert_uint_eq(f.len, 0);
  off += (size_t)n;
  n = fsp_frame_decode(buf + off, sizeof(buf) - off, 0, &f);
  ck_assert_int_eq(n, sizeof(stat_frame));
  ck_assert_ptr_eq(f.payload, buf + off + FSP_HDR_LEN);
  off += (size_t)n;
  ck_assert_uint_eq(off, sizeof(buf));
  ck_assert_int_eq(fsp_frame_decode(buf + off, 0, 0, &f), FSP_EAGAIN);
}
END_TEST

/* Hostile payload lengths against each receiver limit. The length is judged
 * from the header alone, before any payload arrives, and no length makes
 * the size computation wrap. */
struct hostile {
  uint32_t max; /* max_payload passed */
  uint32_t len; /* announced payload length */
  int too_big;  /* expected FSP_ETOOBIG */
};

static const struct hostile hostile[] = {
    {FSP_MIN_PAYLOAD, 0, 0},
    {FSP_MIN_PAYLOAD, 1, 0},
    {FSP_MIN_PAYLOAD, FSP_MIN_PAYLOAD, 0},
    {FSP_MIN_PAYLOAD, FSP_MIN_PAYLOAD + 1, 1},
    {0, FSP_MIN_PAYLOAD, 0}, /* 0 means FSP_MIN_PAYLOAD */
    {0, FSP_MIN_PAYLOAD + 1, 1},
    {FSP_DEFAULT_PAYLOAD, FSP_DEFAULT_PAYLOAD, 0},
    {FSP_DEFAULT_PAYLOAD, FSP_DEFAULT_PAYLOAD + 1, 1},
    {FSP_MAX_PAYLOAD, FSP_MAX_PAYLOAD, 0},
    {FSP_MAX_PAYLOAD, FSP_MAX_PAYLOAD + 1, 1},
    {UINT32_MAX, FSP_MAX_PAYLOAD, 0}, /* limits above the maximum are capped */
    {UINT32_MAX, FSP_MAX_PAYLOAD + 1, 1},
    {UINT32_MAX, 0x7fffffffu, 1},
    {UINT32_MAX, 0x80000000u, 1},
    {UINT32_MAX, 0xfffffff3u, 1}, /* + header = 0xffffffff */
    {UINT32_MAX, 0xfffffff4u, 1}, /* + header wraps a 32-bit sum to 0 */
    {UINT32_MAX, 0xfffffffcu, 1},
    {UINT32_MAX, 0xfffffffdu, 1},
    {UINT32_MAX, 0xfffffffeu, 1},
    {UINT32_MAX, 0xffffffffu, 1},
    {FSP_MIN_PAYLOAD, 0xffffffffu, 1},
};

START_TEST(test_frame_hostile_lengths) {
  const struct hostile *h = &hostile[_i];
  uint8_t buf[FSP_HDR_LEN + 4] = {0};
  struct fsp_frame f;
  int want = h->too_big ? FSP_ETOOBIG : 0;
  ssize_t n;

  fsp_header_write(buf, FSP_OP_DATA, 1, h->len);
  ck_assert_int_eq(fsp_header_parse(buf, h->max, &f), want);
  ck_assert_uint_eq(f.len, h->len);
  /* Only the header is there: an error at once, or wait for the payload. */
  n = fsp_frame_decode(buf, FSP_HDR_LEN, h->max, &f);
  if (h->too_big) {
    ck_assert_int_eq(n, FSP_ETOOBIG);
    ck_assert_int_eq(fsp_frame_need(buf, FSP_HDR_LEN, h->max), FSP_ETOOBIG);
  } else if (h->len == 0) {
    ck_assert_int_eq(n, FSP_HDR_LEN);
  } else {
    ck_assert_int_eq(n, FSP_EAGAIN);
    ck_assert_int_eq(fsp_frame_need(buf, FSP_HDR_LEN, h->max), h->len);
    ck_assert_int_eq(fsp_frame_need(buf, FSP_HDR_LEN + 4, h->max),
                     h->len > 4 ? h->len - 4 : 0);
  }
}
END_TEST

/* A whole frame of the largest payload decodes. */
START_TEST(test_frame_decode_max_payload) {
  size_t total = FSP_MAX_FRAME_LEN;
  uint8_t *buf = th_guard_alloc(total);
  struct fsp_frame f;

  fsp_header_write(buf, FSP_OP_DATA, 9, FSP_MAX_PAYLOAD);
  buf[total - 1] = 0x5a;
  ck_assert_int_eq(fsp_frame_decode(buf, total, FSP_MAX_PAYLOAD, &f), total);
  ck_assert_uint_eq(f.payload[FSP_MAX_PAYLOAD - 1], 0x5a);
  ck_assert_int_eq(fsp_frame_decode(buf, total - 1, FSP_MAX_PAYLOAD, &f),
                   FSP_EAGAIN);
  ck_assert_int_eq(fsp_frame_decode(buf, total, FSP_DEFAULT_PAYLOAD, &f),
                   FSP_ETOOBIG);
  th_guard_free(buf, total);
}
END_TEST

/* Broken framing is reported from the first byte that shows it, also while
 * the header is still incomplete, and has priority over the length. */
START_TEST(test_frame_bad_magic) {
  for (unsigned v = 0; v < 256; v++) {
    uint8_t buf[FSP_HDR_LEN];
    struct fsp_frame f;

    if (v == FSP_MAGIC)
      continue;
    fsp_header_write(buf, FSP_OP_OK, 1, 0xffffffffu);
    buf[0] = (uint8_t)v;
    ck_assert_int_eq(fsp_header_parse(buf, 0, &f), FSP_EMAGIC);
    for (size_t cut = 1; cut <= FSP_HDR_LEN; cut++) {
      ck_assert_int_eq(fsp_frame_decode(buf, cut, 0, &f), FSP_EMAGIC);
      ck_assert_int_eq(fsp_frame_need(buf, cut, 0), FSP_EMAGIC);
    }
  }
}
END_TEST

START_TEST(test_frame_bad_version) {
  static const uint8_t versions[] = {0x00, 0x02, 0x7f, 0x80, 0xff};

  for (size_t i = 0; i < sizeof(versions); i++) {
    uint8_t buf[FSP_HDR_LEN];
    struct fsp_frame f;

    fsp_header_write(buf, FSP_OP_HELLO, 0, 20);
    buf[1] = versions[i];
    ck_assert_int_eq(fsp_header_parse(buf, 0, &f), FSP_EVERSION);
    ck_assert_int_eq(fsp_frame_decode(buf, 1, 0, &f), FSP_EAGAIN);
    for (size_t cut = 2; cut <= FSP_HDR_LEN; cut++)
      ck_assert_int_eq(fsp_frame_decode(buf, cut, 0, &f), FSP_EVERSION);
  }
}
END_TEST

START_TEST(test_frame_bad_flags) {
  for (unsigned v = 1; v < 256; v++) {
    uint8_t buf[FSP_HDR_LEN];
    struct fsp_frame f;

    fsp_header_write(buf, FSP_OP_LIST, 5, 0);
    buf[3] = (uint8_t)v;
    ck_assert_int_eq(fsp_header_parse(buf, 0, &f), FSP_EFLAGS);
    ck_assert_int_eq(fsp_frame_decode(buf, 3, 0, &f), FSP_EAGAIN);
    for (size_t cut = 4; cut <= FSP_HDR_LEN; cut++)
      ck_assert_int_eq(fsp_frame_decode(buf, cut, 0, &f), FSP_EFLAGS);
  }
}
END_TEST

/* An unknown opcode is not a framing error: the frame decodes, so the
 * receiver can skip it and answer UNKNOWN_OP. */
START_TEST(test_frame_unknown_opcode_keeps_framing) {
  unsigned unknown = 0;

  for (unsigned op = 0; op < 256; op++) {
    uint8_t buf[FSP_HDR_LEN + 3] = {0};
    struct fsp_frame f;

    if (fsp_op_name((uint8_t)op) != NULL)
      continue;
    unknown++;
    fsp_header_write(buf, (uint8_t)op, 77, 3);
    ck_assert_int_eq(fsp_frame_decode(buf, sizeof(buf), 0, &f), sizeof(buf));
    ck_assert_uint_eq(f.op, op);
    ck_assert_uint_eq(f.id, 77);
  }
  ck_assert_uint_eq(unknown, 256 - 32);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *frame_suite(void) {
  Suite *s = suite_create("frame");
  TCase *tc = tcase_create("decode");
  TCase *th = tcase_create("hostile");

  tcase_add_test(tc, test_frame_header_write_layout);
  tcase_add_test(tc, test_frame_header_round_trip);
  tcase_add_test(tc, test_frame_decode_whole);
  tcase_add_loop_test(tc, test_frame_decode_split, 0, N(stat_frame));
  tcase_add_test(tc, test_frame_decode_no_over_read);
  tcase_add_test(tc, test_frame_decode_two_frames_in_one_buffer);
  tcase_add_test(tc, test_frame_decode_max_payload);
  suite_add_tcase(s, tc);

  tcase_add_loop_test(th, test_frame_hostile_lengths, 0, N(hostile));
  tcase_add_test(th, test_frame_bad_magic);
  tcase_add_test(th, test_frame_bad_version);
  tcase_add_test(th, test_frame_bad_flags);
  tcase_add_test(th, test_frame_unknown_opcode_keeps_framing);
  suite_add_tcase(s, th);
  return s;
}
