/* The incremental decoder, fsp_decoder_feed() (frame.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* What a decoder run produced: one record per frame, DATA pieces joined. */
struct rec {
  uint8_t op;
  uint32_t id;
  uint32_t len;
  uint8_t *bytes; /* payload (FRAME) or reassembled DATA bytes */
  size_t nbytes;
  unsigned pieces; /* DATA: items it came in */
};

struct run {
  struct rec recs[128];
  size_t n;
  int in_data; /* a DATA frame is partly received */
};

static void run_free(struct run *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->recs[i].bytes);
  r->n = 0;
}

static struct rec *new_rec(struct run *r, const struct fsp_frame *f) {
  struct rec *c;

  TH_REQUIRE(r->n < sizeof(r->recs) / sizeof(r->recs[0]));
  c = &r->recs[r->n++];
  c->op = f->op;
  c->id = f->id;
  c->len = f->len;
  c->bytes = malloc(f->len + 1u);
  TH_REQUIRE(c->bytes != NULL);
  c->nbytes = 0;
  c->pieces = 0;
  return c;
}

/* Adds one item, checking the DATA contract on the way: pieces come in order
 * with no gap, point into the input, are non-empty except for an empty
 * frame, and exactly the final one has last set. */
static void add_item(struct run *r, const struct fsp_item *it,
                     const uint8_t *in, size_t in_len) {
  struct rec *c;

  switch (it->type) {
  case FSP_ITEM_FRAME:
    if (r->in_data)
      ck_abort_msg("a frame inside a DATA frame");
    TH_REQUIRE(it->frame.op != FSP_OP_DATA);
    TH_REQUIRE(it->frame.payload == in + FSP_HDR_LEN);
    c = new_rec(r, &it->frame);
    if (it->frame.len > 0)
      memcpy(c->bytes, it->frame.payload, it->frame.len);
    c->nbytes = it->frame.len;
    break;
  case FSP_ITEM_DATA:
    TH_REQUIRE(it->frame.op == FSP_OP_DATA);
    if (!r->in_data) {
      TH_REQUIRE(it->data_off == 0);
      new_rec(r, &it->frame);
      r->in_data = 1;
    }
    c = &r->recs[r->n - 1];
    TH_REQUIRE(it->frame.id == c->id);
    TH_REQUIRE(it->frame.len == c->len);
    TH_REQUIRE(it->data_off == c->nbytes);
    TH_REQUIRE(it->frame.payload == it->data);
    if (c->len > 0)
      TH_REQUIRE(it->data_len > 0);
    TH_REQUIRE(it->data_len <= c->len - c->nbytes);
    if (!(it->data >= in && it->data + it->data_len <= in + in_len))
      ck_abort_msg("DATA piece outside the input");
    if (it->data_len > 0)
      memcpy(c->bytes + c->nbytes, it->data, it->data_len);
    c->nbytes += it->data_len;
    c->pieces++;
    TH_REQUIRE(it->last == (c->nbytes == c->len));
    if (it->last)
      r->in_data = 0;
    break;
  default:
    ck_abort_msg("item type %d with bytes consumed", it->type);
  }
}

/* Feeds stream[0..len) in chunks of the given sizes (cycled; 0 = all at
 * once), keeping unconsumed bytes as a caller must. The kept bytes always
 * end at a guard page, so an over-read crashes. Returns the sticky error or
 * 0. */
static int feed_chunks(struct fsp_decoder *d, const uint8_t *stream, size_t len,
                       const size_t *chunks, size_t nchunks, struct run *r) {
  uint8_t *g = th_guard_alloc(len);
  uint8_t *end = g + len;
  size_t kept = 0, off = 0, ci = 0;
  int err = 0;

  r->n = 0;
  r->in_data = 0;
  while (off < len && err == 0) {
    size_t k = nchunks ? chunks[ci++ % nchunks] : len;

    if (k > len - off)
      k = len - off;
    memmove(end - kept - k, end - kept, kept);
    memcpy(end - k, stream + off, k);
    kept += k;
    off += k;
    for (;;) {
      struct fsp_item it;
      const uint8_t *in = end - kept;
      ssize_t n = fsp_decoder_feed(d, in, kept, &it);

      if (n < 0) {
        err = (int)n;
        break;
      }
      TH_REQUIRE((size_t)n <= kept);
      if (n == 0) {
        TH_REQUIRE(it.type == FSP_ITEM_NONE);
        break;
      }
      add_item(r, &it, in, kept);
      kept -= (size_t)n;
    }
    /* Only part of a non-DATA frame (or of a header) ever stays behind. */
    TH_REQUIRE(kept <= FSP_HDR_LEN +
                           (d->max_payload ? d->max_payload : FSP_MIN_PAYLOAD));
  }
  if (err == 0) {
    TH_REQUIRE(kept == 0);
    if (r->in_data)
      ck_abort_msg("stream ended inside a DATA frame");
  }
  th_guard_free(g, len);
  return err;
}

/* The reference: the stateless decoder over the whole stream. */
static void reference(const uint8_t *stream, size_t len, struct run *r) {
  size_t off = 0;

  r->n = 0;
  while (off < len) {
    struct fsp_frame f;
    ssize_t n = fsp_frame_decode(stream + off, len - off, 0, &f);
    struct rec *c;

    TH_REQUIRE(n > 0);
    c = new_rec(r, &f);
    if (f.len > 0)
      memcpy(c->bytes, f.payload, f.len);
    c->nbytes = f.len;
    off += (size_t)n;
  }
}

static void check_same(const struct run *a, const struct run *b,
                       const char *how) {
  if (a->n != b->n)
    ck_abort_msg("%s: %zu frames, reference %zu", how, a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    const struct rec *x = &a->recs[i], *y = &b->recs[i];
    if (!(x->op == y->op && x->id == y->id && x->len == y->len))
      ck_abort_msg("%s: frame %zu header differs", how, i);
    if (x->nbytes != y->nbytes)
      ck_abort_msg("%s: frame %zu length", how, i);
    if (!(x->nbytes == 0 || memcmp(x->bytes, y->bytes, x->nbytes) == 0))
      ck_abort_msg("%s: frame %zu bytes differ", how, i);
  }
}

/* Test stream: every sample message, DATA frames of several sizes (one empty,
 * one with payload bytes that look like a header), an unknown opcode, and
 * DATA of two requests interleaved with other frames. */
static uint8_t *make_stream(size_t *len) {
  const struct fsp_msg *samples;
  size_t n = th_samples(&samples);
  size_t cap = 8192, off = 0;
  uint8_t *buf = malloc(cap);
  static uint8_t big[700];
  static const uint32_t data_lens[] = {0, 1, 12, 13, 700, 0};

  ck_assert_ptr_nonnull(buf);
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (uint8_t)(i * 7 + 3);
  fsp_header_write(big, FSP_OP_OK, 5, 0); /* header-like bytes in data */
  for (size_t i = 0; i < n; i++) {
    ssize_t k = fsp_msg_encode(buf + off, cap - off, &samples[i]);
    ck_assert_int_gt(k, 0);
    ck_assert_uint_le((size_t)k, cap - off);
    off += (size_t)k;
  }
  for (size_t i = 0; i < sizeof(data_lens) / sizeof(data_lens[0]); i++) {
    struct fsp_msg m = {.op = FSP_OP_DATA, .id = 100 + (uint32_t)(i % 2)};
    m.u.text.ptr = (const char *)big;
    m.u.text.len = data_lens[i];
    off += (size_t)fsp_msg_encode(buf + off, cap - off, &m);
    fsp_header_write(buf + off, FSP_OP_STAT, 200 + (uint32_t)i, 1);
    buf[off + FSP_HDR_LEN] = 'q';
    off += FSP_HDR_LEN + 1;
  }
  fsp_header_write(buf + off, 0xee, 300, 3); /* unknown opcode */
  memcpy(buf + off + FSP_HDR_LEN, "\xf5\x01\x00", 3);
  off += FSP_HDR_LEN + 3;
  ck_assert_uint_le(off, cap);
  *len = off;
  return buf;
}

START_TEST(test_decoder_whole_buffer_matches_frame_decode) {
  size_t len;
  uint8_t *s = make_stream(&len);
  static struct run ref, got;
  struct fsp_decoder d;

  reference(s, len, &ref);
  fsp_decoder_init(&d, 0);
  ck_assert_int_eq(feed_chunks(&d, s, len, NULL, 0, &got), 0);
  check_same(&got, &ref, "whole buffer");
  /* Whole frames in one buffer come as one piece per DATA frame. */
  for (size_t i = 0; i < got.n; i++)
    if (got.recs[i].op == FSP_OP_DATA)
      ck_assert_uint_eq(got.recs[i].pieces, 1);
  run_free(&ref);
  run_free(&got);
  free(s);
}
END_TEST

START_TEST(test_decoder_byte_at_a_time) {
  size_t len, one = 1;
  uint8_t *s = make_stream(&len);
  static struct run ref, got;
  struct fsp_decoder d;

  reference(s, len, &ref);
  memset(&d, 0, sizeof(d)); /* zero-filled works as well as init */
  ck_assert_int_eq(feed_chunks(&d, s, len, &one, 1, &got), 0);
  check_same(&got, &ref, "byte at a time");
  /* A 700-byte DATA frame fed byte by byte comes in 700 pieces. */
  for (size_t i = 0; i < got.n; i++)
    if (got.recs[i].op == FSP_OP_DATA)
      ck_assert_uint_eq(got.recs[i].pieces,
                        got.recs[i].len ? got.recs[i].len : 1);
  run_free(&ref);
  run_free(&got);
  free(s);
}
END_TEST

/* Two chunks, split at every point of the stream. */
START_TEST(test_decoder_split_everywhere) {
  size_t len;
  uint8_t *s = make_stream(&len);
  static struct run ref, got;

  reference(s, len, &ref);
  for (size_t cut = 1; cut < len; cut++) {
    size_t chunks[2] = {cut, len};
    struct fsp_decoder d;
    char how[32];

    fsp_decoder_init(&d, 0);
    ck_assert_int_eq(feed_chunks(&d, s, len, chunks, 2, &got), 0);
    snprintf(how, sizeof(how), "split at %zu", cut);
    check_same(&got, &ref, how);
    run_free(&got);
  }
  run_free(&ref);
  free(s);
}
END_TEST

/* Chunk sizes from a fixed pseudo-random sequence (deterministic). */
START_TEST(test_decoder_random_chunks) {
  size_t len;
  uint8_t *s = make_stream(&len);
  static struct run ref, got;
  uint32_t x = 2463534242u + (uint32_t)_i;
  size_t chunks[64];

  reference(s, len, &ref);
  for (size_t i = 0; i < 64; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    chunks[i] = 1 + x % 40;
  }
  {
    struct fsp_decoder d;
    fsp_decoder_init(&d, 0);
    ck_assert_int_eq(feed_chunks(&d, s, len, chunks, 64, &got), 0);
  }
  check_same(&got, &ref, "random chunks");
  run_free(&ref);
  run_free(&got);
  free(s);
}
END_TEST

START_TEST(test_decoder_empty_data_frame) {
  uint8_t buf[FSP_HDR_LEN + 1];
  struct fsp_decoder d;
  struct fsp_item it;

  fsp_decoder_init(&d, 0);
  fsp_header_write(buf, FSP_OP_DATA, 42, 0);
  buf[FSP_HDR_LEN] = 0xf5; /* start of the next frame, not consumed */
  ck_assert_int_eq(fsp_decoder_feed(&d, buf, sizeof(buf), &it), FSP_HDR_LEN);
  ck_assert_int_eq(it.type, FSP_ITEM_DATA);
  ck_assert_uint_eq(it.frame.id, 42);
  ck_assert_uint_eq(it.frame.len, 0);
  ck_assert_uint_eq(it.data_len, 0);
  ck_assert_uint_eq(it.data_off, 0);
  ck_assert_int_eq(it.last, 1);
  /* Nothing is left of it. */
  ck_assert_int_eq(fsp_decoder_feed(&d, buf + FSP_HDR_LEN, 1, &it), 0);
  ck_assert_int_eq(it.type, FSP_ITEM_NONE);
}
END_TEST

START_TEST(test_decoder_data_streams_zero_copy) {
  uint8_t buf[FSP_HDR_LEN + 10];
  struct fsp_decoder d;
  struct fsp_item it;

  fsp_decoder_init(&d, 0);
  fsp_header_write(buf, FSP_OP_DATA, 7, 10);
  memcpy(buf + FSP_HDR_LEN, "0123456789", 10);
  /* The header alone is kept by the caller, not consumed. */
  ck_assert_int_eq(fsp_decoder_feed(&d, buf, FSP_HDR_LEN, &it), 0);
  ck_assert_int_eq(it.type, FSP_ITEM_NONE);
  /* Header and three bytes: one piece, pointing into the input. */
  ck_assert_int_eq(fsp_decoder_feed(&d, buf, FSP_HDR_LEN + 3, &it),
                   FSP_HDR_LEN + 3);
  ck_assert_int_eq(it.type, FSP_ITEM_DATA);
  ck_assert_ptr_eq(it.data, buf + FSP_HDR_LEN);
  ck_assert_uint_eq(it.data_len, 3);
  ck_assert_int_eq(it.last, 0);
  /* No input while streaming: nothing happens. */
  ck_assert_int_eq(fsp_decoder_feed(&d, buf + 15, 0, &it), 0);
  ck_assert_int_eq(it.type, FSP_ITEM_NONE);
  /* The rest, and no more than the rest. */
  {
    uint8_t more[12];
    memcpy(more, buf + 15, 7);
    memcpy(more + 7, "\xf5\x01\x40\x00\x00", 5);
    ck_assert_int_eq(fsp_decoder_feed(&d, more, sizeof(more), &it), 7);
    ck_assert_ptr_eq(it.data, more);
    ck_assert_uint_eq(it.data_off, 3);
    ck_assert_uint_eq(it.data_len, 7);
    ck_assert_int_eq(it.last, 1);
  }
}
END_TEST

START_TEST(test_decoder_partial_frame_consumes_nothing) {
  uint8_t buf[FSP_HDR_LEN + 5];
  struct fsp_decoder d;
  struct fsp_item it;

  fsp_decoder_init(&d, 0);
  fsp_header_write(buf, FSP_OP_STAT, 1, 5);
  memcpy(buf + FSP_HDR_LEN, "a.txt", 5);
  for (size_t k = 0; k < sizeof(buf); k++) {
    ck_assert_int_eq(fsp_decoder_feed(&d, buf, k, &it), 0);
    ck_assert_int_eq(it.type, FSP_ITEM_NONE);
  }
  ck_assert_int_eq(fsp_decoder_feed(&d, buf, sizeof(buf), &it), sizeof(buf));
  ck_assert_int_eq(it.type, FSP_ITEM_FRAME);
  ck_assert_uint_eq(it.frame.op, FSP_OP_STAT);
}
END_TEST

/* Framing errors: reported once the bad byte is in, whatever follows, and
 * sticky: a valid frame afterwards gets the same error. */
struct broken {
  size_t at;     /* byte to change */
  uint8_t value; /* new value */
  int err;
};

static const struct broken broken[] = {
    {0, 0x00, FSP_EMAGIC},   {0, 0x47, FSP_EMAGIC}, /* "GET /" */
    {0, 0xff, FSP_EMAGIC},   {1, 0x00, FSP_EVERSION},
    {1, 0x02, FSP_EVERSION}, {3, 0x01, FSP_EFLAGS},
    {3, 0x80, FSP_EFLAGS},   {8, 0xff, FSP_ETOOBIG}, /* len 0xff000005 */
    {9, 0x01, FSP_ETOOBIG},                          /* len 0x00010005 */
};

START_TEST(test_decoder_framing_errors_sticky) {
  const struct broken *b = &broken[_i];
  uint8_t good[FSP_HDR_LEN + 5], bad[FSP_HDR_LEN + 5];
  struct fsp_decoder d;
  struct fsp_item it;

  fsp_header_write(good, FSP_OP_STAT, 1, 5);
  memcpy(good + FSP_HDR_LEN, "a.txt", 5);
  memcpy(bad, good, sizeof(bad));
  bad[b->at] = b->value;

  /* Fed whole. */
  fsp_decoder_init(&d, 0);
  ck_assert_int_eq(fsp_decoder_feed(&d, bad, sizeof(bad), &it), b->err);
  ck_assert_int_eq(fsp_decoder_feed(&d, good, sizeof(good), &it), b->err);
  ck_assert_int_eq(fsp_decoder_feed(&d, good, 0, &it), b->err);
  ck_assert_int_eq(it.type, FSP_ITEM_NONE);

  /* Fed growing prefixes: no error before the bad byte (or, for the length,
   * the whole header) is in. */
  fsp_decoder_init(&d, 0);
  for (size_t k = 0; k <= sizeof(bad); k++) {
    ssize_t r = fsp_decoder_feed(&d, bad, k, &it);
    size_t when = b->err == FSP_ETOOBIG ? FSP_HDR_LEN : b->at + 1;
    if (k < when) {
      ck_assert_int_eq(r, 0);
    } else {
      ck_assert_int_eq(r, b->err);
      break;
    }
  }
  ck_assert_int_eq(fsp_decoder_feed(&d, good, sizeof(good), &it), b->err);
}
END_TEST

/* Good frames before the break are delivered; the error comes after them. */
START_TEST(test_decoder_error_after_good_frames) {
  uint8_t buf[3 * FSP_HDR_LEN];
  struct fsp_decoder d;
  struct fsp_item it;

  fsp_header_write(buf, FSP_OP_OK, 1, 0);
  fsp_header_write(buf + FSP_HDR_LEN, FSP_OP_READY, 2, 0);
  memcpy(buf + 2 * FSP_HDR_LEN, "GET / HTTP/1", FSP_HDR_LEN);
  fsp_decoder_init(&d, 0);
  ck_assert_int_eq(fsp_decoder_feed(&d, buf, sizeof(buf), &it), FSP_HDR_LEN);
  ck_assert_uint_eq(it.frame.op, FSP_OP_OK);
  ck_assert_int_eq(
      fsp_decoder_feed(&d, buf + FSP_HDR_LEN, sizeof(buf) - FSP_HDR_LEN, &it),
      FSP_HDR_LEN);
  ck_assert_uint_eq(it.frame.op, FSP_OP_READY);
  ck_assert_int_eq(
      fsp_decoder_feed(&d, buf + 2 * FSP_HDR_LEN, FSP_HDR_LEN, &it),
      FSP_EMAGIC);
}
END_TEST

/* Hostile lengths reach the decoder as a header only: refused at once
 * (never waiting for 4 GiB to arrive), for DATA and other frames alike. */
START_TEST(test_decoder_hostile_lengths) {
  static const uint32_t lens[] = {
      FSP_MIN_PAYLOAD + 1, FSP_MAX_PAYLOAD, FSP_MAX_PAYLOAD + 1, 0xfffffff4u,
      0xfffffffcu,         0xfffffffdu,     0xfffffffeu,         0xffffffffu};
  static const uint8_t ops[] = {FSP_OP_DATA, FSP_OP_PUT, 0xee};

  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    for (size_t j = 0; j < sizeof(ops); j++) {
      uint8_t hdr[FSP_HDR_LEN];
      struct fsp_decoder d;
      struct fsp_item it;

      fsp_decoder_init(&d, 0);
      fsp_header_write(hdr, ops[j], 1, lens[i]);
      ck_assert_int_eq(fsp_decoder_feed(&d, hdr, sizeof(hdr), &it),
                       FSP_ETOOBIG);
    }
  }
}
END_TEST

/* A zero-filled decoder accepts FSP_MIN_PAYLOAD; after the peer's HELLO the
 * caller may raise max_payload, but never past FSP_MAX_PAYLOAD. */
START_TEST(test_decoder_max_payload) {
  uint8_t hdr[FSP_HDR_LEN];
  struct fsp_decoder d;
  struct fsp_item it;

  memset(&d, 0, sizeof(d));
  fsp_header_write(hdr, FSP_OP_DATA, 1, FSP_MIN_PAYLOAD);
  ck_assert_int_eq(fsp_decoder_feed(&d, hdr, sizeof(hdr), &it), 0);
  fsp_header_write(hdr, FSP_OP_DATA, 1, FSP_MIN_PAYLOAD + 1);
  ck_assert_int_eq(fsp_decoder_feed(&d, hdr, sizeof(hdr), &it), FSP_ETOOBIG);

  fsp_decoder_init(&d, 0);
  ck_assert_uint_eq(d.max_payload, FSP_MIN_PAYLOAD);
  d.max_payload = FSP_DEFAULT_PAYLOAD;
  fsp_header_write(hdr, FSP_OP_DATA, 1, FSP_DEFAULT_PAYLOAD);
  ck_assert_int_eq(fsp_decoder_feed(&d, hdr, sizeof(hdr), &it), 0);

  fsp_decoder_init(&d, UINT32_MAX);
  fsp_header_write(hdr, FSP_OP_DATA, 1, FSP_MAX_PAYLOAD + 1);
  ck_assert_int_eq(fsp_decoder_feed(&d, hdr, sizeof(hdr), &it), FSP_ETOOBIG);
}
END_TEST

START_TEST(test_decoder_unknown_opcode_is_a_frame) {
  uint8_t buf[FSP_HDR_LEN + 2];
  struct fsp_decoder d;
  struct fsp_item it;
  struct fsp_msg m;

  fsp_decoder_init(&d, 0);
  fsp_header_write(buf, 0x99, 12, 2);
  buf[FSP_HDR_LEN] = buf[FSP_HDR_LEN + 1] = 0;
  ck_assert_int_eq(fsp_decoder_feed(&d, buf, sizeof(buf), &it), sizeof(buf));
  ck_assert_int_eq(it.type, FSP_ITEM_FRAME);
  ck_assert_uint_eq(it.frame.op, 0x99);
  ck_assert_int_eq(fsp_msg_decode(&it.frame, &m), FSP_EOPCODE);
  ck_assert_uint_eq(m.id, 12);
}
END_TEST

Suite *decoder_suite(void) {
  Suite *s = suite_create("decoder");
  TCase *tc = tcase_create("feeding");
  TCase *te = tcase_create("errors");

  tcase_add_test(tc, test_decoder_whole_buffer_matches_frame_decode);
  tcase_add_test(tc, test_decoder_byte_at_a_time);
  tcase_add_test(tc, test_decoder_split_everywhere);
  tcase_add_loop_test(tc, test_decoder_random_chunks, 0, 8);
  tcase_add_test(tc, test_decoder_empty_data_frame);
  tcase_add_test(tc, test_decoder_data_streams_zero_copy);
  tcase_add_test(tc, test_decoder_partial_frame_consumes_nothing);
  tcase_add_test(tc, test_decoder_unknown_opcode_is_a_frame);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);

  tcase_add_loop_test(te, test_decoder_framing_errors_sticky, 0,
                      (int)(sizeof(broken) / sizeof(broken[0])));
  tcase_add_test(te, test_decoder_error_after_good_frames);
  tcase_add_test(te, test_decoder_hostile_lengths);
  tcase_add_test(te, test_decoder_max_payload);
  suite_add_tcase(s, te);
  return s;
}
