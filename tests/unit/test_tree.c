/* Version 3 messages: paths, folders, renames (msg.c, protocol.md 11). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define V3 FSP_TREE_VERSION
#define MTIME 1700000000123456789ll

/* Two version 3 entries: a folder "d" and a file "d/f\xc3\xbc" of 2^64-1
 * bytes with mtime -1. */
static const uint8_t entries_v3[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* size */
    0x17, 0x97, 0x9c, 0xfe, 0x36, 0x2a, 0x00, 0x00, /* mtime_ns */
    0x02, 0x00, 0x01, 'd',                          /* folder, "d" */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* size */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* mtime_ns -1 */
    0x01, 0x00, 0x05, 'd',  '/',  'f',  0xc3, 0xbc, /* file, "d/fü" */
};

/* One sample of every message whose layout version 3 changes or adds. */
static const struct fsp_msg samples[] = {
    {.op = FSP_OP_LIST, .id = 1, .u.tree = {0, {NULL, 0}}},
    {.op = FSP_OP_LIST,
     .id = 2,
     .u.tree = {FSP_LIST_RECURSIVE, {"photos/2024", 11}}},
    {.op = FSP_OP_DELETE,
     .id = 3,
     .u.tree = {FSP_DELETE_RECURSIVE, {"old/stuff", 9}}},
    {.op = FSP_OP_STAT, .id = 4, .u.name = {"a/b/c.txt", 9}},
    {.op = FSP_OP_GET, .id = 5, .u.range = {7, FSP_LENGTH_TO_END, {"x/y", 3}}},
    {.op = FSP_OP_HASH, .id = 6, .u.range = {0, 10, {"x/y", 3}}},
    {.op = FSP_OP_PUT,
     .id = 7,
     .u.put = {5, FSP_PUT_NO_CLOBBER | FSP_PUT_PARENTS, {"n/d/f.txt", 9}}},
    {.op = FSP_OP_SUBSCRIBE,
     .id = 8,
     .u.sub = {0x1122334455667788ull, 9, {"photos", 6}}},
    {.op = FSP_OP_SUBSCRIBE, .id = 9, .u.sub = {0, 0, {NULL, 0}}},
    {.op = FSP_OP_INFO,
     .id = 10,
     .u.entry = {0, -MTIME, {NULL, 0}, FSP_TYPE_FOLDER}},
    {.op = FSP_OP_ENTRIES,
     .id = 11,
     .u.entries = {2, entries_v3, sizeof(entries_v3), V3}},
    {.op = FSP_OP_EVENT,
     .id = 0,
     .u.event = {0x0102030405060708ull,
                 FSP_EV_ADDED,
                 {0, INT64_MIN, {"a/new", 5}, FSP_TYPE_FOLDER},
                 {NULL, 0}}},
    {.op = FSP_OP_EVENT,
     .id = 0,
     .u.event = {43,
                 FSP_EV_RENAMED,
                 {5, MTIME, {"b/y.txt", 7}, FSP_TYPE_FILE},
                 {"a/x.txt", 7}}},
    {.op = FSP_OP_MKDIR, .id = 12, .u.tree = {0, {"d", 1}}},
    {.op = FSP_OP_RENAME, .id = 13, .u.rename = {0, {"a", 1}, {"b/a", 3}}},
    {.op = FSP_OP_SKIPPED,
     .id = 14,
     .u.skipped = {FSP_ST_NOT_FOUND, {"old/link", 8}}},
};
#define NSAMPLES ((int)(sizeof(samples) / sizeof(samples[0])))

static uint8_t *encode_v3(const struct fsp_msg *m, size_t *len) {
  ssize_t need = fsp_msg_encode_v(NULL, 0, V3, m);
  uint8_t *buf;

  ck_assert_msg(need >= (ssize_t)FSP_HDR_LEN, "encode %s: %s",
                fsp_op_name(m->op), fsp_err_name((int)need));
  buf = malloc((size_t)need);
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(fsp_msg_encode_v(buf, (size_t)need, V3, m), need);
  *len = (size_t)need;
  return buf;
}

static int decode_guarded(uint8_t op, const uint8_t *payload, size_t len,
                          unsigned version, struct fsp_msg *m) {
  uint8_t *p = th_guard_copy(payload, len);
  struct fsp_frame f = {op, 0, 99, (uint32_t)len, p};
  int r = fsp_msg_decode_v(&f, version, m);

  th_guard_free(p, len);
  return r;
}

START_TEST(test_tree_round_trip) {
  const struct fsp_msg *m = &samples[_i];
  struct fsp_frame f;
  struct fsp_msg d;
  size_t len;
  uint8_t *buf = encode_v3(m, &len);

  ck_assert_int_eq(fsp_frame_decode(buf, len, 0, &f), len);
  ck_assert_int_eq(fsp_msg_decode_v(&f, V3, &d), 0);
  th_check_msg_eq_v(m, &d, V3, fsp_op_name(m->op));
  free(buf);
}
END_TEST

/* Every truncation fails cleanly or is a shorter valid message, and no
 * decoder reads past the payload (a guard page follows it). */
START_TEST(test_tree_truncated_no_over_read) {
  const struct fsp_msg *m = &samples[_i];
  struct fsp_msg d;
  size_t len;
  uint8_t *buf = encode_v3(m, &len);

  for (size_t plen = 0; plen <= len - FSP_HDR_LEN; plen++) {
    int r = decode_guarded(m->op, buf + FSP_HDR_LEN, plen, V3, &d);
    if (plen == len - FSP_HDR_LEN)
      ck_assert_int_eq(r, 0);
    ck_assert_msg(r == 0 || r == FSP_EMALFORMED || r == FSP_EBADNAME,
                  "%s truncated to %zu: %s", fsp_op_name(m->op), plen,
                  fsp_err_name(r));
  }
  free(buf);
}
END_TEST

/* All samples in one stream, cut at every point and fed in two parts to
 * the incremental decoder: each frame comes out whole and decodes to its
 * sample. */
START_TEST(test_tree_split_feeding) {
  uint8_t stream[2048];
  size_t total = 0;

  for (int i = 0; i < NSAMPLES; i++) {
    size_t len;
    uint8_t *buf = encode_v3(&samples[i], &len);
    ck_assert_uint_le(total + len, sizeof(stream));
    memcpy(stream + total, buf, len);
    total += len;
    free(buf);
  }
  for (size_t cut = 0; cut <= total; cut++) {
    struct fsp_decoder dec;
    uint8_t held[2048];
    size_t nheld = 0, fed = 0;
    int seen = 0;

    fsp_decoder_init(&dec, 0);
    while (fed < total || nheld > 0) {
      size_t take = fed < cut ? cut - fed : total - fed;
      struct fsp_item it;
      ssize_t n;

      memcpy(held + nheld, stream + fed, take);
      nheld += take;
      fed += take;
      n = fsp_decoder_feed(&dec, held, nheld, &it);
      TH_REQUIRE(n >= 0);
      if (it.type == FSP_ITEM_FRAME) {
        struct fsp_msg d;
        TH_REQUIRE(seen < NSAMPLES);
        TH_REQUIRE(fsp_msg_decode_v(&it.frame, V3, &d) == 0);
        th_check_msg_eq_v(&samples[seen], &d, V3, "split");
        seen++;
      }
      memmove(held, held + n, nheld - (size_t)n);
      nheld -= (size_t)n;
      if (n == 0 && take == 0)
        break;
    }
    TH_REQUIRE(seen == NSAMPLES);
  }
}
END_TEST

/* Every path field refuses each path attack, on both sides: the encoder
 * will not write it, and a frame carrying it (written with a harmless
 * placeholder of the same length, then overwritten) does not decode. */
static const char *const attacks[] = {"a/../../x", "a//b", "/abs", "a/./b",
                                      "a/",        "..",   ".",    "a/.x"};

static struct fsp_str *path_field(struct fsp_msg *m) {
  switch (m->op) {
  case FSP_OP_LIST:
  case FSP_OP_DELETE:
  case FSP_OP_MKDIR:
    return &m->u.tree.path;
  case FSP_OP_STAT:
    return &m->u.name;
  case FSP_OP_GET:
  case FSP_OP_HASH:
    return &m->u.range.name;
  case FSP_OP_PUT:
    return &m->u.put.name;
  case FSP_OP_SUBSCRIBE:
    return &m->u.sub.path;
  case FSP_OP_EVENT:
    return &m->u.event.file.name;
  case FSP_OP_RENAME:
    return &m->u.rename.to;
  case FSP_OP_SKIPPED:
    return &m->u.skipped.path;
  default:
    return NULL;
  }
}

START_TEST(test_tree_path_attacks_every_field) {
  const char *bad = attacks[_i];
  size_t blen = strlen(bad);
  char placeholder[16];

  ck_assert_uint_lt(blen, sizeof(placeholder));
  memset(placeholder, 'Z', blen);
  for (int i = 0; i < NSAMPLES; i++) {
    struct fsp_msg m = samples[i], d;
    struct fsp_str *field = path_field(&m);
    struct fsp_frame f;
    uint8_t *buf, *at;
    size_t len;

    if (field == NULL)
      continue;
    *field = th_str(bad);
    ck_assert_msg(fsp_msg_encode_v(NULL, 0, V3, &m) == FSP_EBADNAME,
                  "%s encoded with path %s", fsp_op_name(m.op), bad);
    field->ptr = placeholder;
    field->len = blen;
    buf = encode_v3(&m, &len);
    at = memmem(buf + FSP_HDR_LEN, len - FSP_HDR_LEN, placeholder, blen);
    ck_assert_ptr_nonnull(at);
    memcpy(at, bad, blen);
    ck_assert_int_eq(fsp_frame_decode(buf, len, 0, &f), len);
    ck_assert_msg(decode_guarded(m.op, f.payload, f.len, V3, &d) ==
                      FSP_EBADNAME,
                  "%s decoded with path %s", fsp_op_name(m.op), bad);
    free(buf);
  }
}
END_TEST

struct raw {
  uint8_t op;
  const char *hex;
  int err; /* 0: must decode */
  const char *why;
};

#define U64 " 00 00 00 00 00 00 00 00 "
/* "a" is 61, "/" 2f. */
static const struct raw raws[] = {
    /* LIST and DELETE carry a flags byte in version 3. */
    {FSP_OP_LIST, "", FSP_EMALFORMED, "LIST without flags"},
    {FSP_OP_LIST, "00", 0, "LIST of the root"},
    {FSP_OP_LIST, "01 61 2f 61", 0, "LIST recursive a/a"},
    {FSP_OP_LIST, "02", FSP_EMALFORMED, "LIST unknown flag"},
    {FSP_OP_LIST, "00 2f", FSP_EBADNAME, "LIST of /"},
    {FSP_OP_DELETE, "00", FSP_EBADNAME, "DELETE of the root"},
    {FSP_OP_DELETE, "80 61", FSP_EMALFORMED, "DELETE unknown flag"},
    {FSP_OP_MKDIR, "00", FSP_EBADNAME, "MKDIR of the root"},
    {FSP_OP_MKDIR, "03 61", FSP_EMALFORMED, "MKDIR unknown flag"},
    {FSP_OP_STAT, "", FSP_EBADNAME, "STAT of nothing"},
    {FSP_OP_PUT, U64 "03 61 2f 61", 0, "PUT no-clobber with parents"},
    {FSP_OP_PUT, U64 "04 61", FSP_EMALFORMED, "PUT unknown flag"},
    {FSP_OP_SUBSCRIBE, U64 U64, 0, "SUBSCRIBE the whole tree"},
    {FSP_OP_SUBSCRIBE, U64 U64 "2f", FSP_EBADNAME, "SUBSCRIBE /"},
    /* INFO: a type byte, 1 or 2. */
    {FSP_OP_INFO, U64 U64, FSP_EMALFORMED, "INFO without type"},
    {FSP_OP_INFO, U64 U64 "00", FSP_EMALFORMED, "INFO type 0"},
    {FSP_OP_INFO, U64 U64 "03", FSP_EMALFORMED, "INFO type 3"},
    {FSP_OP_INFO, U64 U64 "02", 0, "INFO folder"},
    /* RENAME: from_len is checked against the bytes present. */
    {FSP_OP_RENAME, "00 00 01 61 62", 0, "RENAME a to b"},
    {FSP_OP_RENAME, "00 00 01 61", FSP_EBADNAME, "RENAME without a target"},
    {FSP_OP_RENAME, "00 00 00 61", FSP_EBADNAME, "RENAME empty source"},
    {FSP_OP_RENAME, "00 ff ff 61 62", FSP_EMALFORMED, "RENAME from_len 65535"},
    {FSP_OP_RENAME, "00 00 03 61 62", FSP_EMALFORMED,
     "RENAME from_len past end"},
    {FSP_OP_RENAME, "00 00 02 61 2f 62", FSP_EBADNAME, "RENAME from a/"},
    {FSP_OP_RENAME, "02 00 01 61 62", FSP_EMALFORMED, "RENAME unknown flag"},
    {FSP_OP_RENAME, "00 00", FSP_EMALFORMED, "RENAME too short"},
    /* EVENT: from exactly when renamed; type 1 or 2; kind 1..4. */
    {FSP_OP_EVENT, U64 "01 01" U64 U64 "00 01 61", 0, "EVENT added file"},
    {FSP_OP_EVENT, U64 "04 02" U64 U64 "00 01 61 62", 0, "EVENT renamed"},
    {FSP_OP_EVENT, U64 "04 01" U64 U64 "00 01 61", FSP_EMALFORMED,
     "EVENT renamed without from"},
    {FSP_OP_EVENT, U64 "01 01" U64 U64 "00 01 61 62", FSP_EMALFORMED,
     "EVENT added with from"},
    {FSP_OP_EVENT, U64 "05 01" U64 U64 "00 01 61", FSP_EMALFORMED,
     "EVENT kind 5"},
    {FSP_OP_EVENT, U64 "01 00" U64 U64 "00 01 61", FSP_EMALFORMED,
     "EVENT type 0"},
    {FSP_OP_EVENT, U64 "01 01" U64 U64 "ff ff 61", FSP_EMALFORMED,
     "EVENT path_len 65535"},
    {FSP_OP_EVENT, U64 "01 01" U64 U64 "00 00", FSP_EBADNAME,
     "EVENT empty path"},
    {FSP_OP_EVENT, U64 "04 01" U64 U64 "00 01 61 2e 2e", FSP_EBADNAME,
     "EVENT renamed from .."},
    /* ENTRIES: version 3 entries, hostile lengths and counts. */
    {FSP_OP_ENTRIES, "00 00 00 01" U64 U64 "01 00 03 61 2f 62", 0,
     "ENTRIES one path"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64 U64 "00 00 01 61", FSP_EMALFORMED,
     "ENTRIES type 0"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64 U64 "01 ff ff 61", FSP_EMALFORMED,
     "ENTRIES path_len 65535"},
    {FSP_OP_ENTRIES, "ff ff ff ff" U64 U64 "01 00 01 61", FSP_EMALFORMED,
     "ENTRIES count 0xffffffff"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64 U64 "01 00 04 61 2f 2f 62", FSP_EBADNAME,
     "ENTRIES a//b"},
    {FSP_OP_ENTRIES, "00 00 00 01" U64 U64 "01 00 01", FSP_EMALFORMED,
     "ENTRIES path cut short"},
    {FSP_OP_SKIPPED, "00 06", FSP_EBADNAME, "SKIPPED without a path"},
    {FSP_OP_SKIPPED, "00", FSP_EMALFORMED, "SKIPPED too short"},
};

START_TEST(test_tree_raw_payloads) {
  const struct raw *c = &raws[_i];
  uint8_t payload[256];
  ssize_t len = th_hex(c->hex, payload, sizeof(payload));
  struct fsp_msg m;
  int r;

  ck_assert_int_ge(len, 0);
  r = decode_guarded(c->op, payload, (size_t)len, V3, &m);
  ck_assert_msg(r == c->err, "%s: got %s, want %s", c->why, fsp_err_name(r),
                fsp_err_name(c->err));
  ck_assert_uint_eq(m.op, c->op);
  ck_assert_uint_eq(m.id, 99);
}
END_TEST

/* Version 1 and 2 connections keep names: a path is a bad name there, and
 * the layouts stay those of version 1. */
START_TEST(test_tree_version1_unchanged) {
  struct fsp_msg m;

  ck_assert_int_eq(
      decode_guarded(FSP_OP_STAT, (const uint8_t *)"a/b", 3, 1, &m),
      FSP_EBADNAME);
  ck_assert_int_eq(decode_guarded(FSP_OP_STAT, (const uint8_t *)"a/b", 3,
                                  FSP_AUTH_VERSION, &m),
                   FSP_EBADNAME);
  ck_assert_int_eq(
      decode_guarded(FSP_OP_LIST, (const uint8_t *)"", 0, FSP_AUTH_VERSION, &m),
      0);
  ck_assert_int_eq(
      decode_guarded(FSP_OP_STAT, (const uint8_t *)"a/b", 3, V3, &m), 0);
  ck_assert_int_eq(decode_guarded(FSP_OP_LIST, (const uint8_t *)"", 0, 1, &m),
                   0);
  ck_assert_int_eq(decode_guarded(FSP_OP_LIST, (const uint8_t *)"", 0, V3, &m),
                   FSP_EMALFORMED);
  {
    /* PUT's PARENTS flag does not exist in version 1. */
    uint8_t put[10] = {0, 0, 0, 0, 0, 0, 0, 0, FSP_PUT_PARENTS, 'a'};
    ck_assert_int_eq(decode_guarded(FSP_OP_PUT, put, sizeof(put), 1, &m),
                     FSP_EMALFORMED);
    ck_assert_int_eq(decode_guarded(FSP_OP_PUT, put, sizeof(put), V3, &m), 0);
  }
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_EVENT;
  m.u.event.kind = FSP_EV_RENAMED;
  m.u.event.file.name = th_str("a");
  m.u.event.from = th_str("b");
  ck_assert_int_eq(fsp_msg_encode_v(NULL, 0, 1, &m), FSP_EINVAL);
  ck_assert_int_eq(fsp_msg_encode_v(NULL, 0, FSP_AUTH_VERSION, &m), FSP_EINVAL);
  /* The same message is fine in version 3 once it has a type. */
  m.u.event.file.type = FSP_TYPE_FILE;
  ck_assert_int_gt(fsp_msg_encode_v(NULL, 0, V3, &m), 0);
  m.u.event.file.type = 0;
  ck_assert_int_eq(fsp_msg_encode_v(NULL, 0, V3, &m), FSP_EINVAL);
}
END_TEST

/* The opcodes of version 3 are unknown to a version 1 or 2 connection. */
START_TEST(test_tree_op_version) {
  ck_assert_uint_eq(fsp_op_version(FSP_OP_GET), 1);
  ck_assert_uint_eq(fsp_op_version(FSP_OP_LIST), 1);
  ck_assert_uint_eq(fsp_op_version(FSP_OP_MKDIR), V3);
  ck_assert_uint_eq(fsp_op_version(FSP_OP_RENAME), V3);
  ck_assert_uint_eq(fsp_op_version(FSP_OP_SKIPPED), V3);
  ck_assert_uint_eq(fsp_op_version(0x1c), 0);
  ck_assert_uint_eq(fsp_op_version(0x00), 0);
}
END_TEST

START_TEST(test_tree_bad_version_argument) {
  struct fsp_msg m = {.op = FSP_OP_OK, .id = 1};
  struct fsp_frame f = {FSP_OP_OK, 0, 1, 0, NULL};
  struct fsp_entries_builder b;
  uint8_t buf[64];

  ck_assert_int_eq(fsp_msg_encode_v(buf, sizeof(buf), 0, &m), FSP_EINVAL);
  ck_assert_int_eq(fsp_msg_encode_v(buf, sizeof(buf), 4, &m), FSP_EINVAL);
  ck_assert_int_eq(fsp_msg_decode_v(&f, 0, &m), FSP_EINVAL);
  ck_assert_int_eq(fsp_msg_decode_v(&f, 4, &m), FSP_EINVAL);
  ck_assert_int_eq(fsp_entries_begin_v(&b, buf, sizeof(buf), 1, 4), FSP_EINVAL);
}
END_TEST

/* The builder writes version 3 entries that the decoder walks back, and
 * refuses bad paths and types. */
START_TEST(test_tree_entries_builder) {
  uint8_t buf[256];
  struct fsp_entries_builder b;
  struct fsp_entry d = {0, MTIME, {"2024", 4}, FSP_TYPE_FOLDER};
  struct fsp_entry f = {5, MTIME, {"2024/a.jpg", 10}, FSP_TYPE_FILE};
  struct fsp_entry bad = {5, MTIME, {"2024/../x", 9}, FSP_TYPE_FILE};
  struct fsp_entry untyped = {5, MTIME, {"x", 1}, 0};
  struct fsp_frame fr;
  struct fsp_msg m;
  struct fsp_entry e;
  size_t pos = 0, n;

  ck_assert_int_eq(fsp_entries_begin_v(&b, buf, sizeof(buf), 4, V3), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &d), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &f), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &bad), FSP_EBADNAME);
  ck_assert_int_eq(fsp_entries_add(&b, &untyped), FSP_EINVAL);
  n = fsp_entries_finish(&b);
  ck_assert_uint_eq(n,
                    FSP_HDR_LEN + 4 + FSP_ENTRY2_LEN(4) + FSP_ENTRY2_LEN(10));
  ck_assert_int_eq(fsp_frame_decode(buf, n, 0, &fr), n);
  /* A version 1 reader cannot take these entries. */
  ck_assert_int_ne(fsp_msg_decode(&fr, &m), 0);
  ck_assert_int_eq(fsp_msg_decode_v(&fr, V3, &m), 0);
  ck_assert_uint_eq(m.u.entries.count, 2);
  ck_assert_int_eq(fsp_entries_next(&m, &pos, &e), 1);
  ck_assert_uint_eq(e.type, FSP_TYPE_FOLDER);
  ck_assert_uint_eq(e.name.len, 4);
  ck_assert_int_eq(memcmp(e.name.ptr, "2024", 4), 0);
  ck_assert_int_eq(fsp_entries_next(&m, &pos, &e), 1);
  ck_assert_uint_eq(e.type, FSP_TYPE_FILE);
  ck_assert_uint_eq(e.size, 5);
  ck_assert_int_eq(e.mtime_ns, MTIME);
  ck_assert_int_eq(memcmp(e.name.ptr, "2024/a.jpg", 10), 0);
  ck_assert_int_eq(fsp_entries_next(&m, &pos, &e), 0);
}
END_TEST

/* A batch fills up: the entry that does not fit is refused whole. */
START_TEST(test_tree_entries_builder_full) {
  uint8_t buf[FSP_HDR_LEN + 4 + FSP_ENTRY2_LEN(3) + 2];
  struct fsp_entries_builder b;
  struct fsp_entry e = {1, 2, {"a/b", 3}, FSP_TYPE_FILE};

  ck_assert_int_eq(fsp_entries_begin_v(&b, buf, sizeof(buf), 1, V3), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &e), FSP_ENOBUFS);
  ck_assert_uint_eq(fsp_entries_finish(&b), sizeof(buf) - 2);
}
END_TEST

/* Longest paths: FSP_PATH_MAX in RENAME's two fields and in an EVENT. */
START_TEST(test_tree_longest_paths) {
  char *p = malloc(FSP_PATH_MAX + 1);
  struct fsp_msg m = {.op = FSP_OP_RENAME, .id = 1};
  struct fsp_frame f;
  struct fsp_msg d;
  uint8_t *buf;
  size_t len;

  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i <= FSP_PATH_MAX; i++)
    p[i] = (i % 200 == 199) ? '/' : 'q';
  p[FSP_PATH_MAX - 1] = 'q';
  m.u.rename.from.ptr = p;
  m.u.rename.from.len = FSP_PATH_MAX;
  m.u.rename.to = m.u.rename.from;
  buf = encode_v3(&m, &len);
  ck_assert_uint_eq(len, FSP_HDR_LEN + 3 + 2 * FSP_PATH_MAX);
  ck_assert_int_eq(fsp_frame_decode(buf, len, 0, &f), len);
  ck_assert_int_eq(fsp_msg_decode_v(&f, V3, &d), 0);
  th_check_msg_eq_v(&m, &d, V3, "longest rename");
  free(buf);
  m.u.rename.to.len = FSP_PATH_MAX + 1;
  p[FSP_PATH_MAX] = 'q';
  ck_assert_int_eq(fsp_msg_encode_v(NULL, 0, V3, &m), FSP_EBADNAME);
  free(p);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *tree_suite(void) {
  Suite *s = suite_create("tree");
  TCase *tc = tcase_create("v3 messages");
  TCase *th = tcase_create("hostile");

  tcase_add_loop_test(tc, test_tree_round_trip, 0, NSAMPLES);
  tcase_add_test(tc, test_tree_split_feeding);
  tcase_add_test(tc, test_tree_version1_unchanged);
  tcase_add_test(tc, test_tree_bad_version_argument);
  tcase_add_test(tc, test_tree_op_version);
  tcase_add_test(tc, test_tree_entries_builder);
  tcase_add_test(tc, test_tree_entries_builder_full);
  tcase_add_test(tc, test_tree_longest_paths);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(th, test_tree_truncated_no_over_read, 0, NSAMPLES);
  tcase_add_loop_test(th, test_tree_path_attacks_every_field, 0, N(attacks));
  tcase_add_loop_test(th, test_tree_raw_payloads, 0, N(raws));
  suite_add_tcase(s, th);
  return s;
}
