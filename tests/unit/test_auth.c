/* User names, the auth frames and the transcript (auth.c, msg.c), and the
 * golden vectors of protocol.md section 11, whose signatures are checked
 * with OpenSSL (a real Ed25519, not a copy of the expected bytes). The path
 * of protocol.md is the program's first argument. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static const uint8_t snonce[FSP_NONCE_LEN] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t cnonce[FSP_NONCE_LEN] = {
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
static const uint8_t binding[FSP_BINDING_LEN] = {
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95};

/* ------------------------------------------------------------------------ */
/* User names                                                               */

START_TEST(test_auth_user_check) {
  static const struct {
    const char *user;
    size_t len;
    int ok;
  } cases[] = {
      {"a", 1, 1},       {"alice", 5, 1}, {"Z9", 2, 1},       {"_x", 2, 1},
      {"a.b-c_d", 7, 1}, {"a-", 2, 1},    {"a.", 2, 1},       {"", 0, 0},
      {".a", 2, 0},      {"-a", 2, 0},    {"a b", 3, 0},      {"a/b", 3, 0},
      {"a\0b", 3, 0},    {"a@b", 3, 0},   {"\xc3\xa9", 2, 0}, {"a\n", 2, 0},
      {"a:b", 3, 0},     {"a,b", 3, 0},   {"a#b", 3, 0},      {"a\x7f", 2, 0},
  };
  char max[FSP_USER_MAX + 1];

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    ck_assert_msg((fsp_user_check(cases[i].user, cases[i].len) == 0) ==
                      cases[i].ok,
                  "case %zu", i);
  memset(max, 'u', sizeof(max));
  ck_assert_int_eq(fsp_user_check(max, FSP_USER_MAX), 0);
  ck_assert_int_eq(fsp_user_check(max, FSP_USER_MAX + 1), FSP_EBADUSER);
  ck_assert_int_eq(fsp_user_check(NULL, 1), FSP_EBADUSER);
  ck_assert_int_eq(fsp_user_check(NULL, 0), FSP_EBADUSER);
}
END_TEST

/* Every byte value, alone and after a letter: exactly the documented set. */
START_TEST(test_auth_user_check_every_byte) {
  for (unsigned c = 0; c < 256; c++) {
    uint8_t one[1] = {(uint8_t)c}, two[2] = {'a', (uint8_t)c};
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '_';
    int inner = alnum || c == '.' || c == '-';

    ck_assert_int_eq(fsp_user_check(one, 1) == 0, alnum);
    ck_assert_int_eq(fsp_user_check(two, 2) == 0, inner);
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Transcript                                                               */

START_TEST(test_auth_transcript_layout) {
  uint8_t buf[FSP_TRANSCRIPT_MAX];
  ssize_t n = fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "bob", 3,
                                  binding, sizeof(binding));

  ck_assert_int_eq(n, 24 + 32 + 32 + 1 + 3 + 1 + 32);
  ck_assert_mem_eq(buf, "fsproto-v2-auth-ed25519\0", 24);
  ck_assert_mem_eq(buf + 24, snonce, 32);
  ck_assert_mem_eq(buf + 56, cnonce, 32);
  ck_assert_uint_eq(buf[88], 3);
  ck_assert_mem_eq(buf + 89, "bob", 3);
  ck_assert_uint_eq(buf[92], 32);
  ck_assert_mem_eq(buf + 93, binding, 32);
  /* Without TLS the binding is empty and its length byte 0 ends it. */
  n = fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "bob", 3, NULL, 0);
  ck_assert_int_eq(n, 93);
  ck_assert_uint_eq(buf[92], 0);
}
END_TEST

/* The largest transcript fits FSP_TRANSCRIPT_MAX exactly. */
START_TEST(test_auth_transcript_max) {
  uint8_t buf[FSP_TRANSCRIPT_MAX + 8];
  uint8_t big[FSP_BINDING_MAX] = {0};
  char user[FSP_USER_MAX];

  memset(user, 'x', sizeof(user));
  ck_assert_int_eq(fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, user,
                                       sizeof(user), big, sizeof(big)),
                   FSP_TRANSCRIPT_MAX);
}
END_TEST

/* snprintf style: too small a buffer (NULL included) reports the size and
 * writes nothing. */
START_TEST(test_auth_transcript_reports_needed_size) {
  uint8_t buf[FSP_TRANSCRIPT_MAX + 16];
  ssize_t need = fsp_auth_transcript(NULL, 0, snonce, cnonce, "alice", 5,
                                     binding, sizeof(binding));

  ck_assert_int_eq(need, 127);
  for (size_t cap = 0; cap < (size_t)need; cap++) {
    memset(buf, 0xa5, sizeof(buf));
    ck_assert_int_eq(fsp_auth_transcript(buf, cap, snonce, cnonce, "alice", 5,
                                         binding, sizeof(binding)),
                     need);
    for (size_t i = 0; i < sizeof(buf); i++)
      ck_assert_uint_eq(buf[i], 0xa5);
  }
  memset(buf, 0xa5, sizeof(buf));
  ck_assert_int_eq(fsp_auth_transcript(buf, (size_t)need, snonce, cnonce,
                                       "alice", 5, binding, sizeof(binding)),
                   need);
  for (size_t i = (size_t)need; i < sizeof(buf); i++)
    ck_assert_uint_eq(buf[i], 0xa5);
}
END_TEST

/* Hostile arguments are refused before anything is written. */
START_TEST(test_auth_transcript_hostile) {
  uint8_t buf[FSP_TRANSCRIPT_MAX + 64];
  uint8_t big[FSP_BINDING_MAX + 1] = {0};
  char user[FSP_USER_MAX + 1];

  memset(user, 'x', sizeof(user));
  ck_assert_int_eq(fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, user,
                                       sizeof(user), NULL, 0),
                   FSP_EBADUSER);
  ck_assert_int_eq(
      fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "", 0, NULL, 0),
      FSP_EBADUSER);
  ck_assert_int_eq(
      fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "a b", 3, NULL, 0),
      FSP_EBADUSER);
  ck_assert_int_eq(fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "a", 1,
                                       big, sizeof(big)),
                   FSP_EINVAL);
  ck_assert_int_eq(
      fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "a", 1, NULL, 32),
      FSP_EINVAL);
  ck_assert_int_eq(
      fsp_auth_transcript(buf, sizeof(buf), NULL, cnonce, "a", 1, NULL, 0),
      FSP_EINVAL);
  ck_assert_int_eq(
      fsp_auth_transcript(buf, sizeof(buf), snonce, NULL, "a", 1, NULL, 0),
      FSP_EINVAL);
  ck_assert_int_eq(fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "a", 1,
                                       NULL, SIZE_MAX),
                   FSP_EINVAL);
  ck_assert_int_eq(fsp_auth_transcript(buf, sizeof(buf), snonce, cnonce, "a",
                                       SIZE_MAX, NULL, 0),
                   FSP_EBADUSER);
}
END_TEST

/* The inputs end at guard pages: the transcript reads exactly its fields. */
START_TEST(test_auth_transcript_no_over_read) {
  uint8_t *sn = th_guard_copy(snonce, sizeof(snonce));
  uint8_t *cn = th_guard_copy(cnonce, sizeof(cnonce));
  uint8_t *user = th_guard_copy("alice", 5);
  uint8_t *b = th_guard_copy(binding, sizeof(binding));
  uint8_t out[FSP_TRANSCRIPT_MAX];

  ck_assert_int_eq(fsp_auth_transcript(out, sizeof(out), sn, cn,
                                       (const char *)user, 5, b,
                                       sizeof(binding)),
                   127);
  th_guard_free(sn, sizeof(snonce));
  th_guard_free(cn, sizeof(cnonce));
  th_guard_free(user, 5);
  th_guard_free(b, sizeof(binding));
}
END_TEST

/* Distinct inputs give distinct transcripts: moving a byte between the
 * user name and the binding changes the bytes, thanks to the lengths. */
START_TEST(test_auth_transcript_unambiguous) {
  uint8_t a[FSP_TRANSCRIPT_MAX], b[FSP_TRANSCRIPT_MAX];
  const uint8_t x[1] = {'x'};
  ssize_t na =
      fsp_auth_transcript(a, sizeof(a), snonce, cnonce, "abx", 3, NULL, 0);
  ssize_t nb = fsp_auth_transcript(b, sizeof(b), snonce, cnonce, "ab", 2, x, 1);

  ck_assert_int_eq(na, nb);
  ck_assert_int_ne(memcmp(a, b, (size_t)na), 0);
  /* Swapping the nonces changes it too. */
  nb = fsp_auth_transcript(b, sizeof(b), cnonce, snonce, "abx", 3, NULL, 0);
  ck_assert_int_ne(memcmp(a, b, (size_t)na), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */

/* A HELLO, a CHALLENGE and an AUTH in one stream, fed with a split at every
 * position: the incremental decoder yields the same three frames. */
START_TEST(test_auth_frames_split_feed) {
  uint8_t sig[FSP_SIG_LEN];
  struct fsp_msg msgs[3];
  uint8_t stream[512];
  size_t len = 0, split = (size_t)_i;

  memset(sig, 0x5a, sizeof(sig));
  memset(msgs, 0, sizeof(msgs));
  msgs[0].op = FSP_OP_HELLO;
  msgs[0].u.hello.version = FSP_HELLO_VERSION;
  msgs[0].u.hello.caps = FSP_CAP_AUTH;
  msgs[0].u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  msgs[1].op = FSP_OP_CHALLENGE;
  msgs[1].u.challenge.nonce = snonce;
  msgs[2].op = FSP_OP_AUTH;
  msgs[2].u.auth.nonce = cnonce;
  msgs[2].u.auth.sig = sig;
  msgs[2].u.auth.user = th_str("alice");
  for (int i = 0; i < 3; i++) {
    ssize_t n = fsp_msg_encode(stream + len, sizeof(stream) - len, &msgs[i]);
    ck_assert_int_gt(n, 0);
    len += (size_t)n;
  }
  if (split > len)
    return;
  {
    struct fsp_decoder d;
    uint8_t keep[512];
    size_t kept = 0, fed = 0;
    int got = 0;

    fsp_decoder_init(&d, FSP_PREAUTH_MAX);
    /* Two reads: [0, split) then [split, len), keeping what is unconsumed. */
    for (int round = 0; round < 2; round++) {
      size_t upto = round == 0 ? split : len;
      size_t pos = 0;

      memcpy(keep + kept, stream + fed, upto - fed);
      kept += upto - fed;
      fed = upto;
      for (;;) {
        struct fsp_item it;
        struct fsp_msg m;
        ssize_t n = fsp_decoder_feed(&d, keep + pos, kept - pos, &it);

        ck_assert_int_ge(n, 0);
        if (it.type == FSP_ITEM_NONE)
          break;
        ck_assert_int_eq(it.type, FSP_ITEM_FRAME);
        ck_assert_int_lt(got, 3);
        ck_assert_int_eq(fsp_msg_decode(&it.frame, &m), 0);
        th_check_msg_eq(&msgs[got], &m, fsp_op_name(m.op));
        got++;
        pos += (size_t)n;
      }
      memmove(keep, keep + pos, kept - pos);
      kept -= pos;
    }
    ck_assert_int_eq(got, 3);
    ck_assert_uint_eq(kept, 0);
  }
}
END_TEST

/* Before authentication a server decodes with FSP_PREAUTH_MAX: a header
 * announcing 1025 bytes is refused as soon as it is in, before any payload
 * byte is waited for; 1024 is fine. Hostile lengths are refused alike. */
START_TEST(test_auth_preauth_limit) {
  static const uint32_t lens[] = {FSP_PREAUTH_MAX + 1, FSP_MIN_PAYLOAD,
                                  0x7fffffffu,         0xfffffffcu,
                                  0xfffffffeu,         0xffffffffu};
  uint8_t hdr[FSP_HDR_LEN];
  struct fsp_decoder d;
  struct fsp_item it;

  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    fsp_decoder_init(&d, FSP_PREAUTH_MAX);
    fsp_header_write(hdr, FSP_OP_AUTH, 0, lens[i]);
    ck_assert_int_eq(fsp_decoder_feed(&d, hdr, sizeof(hdr), &it), FSP_ETOOBIG);
  }
  fsp_decoder_init(&d, FSP_PREAUTH_MAX);
  fsp_header_write(hdr, FSP_OP_AUTH, 0, FSP_PREAUTH_MAX);
  ck_assert_int_eq(fsp_decoder_feed(&d, hdr, sizeof(hdr), &it), 0);
  ck_assert_int_eq(it.type, FSP_ITEM_NONE);
}
END_TEST

/* The encoder refuses what the decoder would refuse. */
START_TEST(test_auth_encode_refuses_bad_input) {
  uint8_t buf[256], sig[FSP_SIG_LEN] = {0};
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_CHALLENGE;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);
  m.op = FSP_OP_AUTH;
  m.u.auth.nonce = cnonce;
  m.u.auth.sig = sig;
  m.u.auth.user = th_str("a b");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EBADUSER);
  m.u.auth.user = th_str("");
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EBADUSER);
  m.u.auth.user = th_str("alice");
  m.u.auth.sig = NULL;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);
  m.u.auth.sig = sig;
  m.u.auth.nonce = NULL;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), FSP_EINVAL);
  m.u.auth.nonce = cnonce;
  ck_assert_int_eq(fsp_msg_encode(buf, sizeof(buf), &m), 12 + 96 + 5);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* protocol.md section 11: the byte strings that are not frames             */

struct block {
  char name[64];
  uint8_t bytes[256];
  size_t len;
};

/* Reads the "```fsp-bytes NAME" blocks of protocol.md. */
static size_t load_blocks(struct block *out, size_t max) {
  static const char info[] = "```fsp-bytes ";
  const char *path;
  FILE *f;
  char line[512], body[4096];
  size_t n = 0;

  ck_assert_msg(fsp_test_argc >= 2, "usage: test_auth path/to/protocol.md");
  path = fsp_test_argv[1];
  f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  while (fgets(line, sizeof(line), f) != NULL) {
    ssize_t len;

    if (strncmp(line, info, sizeof(info) - 1) != 0)
      continue;
    ck_assert_uint_lt(n, max);
    line[strcspn(line, "\n")] = '\0';
    ck_assert_uint_lt(strlen(line + sizeof(info) - 1), sizeof(out[n].name));
    memcpy(out[n].name, line + sizeof(info) - 1,
           strlen(line + sizeof(info) - 1) + 1);
    body[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL && strncmp(line, "```", 3)) {
      ck_assert_uint_lt(strlen(body) + strlen(line), sizeof(body));
      strcat(body, line);
    }
    len = th_hex(body, out[n].bytes, sizeof(out[n].bytes));
    ck_assert_msg(len > 0, "block %s: bad hex", out[n].name);
    out[n].len = (size_t)len;
    n++;
  }
  fclose(f);
  return n;
}

static const struct block *find_block(const struct block *b, size_t n,
                                      const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(b[i].name, name) == 0)
      return &b[i];
  ck_abort_msg("protocol.md has no fsp-bytes block %s", name);
  return NULL;
}

static EVP_PKEY *key_from_seed(const uint8_t *seed) {
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);

  ck_assert_ptr_nonnull(k);
  return k;
}

static void sign(EVP_PKEY *k, const uint8_t *msg, size_t len,
                 uint8_t sig[FSP_SIG_LEN]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t siglen = FSP_SIG_LEN;

  ck_assert_ptr_nonnull(ctx);
  ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
  ck_assert_int_eq(EVP_DigestSign(ctx, sig, &siglen, msg, len), 1);
  ck_assert_uint_eq(siglen, FSP_SIG_LEN);
  EVP_MD_CTX_free(ctx);
}

static int verify(const uint8_t *pub, const uint8_t *msg, size_t len,
                  const uint8_t *sig) {
  EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok;

  ck_assert_ptr_nonnull(k);
  ck_assert_ptr_nonnull(ctx);
  ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k), 1);
  ok = EVP_DigestVerify(ctx, sig, FSP_SIG_LEN, msg, len) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  return ok;
}

/* The key, both transcripts and both signatures of section 11: the
 * transcripts are what fsp_auth_transcript() builds from the inputs the
 * text names, the public key belongs to the seed, and each signature is
 * the one OpenSSL makes and accepts. A flipped bit is refused. */
START_TEST(test_auth_golden_vectors) {
  static struct block b[16];
  size_t n = load_blocks(b, 16);
  const struct block *seed = find_block(b, n, "auth-secret-key");
  const struct block *pub = find_block(b, n, "auth-public-key");
  static const char *const cases[][2] = {
      {"auth-transcript-tls", "auth-signature-tls"},
      {"auth-transcript-plain", "auth-signature-plain"},
  };
  uint8_t raw[32];
  size_t rawlen = sizeof(raw);
  EVP_PKEY *k;

  ck_assert_uint_eq(n, 6); /* every block below is checked */
  ck_assert_uint_eq(seed->len, 32);
  ck_assert_uint_eq(pub->len, FSP_PUBKEY_LEN);
  k = key_from_seed(seed->bytes);
  ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, raw, &rawlen), 1);
  ck_assert_mem_eq(raw, pub->bytes, 32);

  for (size_t i = 0; i < 2; i++) {
    const struct block *t = find_block(b, n, cases[i][0]);
    const struct block *s = find_block(b, n, cases[i][1]);
    uint8_t want[FSP_TRANSCRIPT_MAX], sig[FSP_SIG_LEN], bad[FSP_SIG_LEN];
    ssize_t wn = fsp_auth_transcript(want, sizeof(want), snonce, cnonce,
                                     "alice", 5, i == 0 ? binding : NULL,
                                     i == 0 ? sizeof(binding) : 0);

    ck_assert_int_eq(wn, (ssize_t)t->len);
    ck_assert_mem_eq(want, t->bytes, t->len);
    ck_assert_uint_eq(s->len, FSP_SIG_LEN);
    sign(k, t->bytes, t->len, sig);
    ck_assert_mem_eq(sig, s->bytes, FSP_SIG_LEN);
    ck_assert(verify(pub->bytes, t->bytes, t->len, s->bytes));
    memcpy(bad, s->bytes, sizeof(bad));
    bad[17] ^= 0x01;
    ck_assert(!verify(pub->bytes, t->bytes, t->len, bad));
  }
  /* A signature made over TLS does not verify without the binding. */
  ck_assert(!verify(pub->bytes,
                    find_block(b, n, "auth-transcript-plain")->bytes,
                    find_block(b, n, "auth-transcript-plain")->len,
                    find_block(b, n, "auth-signature-tls")->bytes));
  EVP_PKEY_free(k);
}
END_TEST

Suite *auth_suite(void) {
  Suite *s = suite_create("auth");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_auth_user_check);
  tcase_add_test(tc, test_auth_user_check_every_byte);
  tcase_add_test(tc, test_auth_transcript_layout);
  tcase_add_test(tc, test_auth_transcript_max);
  tcase_add_test(tc, test_auth_transcript_reports_needed_size);
  tcase_add_test(tc, test_auth_transcript_hostile);
  tcase_add_test(tc, test_auth_transcript_no_over_read);
  tcase_add_test(tc, test_auth_transcript_unambiguous);
  tcase_add_loop_test(tc, test_auth_frames_split_feed, 0, 200);
  tcase_add_test(tc, test_auth_preauth_limit);
  tcase_add_test(tc, test_auth_encode_refuses_bad_input);
  tcase_add_test(tc, test_auth_golden_vectors);
  suite_add_tcase(s, tc);
  return s;
}
