/* Typed messages: encoding, decoding and validation (msg.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Decodes payload[0..len) as op, with the payload ending at a guard page. */
static int decode_guarded(uint8_t op, uint32_t id, const uint8_t *payload,
                          size_t len, struct fsp_msg *m) {
  uint8_t *p = th_guard_copy(payload, len);
  struct fsp_frame f = {op, 0, id, (uint32_t)len, p};
  int r = fsp_msg_decode(&f, m);

  th_guard_free(p, len);
  return r;
}

/* encode -> fsp_frame_decode -> fsp_msg_decode gives back every field. */
START_TEST(test_msg_round_trip_every_opcode) {
  const struct fsp_msg *samples;
  size_t n = th_samples(&samples);
  const struct fsp_msg *m = &samples[_i];
  struct fsp_frame f;
  struct fsp_msg d;
  uint8_t *buf;
  size_t len;
  char where[64];

  ck_assert_int_lt(_i, (int)n);
  snprintf(where, sizeof(where), "%s", fsp_op_name(m->op));
  buf = th_encode(m, &len);
  ck_assert_int_eq(fsp_frame_decode(buf, len, FSP_MAX_PAYLOAD, &f), len);
  ck_assert_uint_eq(f.op, m->op);
  ck_assert_uint_eq(f.id, m->id);
  ck_assert_int_eq(fsp_msg_decode(&f, &d), 0);
  th_check_msg_eq(m, &d, where);
  /* Strings point into the frame, not into the original message. */
  if (m->op == FSP_OP_STAT)
    ck_assert_ptr_eq(d.u.name.ptr, (const char *)buf + FSP_HDR_LEN);
  free(buf);
}
END_TEST

/* Every opcode has a sample, so the round trip covers all of them. */
START_TEST(test_msg_samples_cover_every_opcode) {
  const struct fsp_msg *samples;
  size_t n = th_samples(&samples);
  unsigned seen[256] = {0};

  for (size_t i = 0; i < n; i++)
    seen[samples[i].op]++;
  for (unsigned op = 0; op < 256; op++)
    if (fsp_op_name((uint8_t)op) != NULL)
      ck_assert_msg(seen[op] == 1, "%s has %u samples",
                    fsp_op_name((uint8_t)op), seen[op]);
}
END_TEST

/* snprintf style: too small a buffer reports the size and writes nothing;
 * the exact size works and writes nothing past the frame. */
START_TEST(test_msg_encode_reports_needed_size) {
  const struct fsp_msg *samples;
  const struct fsp_msg *m;
  uint8_t *buf;
  ssize_t need;

  th_samples(&samples);
  m = &samples[_i];
  need = fsp_msg_encode(NULL, 0, m);
  ck_assert_int_ge(need, FSP_HDR_LEN);
  buf = malloc((size_t)need + 16);
  ck_assert_ptr_nonnull(buf);
  for (size_t cap = 0; cap < (size_t)need; cap++) {
    memset(buf, 0xa5, (size_t)need + 16);
    ck_assert_int_eq(fsp_msg_encode(buf, cap, m), need);
    for (size_t i = 0; i < (size_t)need + 16; i++)
      if (buf[i] != 0xa5)
        ck_abort_msg("%s: byte %zu written with cap %zu", fsp_op_name(m->op), i,
                     cap);
  }
  memset(buf, 0xa5, (size_t)need + 16);
  ck_assert_int_eq(fsp_msg_encode(buf, (size_t)need + 16, m), need);
  for (size_t i = (size_t)need; i < (size_t)need + 16; i++)
    ck_assert_uint_eq(buf[i], 0xa5);
  ck_assert_uint_eq(buf[0], FSP_MAGIC);
  free(buf);
}
END_TEST

/* Decoding every truncation of every sample must fail cleanly (or, for a
 * rest field that may be shorter, succeed) without reading past the payload,
 * which ends at a guard page. */
START_TEST(test_msg_decode_truncated_no_over_read) {
  const struct fsp_msg *samples;
  const struct fsp_msg *m;
  struct fsp_msg d;
  uint8_t *buf;
  size_t len;

  th_samples(&samples);
  m = &samples[_i];
  buf = th_encode(m, &len);
  for (size_t plen = 0; plen <= len - FSP_HDR_LEN; plen++) {
    int r = decode_guarded(m->op, m->id, buf + FSP_HDR_LEN, plen, &d);
    if (plen == len - FSP_HDR_LEN)
      ck_assert_int_eq(r, 0);
    ck_assert_msg(r == 0 || r == FSP_EMALFORMED || r == FSP_EBADNAME ||
                      r == FSP_EUTF8 || r == FSP_EBADUSER,
                  "%s truncated to %zu: %s", fsp_op_name(m->op), plen,
                  fsp_err_name(r));
    ck_assert_uint_eq(d.op, m->op);
    ck_assert_uint_eq(d.id, m->id);
  }
  free(buf);
}
END_TEST

struct bad {
  uint8_t op;
  const char *hex; /* payload */
  int err;
  const char *why;
};

#define U64_0 " 00 00 00 00 00 00 00 00 "
#define B32 U64_0 U64_0 U64_0 U64_0 /* a nonce */
#define B96 B32 B32 B32             /* AUTH's nonce and signature */
#define A32                                                                    \
  " 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61"                           \
  " 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 61 "
static const struct bad bad[] = {
    /* Fixed layouts: exact length. */
    {FSP_OP_LIST, "00", FSP_EMALFORMED, "LIST with a payload"},
    {FSP_OP_UNSUBSCRIBE, "00", FSP_EMALFORMED, "UNSUBSCRIBE with a payload"},
    {FSP_OP_CANCEL, "00", FSP_EMALFORMED, "CANCEL with a payload"},
    {FSP_OP_OK, "00", FSP_EMALFORMED, "OK with a payload"},
    {FSP_OP_READY, "00 00 00 00", FSP_EMALFORMED, "READY with a payload"},
    {FSP_OP_SUBSCRIBE, U64_0 "00 00 00 00 00 00 00", FSP_EMALFORMED,
     "SUBSCRIBE 15 bytes"},
    {FSP_OP_SUBSCRIBE, U64_0 U64_0 "00", FSP_EMALFORMED, "SUBSCRIBE 17 bytes"},
    {FSP_OP_SUBSCRIBED, "", FSP_EMALFORMED, "SUBSCRIBED empty"},
    {FSP_OP_RESYNC, U64_0, FSP_EMALFORMED, "RESYNC 8 bytes"},
    {FSP_OP_END, U64_0 "00 00 00 00 00 00 00", FSP_EMALFORMED, "END 15 bytes"},
    {FSP_OP_END, U64_0 U64_0 "00", FSP_EMALFORMED, "END 17 bytes"},
    {FSP_OP_INFO, U64_0 U64_0 "61", FSP_EMALFORMED, "INFO with a name"},
    {FSP_OP_INFO, U64_0, FSP_EMALFORMED, "INFO 8 bytes"},
    {FSP_OP_BEGIN, U64_0 U64_0 U64_0, FSP_EMALFORMED, "BEGIN 24 bytes"},
    {FSP_OP_BEGIN, U64_0 U64_0 U64_0 U64_0 "00", FSP_EMALFORMED,
     "BEGIN 33 bytes"},
    {FSP_OP_DIGEST, U64_0 U64_0, FSP_EMALFORMED, "DIGEST 16 bytes"},
    {FSP_OP_DIGEST, U64_0 U64_0 U64_0 "00", FSP_EMALFORMED, "DIGEST 25 bytes"},
    /* Fixed part too short before the rest. */
    {FSP_OP_HELLO, "00 01 00 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO 19 bytes"},
    {FSP_OP_BYE, "00", FSP_EMALFORMED, "BYE 1 byte"},
    {FSP_OP_ERROR, "", FSP_EMALFORMED, "ERROR empty"},
    {FSP_OP_GET, U64_0 "00 00 00 00 00 00 00", FSP_EMALFORMED, "GET 15 bytes"},
    {FSP_OP_HASH, "", FSP_EMALFORMED, "HASH empty"},
    {FSP_OP_PUT, U64_0, FSP_EMALFORMED, "PUT 8 bytes"},
    {FSP_OP_EVENT, U64_0 "01" U64_0 "00 00 00 00 00 00 00", FSP_EMALFORMED,
     "EVENT 24 bytes"},
    {FSP_OP_ENTRIES, "00 00 00", FSP_EMALFORMED, "ENTRIES 3 bytes"},
    {FSP_OP_CHALLENGE, "", FSP_EMALFORMED, "CHALLENGE empty"},
    {FSP_OP_CHALLENGE, U64_0 U64_0 U64_0 "00 00 00 00 00 00 00", FSP_EMALFORMED,
     "CHALLENGE 31 bytes"},
    {FSP_OP_CHALLENGE, B32 "00", FSP_EMALFORMED, "CHALLENGE 33 bytes"},
    {FSP_OP_AUTH, B32 B32 U64_0 U64_0 U64_0 "00 00 00 00 00 00 00",
     FSP_EMALFORMED, "AUTH 95 bytes"},
    {FSP_OP_AUTH, B32, FSP_EMALFORMED, "AUTH nonce only"},
    /* Field values. */
    {FSP_OP_HELLO,
     "00 01 00 01 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO reserved 1"},
    {FSP_OP_HELLO,
     "00 01 80 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO reserved 0x8000"},
    /* Regression: a HELLO announcing less than 65,536 bytes was accepted
     * and then sent 64 KiB frames all the same. */
    {FSP_OP_HELLO,
     "00 01 00 00 00 00 03 e8 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO max_payload 1000"},
    {FSP_OP_HELLO,
     "00 01 00 00 00 00 ff ff 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO max_payload 65535"},
    {FSP_OP_HELLO,
     "00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO max_payload 0"},
    {FSP_OP_HELLO,
     "00 01 00 00 01 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO max_payload 16 MiB + 1"},
    {FSP_OP_HELLO,
     "00 01 00 00 ff ff ff ff 00 00 00 00 00 00 00 00 00 00 00 00",
     FSP_EMALFORMED, "HELLO max_payload 0xffffffff"},
    {FSP_OP_PUT, U64_0 "02 61", FSP_EMALFORMED, "PUT mode 2"},
    {FSP_OP_PUT, U64_0 "ff 61", FSP_EMALFORMED, "PUT mode 255"},
    {FSP_OP_EVENT, U64_0 "00" U64_0 U64_0 "61", FSP_EMALFORMED, "EVENT kind 0"},
    {FSP_OP_EVENT, U64_0 "04" U64_0 U64_0 "61", FSP_EMALFORMED, "EVENT kind 4"},
    {FSP_OP_EVENT, U64_0 "ff" U64_0 U64_0 "61", FSP_EMALFORMED,
     "EVENT kind 255"},
    /* Names. */
    {FSP_OP_STAT, "", FSP_EBADNAME, "STAT empty name"},
    {FSP_OP_STAT, "2e", FSP_EBADNAME, "STAT ."},
    {FSP_OP_STAT, "2e 2e", FSP_EBADNAME, "STAT .."},
    {FSP_OP_DELETE, "61 2f 62", FSP_EBADNAME, "DELETE a/b"},
    {FSP_OP_DELETE, "61 00 62", FSP_EBADNAME, "DELETE NUL"},
    {FSP_OP_GET, U64_0 U64_0 "2e 61", FSP_EBADNAME, "GET .a"},
    {FSP_OP_GET, U64_0 U64_0, FSP_EBADNAME, "GET no name"},
    {FSP_OP_HASH, U64_0 U64_0 "61 0a", FSP_EBADNAME, "HASH newline"},
    {FSP_OP_PUT, U64_0 "00 c0 af", FSP_EBADNAME, "PUT overlong"},
    {FSP_OP_PUT, U64_0 "00", FSP_EBADNAME, "PUT no name"},
    {FSP_OP_EVENT, U64_0 "01" U64_0 U64_0 "ed a0 80", FSP_EBADNAME,
     "EVENT surrogate"},
    {FSP_OP_EVENT, U64_0 "03" U64_0 U64_0, FSP_EBADNAME, "EVENT no name"},
    /* User names. */
    {FSP_OP_AUTH, B96, FSP_EBADUSER, "AUTH no user"},
    {FSP_OP_AUTH, B96 "2e 61", FSP_EBADUSER, "AUTH user .a"},
    {FSP_OP_AUTH, B96 "2d 61", FSP_EBADUSER, "AUTH user -a"},
    {FSP_OP_AUTH, B96 "61 20 62", FSP_EBADUSER, "AUTH user with a space"},
    {FSP_OP_AUTH, B96 "61 2f 62", FSP_EBADUSER, "AUTH user a/b"},
    {FSP_OP_AUTH, B96 "61 00", FSP_EBADUSER, "AUTH user with a NUL"},
    {FSP_OP_AUTH, B96 "c3 a9", FSP_EBADUSER, "AUTH user not ASCII"},
    {FSP_OP_AUTH, B96 "61 0a", FSP_EBADUSER, "AUTH user newline"},
    {FSP_OP_AUTH, B96 A32 A32 "61", FSP_EBADUSER, "AUTH user 65 bytes"},
    /* Texts. */
    {FSP_OP_ERROR, "00 01 ff", FSP_EUTF8, "ERROR text FF"},
    {FSP_OP_BYE, "00 00 c0 80", FSP_EUTF8, "BYE overlong NUL"},
    {FSP_OP_NOTICE, "e2 82", FSP_EUTF8, "NOTICE truncated"},
    {FSP_OP_NOTIFY, "ed b0 80", FSP_EUTF8, "NOTIFY surrogate"},
    {FSP_OP_NOTICE, "", FSP_EMALFORMED, "NOTICE empty"},
    {FSP_OP_NOTIFY, "", FSP_EMALFORMED, "NOTIFY empty"},
    {FSP_OP_HELLO,
     "00 01 00 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 f5 80",
     FSP_EUTF8, "HELLO agent F5"},
    /* ENTRIES that do not add up. */
    {FSP_OP_ENTRIES, "00 00 00 01", FSP_EMALFORMED, "count 1, no entries"},
    {FSP_OP_ENTRIES, "00 00 00 00" U64_0 U64_0 "00 01 61", FSP_EMALFORMED,
     "count 0, one entry"},
    {FSP_OP_ENTRIES, "00 00 00 02" U64_0 U64_0 "00 01 61", FSP_EMALFORMED,
     "count 2, one entry"},
    {FSP_OP_ENTRIES, "ff ff ff ff" U64_0 U64_0 "00 01 61", FSP_EMALFORMED,
     "count 0xffffffff, one entry"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64_0 U64_0 "00 02 61", FSP_EMALFORMED,
     "name_len past the end"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64_0 U64_0 "ff ff 61", FSP_EMALFORMED,
     "name_len 0xffff"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64_0 U64_0 "00", FSP_EMALFORMED,
     "entry cut in name_len"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64_0 U64_0 "00 01 61 00", FSP_EMALFORMED,
     "trailing byte"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64_0 U64_0 "00 00", FSP_EBADNAME,
     "empty name"},
    {FSP_OP_ENTRIES,
     "00 00 00 02" U64_0 U64_0 "00 01 61" U64_0 U64_0 "00 02 2e 2e",
     FSP_EBADNAME, "second name .."},
};

START_TEST(test_msg_decode_malformed) {
  const struct bad *b = &bad[_i];
  uint8_t payload[256];
  ssize_t len = th_hex(b->hex, payload, sizeof(payload));
  struct fsp_msg m;
  int r;

  ck_assert_int_ge(len, 0);
  r = decode_guarded(b->op, 99, payload, (size_t)len, &m);
  ck_assert_msg(r == b->err, "%s: got %s, want %s", b->why, fsp_err_name(r),
                fsp_err_name(b->err));
  ck_assert_uint_eq(m.op, b->op);
  ck_assert_uint_eq(m.id, 99);
}
END_TEST

/* The variants that must still decode: the edges of each rule. */
static const struct bad good[] = {
    {FSP_OP_HELLO,
     "00 01 00 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00", 0,
     "HELLO empty agent"},
    {FSP_OP_HELLO,
     "ff ff 00 00 01 00 00 00 ff ff ff ff ff ff ff ff ff ff ff ff", 0,
     "HELLO all ones but reserved, max_payload 16 MiB"},
    {FSP_OP_HELLO,
     "00 01 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00", 0,
     "HELLO max_payload 65536"},
    {FSP_OP_PUT, U64_0 "00 61", 0, "PUT mode 0"},
    {FSP_OP_PUT, U64_0 "01 61", 0, "PUT mode 1"},
    {FSP_OP_EVENT, U64_0 "01" U64_0 U64_0 "61", 0, "EVENT kind 1"},
    {FSP_OP_EVENT, U64_0 "03" U64_0 U64_0 "61", 0, "EVENT kind 3"},
    {FSP_OP_ERROR, "00 01", 0, "ERROR empty text"},
    {FSP_OP_ERROR, "ff ff 00", 0, "ERROR unknown status, NUL text"},
    {FSP_OP_BYE, "00 00", 0, "BYE empty"},
    {FSP_OP_PING, "", 0, "PING empty"},
    {FSP_OP_PING, "ff fe c0", 0, "PING opaque bytes"},
    {FSP_OP_DATA, "", 0, "DATA empty"},
    {FSP_OP_DATA, "ff", 0, "DATA arbitrary bytes"},
    {FSP_OP_ENTRIES, "00 00 00 00", 0, "ENTRIES empty batch"},
    {FSP_OP_NOTICE, "00", 0, "NOTICE a NUL (valid UTF-8)"},
    {FSP_OP_CHALLENGE, B32, 0, "CHALLENGE zero nonce"},
    {FSP_OP_AUTH, B96 "61", 0, "AUTH user of one byte"},
    {FSP_OP_AUTH, B96 "5f 41 2e 7a 2d 39", 0, "AUTH user _A.z-9"},
    {FSP_OP_AUTH, B96 A32 A32, 0, "AUTH user 64 bytes"},
};

START_TEST(test_msg_decode_edges_accepted) {
  const struct bad *b = &good[_i];
  uint8_t payload[256];
  ssize_t len = th_hex(b->hex, payload, sizeof(payload));
  struct fsp_msg m;
  int r;

  ck_assert_int_ge(len, 0);
  r = decode_guarded(b->op, 1, payload, (size_t)len, &m);
  ck_assert_msg(r == 0, "%s: %s", b->why, fsp_err_name(r));
}
END_TEST

/* Text limits on both sides: the limit itself passes; one more byte is
 * FSP_ETOOBIG to the encoder and FSP_EMALFORMED to the decoder (a field
 * over its limit is malformed, BAD_REQUEST, like any field outside its
 * layout: TOO_LARGE is for frames over max_payload). */
static void check_text_limit(uint8_t op, size_t fixed, size_t max) {
  uint8_t *payload = calloc(1, fixed + max + 1);
  struct fsp_msg m = {.op = op, .id = 3};
  struct fsp_str *text;
  uint8_t *out;
  size_t len;

  ck_assert_ptr_nonnull(payload);
  memset(payload + fixed, 'x', max + 1);
  if (op == FSP_OP_HELLO) {
    payload[5] = 1; /* max_payload 65536 */
    m.u.hello.max_payload = FSP_MIN_PAYLOAD;
    text = &m.u.hello.agent;
  } else
    text = &m.u.text;
  text->ptr = (const char *)payload + fixed;
  text->len = max;
  out = th_encode(&m, &len);
  ck_assert_uint_eq(len, FSP_HDR_LEN + fixed + max);
  free(out);
  text->len = max + 1;
  ck_assert_int_eq(fsp_msg_encode(NULL, 0, &m), FSP_ETOOBIG);
  ck_assert_int_eq(decode_guarded(op, 3, payload, fixed + max, &m), 0);
  ck_assert_int_eq(decode_guarded(op, 3, payload, fixed + max + 1, &m),
                   FSP_EMALFORMED);
  free(payload);
}

START_TEST(test_msg_text_limits) {
  check_text_limit(FSP_OP_HELLO, 20, FSP_AGENT_MAX);
  check_text_limit(FSP_OP_NOTICE, 0, FSP_NOTICE_MAX);
  check_text_limit(FSP_OP_NOTIFY, 0, FSP_NOTICE_MAX);
  check_text_limit(FSP_OP_PING, 0, FSP_PING_MAX);
  check_text_limit(FSP_OP_PONG, 0, FSP_PING_MAX);
}
END_TEST

START_TEST(test_msg_unknown_opcode) {
  static const uint8_t payload[] = {1, 2, 3};
  struct fsp_msg m = {.op = 0x7e, .id = 1234};

  for (unsigned op = 0; op < 256; op++) {
    if (fsp_op_name((uint8_t)op) != NULL)
      continue;
    ck_assert_int_eq(decode_guarded((uint8_t)op, 1234, payload, 3, &m),
                     FSP_EOPCODE);
    ck_assert_uint_eq(m.op, op);
    ck_assert_uint_eq(m.id, 1234);
    m.op = (uint8_t)op;
    ck_assert_int_eq(fsp_msg_encode(NULL, 0, &m), FSP_EOPCODE);
  }
}
END_TEST

/* Invalid messages are refused whatever the buffer size, and nothing is
 * written. */
START_TEST(test_msg_encode_rejects_invalid) {
  static const uint8_t big;
  uint8_t buf[64];
  struct fsp_msg m;

  memset(buf, 0xa5, sizeof(buf));
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_STAT;
  m.u.name = th_str("a/b");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EBADNAME);
  m.u.name = th_str("");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EBADNAME);
  m.op = FSP_OP_GET;
  m.u.range.name = th_str("..");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EBADNAME);
  m.op = FSP_OP_ERROR;
  m.u.error.text = th_str("bad \xff");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EUTF8);
  m.op = FSP_OP_NOTICE;
  m.u.text = th_str("");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);
  m.u.text.ptr = NULL;
  m.u.text.len = 4;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_PUT;
  m.u.put.name = th_str("a");
  m.u.put.mode = 2;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_EVENT;
  m.u.event.file.name = th_str("a");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);
  m.u.event.kind = 4;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);

  /* Oversized DATA: refused from the length alone (the bytes are never
   * read), including lengths that would overflow a size computation. */
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_DATA;
  m.u.text.ptr = (const char *)&big;
  m.u.text.len = (size_t)FSP_MAX_PAYLOAD + 1;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_ETOOBIG);
  m.u.text.len = SIZE_MAX;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_ETOOBIG);
  m.op = FSP_OP_ERROR;
  m.u.error.text.len = SIZE_MAX - 1;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_ETOOBIG);
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), NULL), FSP_EINVAL);

  for (size_t i = 0; i < sizeof(buf); i++)
    ck_assert_uint_eq(buf[i], 0xa5);
}
END_TEST

/* DATA: header then the bytes, unchanged. */
START_TEST(test_msg_encode_data_layout) {
  static const uint8_t want[] = {0xf5, 0x01, 0x20, 0x00, 0x00, 0x00, 0x01, 0x00,
                                 0x00, 0x00, 0x00, 0x03, 0x00, 0xff, 0x80};
  struct fsp_msg m = {.op = FSP_OP_DATA, .id = 256};
  uint8_t buf[sizeof(want)];

  m.u.text.ptr = "\x00\xff\x80";
  m.u.text.len = 3;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), sizeof(want));
  ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

/* The largest DATA payload encodes; one byte more does not. */
START_TEST(test_msg_encode_max_payload) {
  size_t total = FSP_MAX_FRAME_LEN;
  uint8_t *buf = malloc(total);
  uint8_t *data = calloc(1, FSP_MAX_PAYLOAD);
  struct fsp_msg m = {.op = FSP_OP_DATA, .id = 1};

  ck_assert_ptr_nonnull(buf);
  ck_assert_ptr_nonnull(data);
  m.u.text.ptr = (const char *)data;
  m.u.text.len = FSP_MAX_PAYLOAD;
  ck_assert_int_eq(fsp_msg_encode(buf, total, &m), total);
  free(buf);
  free(data);
}
END_TEST

START_TEST(test_msg_entries_builder) {
  static const char *const names[] = {"a.txt", "b", "\xc3\xa9t\xc3\xa9",
                                      "long-name-0123456789"};
  uint8_t buf[256];
  struct fsp_entries_builder b;
  struct fsp_entry e;
  struct fsp_frame f;
  struct fsp_msg m;
  size_t len, pos = 0;
  uint32_t i;

  ck_assert_int_eq(fsp_entries_begin(&b, buf, sizeof(buf), 41), 0);
  for (i = 0; i < 4; i++) {
    e.size = (uint64_t)i << 40 | i;
    e.mtime_ns = -(int64_t)i * 1000000007;
    e.name = th_str(names[i]);
    ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
  }
  e.name = th_str(".hidden");
  ck_assert_int_eq(fsp_entries_add(&b, &e), FSP_EBADNAME);
  len = fsp_entries_finish(&b);
  ck_assert_uint_eq(b.count, 4);
  ck_assert_int_eq(fsp_frame_decode(buf, len, 0, &f), len);
  ck_assert_uint_eq(f.op, FSP_OP_ENTRIES);
  ck_assert_uint_eq(f.id, 41);
  ck_assert_int_eq(fsp_msg_decode(&f, &m), 0);
  ck_assert_uint_eq(m.u.entries.count, 4);
  for (i = 0; i < 4; i++) {
    ck_assert_int_eq(fsp_entries_next(&m, &pos, &e), 1);
    ck_assert_uint_eq(e.size, (uint64_t)i << 40 | i);
    ck_assert_int_eq(e.mtime_ns, -(int64_t)i * 1000000007);
    ck_assert_uint_eq(e.name.len, strlen(names[i]));
    ck_assert_mem_eq(e.name.ptr, names[i], e.name.len);
  }
  ck_assert_int_eq(fsp_entries_next(&m, &pos, &e), 0);
  ck_assert_int_eq(fsp_entries_next(&m, &pos, &e), 0);

  /* Re-encoding the decoded batch gives the same bytes. */
  {
    uint8_t again[256];
    ck_assert_int_eq(fsp_msg_encode(again, sizeof(again), &m), len);
    ck_assert_mem_eq(again, buf, len);
  }
}
END_TEST

/* The builder stops exactly when the buffer is full and keeps what fits. */
START_TEST(test_msg_entries_builder_full) {
  const size_t one = FSP_ENTRY_LEN(1);
  uint8_t buf[FSP_HDR_LEN + 4 + 3 * FSP_ENTRY_LEN(1) + 5];
  struct fsp_entries_builder b;
  struct fsp_entry e = {1, 2, {"x", 1}, 0};
  struct fsp_frame f;
  struct fsp_msg m;
  size_t len;

  ck_assert_int_eq(fsp_entries_begin(&b, buf, sizeof(buf), 1), 0);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &e), FSP_ENOBUFS);
  ck_assert_uint_eq(b.len, FSP_HDR_LEN + 4 + 3 * one);
  len = fsp_entries_finish(&b);
  ck_assert_uint_eq(len, FSP_HDR_LEN + 4 + 3 * one);
  ck_assert_int_eq(fsp_frame_decode(buf, len, 0, &f), len);
  ck_assert_int_eq(fsp_msg_decode(&f, &m), 0);
  ck_assert_uint_eq(m.u.entries.count, 3);

  /* Too small for even the header and count. */
  ck_assert_int_eq(fsp_entries_begin(&b, buf, FSP_HDR_LEN + 3, 1), FSP_ENOBUFS);
  ck_assert_int_eq(fsp_entries_add(&b, &e), FSP_ENOBUFS);
  ck_assert_uint_eq(fsp_entries_finish(&b), 0);
  /* An empty batch is valid. */
  ck_assert_int_eq(fsp_entries_begin(&b, buf, FSP_HDR_LEN + 4, 2), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &e), FSP_ENOBUFS);
  len = fsp_entries_finish(&b);
  ck_assert_uint_eq(len, FSP_HDR_LEN + 4);
  ck_assert_int_eq(fsp_frame_decode(buf, len, 0, &f), len);
  ck_assert_int_eq(fsp_msg_decode(&f, &m), 0);
  ck_assert_uint_eq(m.u.entries.count, 0);
}
END_TEST

START_TEST(test_msg_entries_next_wrong_op) {
  struct fsp_msg m = {.op = FSP_OP_OK};
  struct fsp_entry e;
  size_t pos = 0;

  ck_assert_int_eq(fsp_entries_next(&m, &pos, &e), FSP_EINVAL);
}
END_TEST

/* ENTRIES encoded from a count that does not match the entries given. */
START_TEST(test_msg_entries_encode_rejects_mismatch) {
  static const uint8_t one[] = {0, 0, 0, 0, 0, 0, 0, 1, 0,  0,
                                0, 0, 0, 0, 0, 2, 0, 1, 'a'};
  struct fsp_msg m = {.op = FSP_OP_ENTRIES, .id = 1};

  m.u.entries.buf = one;
  m.u.entries.len = sizeof(one);
  m.u.entries.count = 2;
  ck_assert_int_eq(fsp_msg_encode(NULL, 0, &m), FSP_EMALFORMED);
  m.u.entries.count = 1;
  ck_assert_int_eq(fsp_msg_encode(NULL, 0, &m), FSP_HDR_LEN + 4 + sizeof(one));
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *msg_suite(void) {
  Suite *s = suite_create("msg");
  TCase *tc = tcase_create("round trip");
  TCase *tv = tcase_create("validation");
  TCase *te = tcase_create("entries");
  const struct fsp_msg *samples;
  int n = (int)th_samples(&samples);

  tcase_add_loop_test(tc, test_msg_round_trip_every_opcode, 0, n);
  tcase_add_test(tc, test_msg_samples_cover_every_opcode);
  tcase_add_loop_test(tc, test_msg_encode_reports_needed_size, 0, n);
  tcase_add_loop_test(tc, test_msg_decode_truncated_no_over_read, 0, n);
  tcase_add_test(tc, test_msg_encode_data_layout);
  tcase_add_test(tc, test_msg_encode_max_payload);
  suite_add_tcase(s, tc);

  tcase_add_loop_test(tv, test_msg_decode_malformed, 0, N(bad));
  tcase_add_loop_test(tv, test_msg_decode_edges_accepted, 0, N(good));
  tcase_add_test(tv, test_msg_text_limits);
  tcase_add_test(tv, test_msg_unknown_opcode);
  tcase_add_test(tv, test_msg_encode_rejects_invalid);
  suite_add_tcase(s, tv);

  tcase_add_test(te, test_msg_entries_builder);
  tcase_add_test(te, test_msg_entries_builder_full);
  tcase_add_test(te, test_msg_entries_next_wrong_op);
  tcase_add_test(te, test_msg_entries_encode_rejects_mismatch);
  suite_add_tcase(s, te);
  return s;
}
