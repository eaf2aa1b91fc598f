/* Helpers shared by the libfsproto unit tests. */
#include "helpers.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

ssize_t th_hex(const char *text, uint8_t *out, size_t cap) {
  size_t n = 0;
  const char *p = text;

  for (;;) {
    unsigned v;
    char *end;
    char tok[3];

    while (*p != '\0' && isspace((unsigned char)*p))
      p++;
    if (*p == '\0')
      return (ssize_t)n;
    if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
      return -1;
    if (p[2] != '\0' && !isspace((unsigned char)p[2]))
      return -1;
    tok[0] = p[0];
    tok[1] = p[1];
    tok[2] = '\0';
    v = (unsigned)strtoul(tok, &end, 16);
    if (n == cap)
      return -1;
    out[n++] = (uint8_t)v;
    p += 2;
  }
}

struct fsp_str th_str(const char *s) {
  struct fsp_str r = {s, strlen(s)};
  return r;
}

static void check_str_eq(struct fsp_str a, struct fsp_str b, const char *field,
                         const char *where) {
  ck_assert_msg(a.len == b.len, "%s: %s length %zu != %zu", where, field, a.len,
                b.len);
  if (a.len > 0)
    ck_assert_msg(memcmp(a.ptr, b.ptr, a.len) == 0, "%s: %s bytes differ",
                  where, field);
}

static void check_entry_eq(const struct fsp_entry *a, const struct fsp_entry *b,
                           const char *where) {
  ck_assert_msg(a->type == b->type, "%s: type %u != %u", where, a->type,
                b->type);
  ck_assert_msg(a->size == b->size, "%s: size", where);
  ck_assert_msg(a->mtime_ns == b->mtime_ns, "%s: mtime_ns", where);
  check_str_eq(a->name, b->name, "name", where);
}

void th_check_msg_eq(const struct fsp_msg *a, const struct fsp_msg *b,
                     const char *where) {
  th_check_msg_eq_v(a, b, 1, where);
}

/* The fields that only version 2 layouts have (and the opcodes that exist
 * only there). Returns 1 when a->op was one of them. */
static int check_v2_eq(const struct fsp_msg *a, const struct fsp_msg *b,
                       unsigned version, const char *where) {
  int v2 = version >= FSP_TREE_VERSION;

  switch (a->op) {
  case FSP_OP_LIST:
  case FSP_OP_DELETE:
    if (!v2)
      return 0;
    /* fall through */
  case FSP_OP_MKDIR:
    ck_assert_msg(a->u.tree.flags == b->u.tree.flags, "%s: flags", where);
    check_str_eq(a->u.tree.path, b->u.tree.path, "path", where);
    return 1;
  case FSP_OP_RENAME:
    ck_assert_msg(a->u.rename.flags == b->u.rename.flags, "%s: flags", where);
    check_str_eq(a->u.rename.from, b->u.rename.from, "from", where);
    check_str_eq(a->u.rename.to, b->u.rename.to, "to", where);
    return 1;
  case FSP_OP_SKIPPED:
    ck_assert_msg(a->u.skipped.status == b->u.skipped.status, "%s: status",
                  where);
    check_str_eq(a->u.skipped.path, b->u.skipped.path, "path", where);
    return 1;
  case FSP_OP_SUBSCRIBE:
    check_str_eq(a->u.sub.path, b->u.sub.path, "path", where);
    return 0; /* and epoch, seq as in version 1 */
  case FSP_OP_INFO:
    ck_assert_msg(a->u.entry.type == b->u.entry.type, "%s: type", where);
    return 0;
  case FSP_OP_EVENT:
    check_str_eq(a->u.event.from, b->u.event.from, "from", where);
    return 0;
  default:
    return 0;
  }
}

void th_check_msg_eq_v(const struct fsp_msg *a, const struct fsp_msg *b,
                       unsigned version, const char *where) {
  ck_assert_msg(a->op == b->op, "%s: op 0x%02x != 0x%02x", where, a->op, b->op);
  ck_assert_msg(a->id == b->id, "%s: id %u != %u", where, a->id, b->id);
  if (check_v2_eq(a, b, version, where))
    return;
  switch (a->op) {
  case FSP_OP_HELLO:
    ck_assert_msg(a->u.hello.version == b->u.hello.version, "%s: version",
                  where);
    ck_assert_msg(a->u.hello.max_payload == b->u.hello.max_payload,
                  "%s: max_payload", where);
    ck_assert_msg(a->u.hello.max_inflight == b->u.hello.max_inflight,
                  "%s: max_inflight", where);
    ck_assert_msg(a->u.hello.caps == b->u.hello.caps, "%s: caps", where);
    check_str_eq(a->u.hello.agent, b->u.hello.agent, "agent", where);
    break;
  case FSP_OP_PING:
  case FSP_OP_PONG:
  case FSP_OP_NOTICE:
  case FSP_OP_NOTIFY:
  case FSP_OP_DATA:
    check_str_eq(a->u.text, b->u.text, "text", where);
    break;
  case FSP_OP_BYE:
  case FSP_OP_ERROR:
    ck_assert_msg(a->u.error.status == b->u.error.status, "%s: status", where);
    check_str_eq(a->u.error.text, b->u.error.text, "text", where);
    break;
  case FSP_OP_STAT:
  case FSP_OP_DELETE:
    check_str_eq(a->u.name, b->u.name, "name", where);
    break;
  case FSP_OP_GET:
  case FSP_OP_HASH:
    ck_assert_msg(a->u.range.offset == b->u.range.offset, "%s: offset", where);
    ck_assert_msg(a->u.range.length == b->u.range.length, "%s: length", where);
    check_str_eq(a->u.range.name, b->u.range.name, "name", where);
    break;
  case FSP_OP_PUT:
    ck_assert_msg(a->u.put.size == b->u.put.size, "%s: size", where);
    ck_assert_msg(a->u.put.mode == b->u.put.mode, "%s: mode", where);
    check_str_eq(a->u.put.name, b->u.put.name, "name", where);
    break;
  case FSP_OP_SUBSCRIBE:
  case FSP_OP_SUBSCRIBED:
  case FSP_OP_RESYNC:
    ck_assert_msg(a->u.sub.epoch == b->u.sub.epoch, "%s: epoch", where);
    ck_assert_msg(a->u.sub.seq == b->u.sub.seq, "%s: seq", where);
    break;
  case FSP_OP_END:
    ck_assert_msg(a->u.end.size == b->u.end.size, "%s: size", where);
    ck_assert_msg(a->u.end.hash == b->u.end.hash, "%s: hash", where);
    break;
  case FSP_OP_ENTRIES: {
    size_t pa = 0, pb = 0;
    struct fsp_entry ea, eb;
    int ra, rb;
    uint32_t n = 0;

    ck_assert_msg(a->u.entries.count == b->u.entries.count, "%s: count", where);
    ck_assert_msg(a->u.entries.len == b->u.entries.len, "%s: entries length",
                  where);
    do {
      ra = fsp_entries_next(a, &pa, &ea);
      rb = fsp_entries_next(b, &pb, &eb);
      ck_assert_msg(ra == rb, "%s: entries_next %d != %d", where, ra, rb);
      ck_assert_msg(ra >= 0, "%s: entries_next failed: %s", where,
                    fsp_err_name(ra));
      if (ra == 1) {
        check_entry_eq(&ea, &eb, where);
        n++;
      }
    } while (ra == 1);
    ck_assert_msg(n == a->u.entries.count, "%s: walked %u entries, count %u",
                  where, n, a->u.entries.count);
    break;
  }
  case FSP_OP_INFO:
    ck_assert_msg(a->u.entry.size == b->u.entry.size, "%s: size", where);
    ck_assert_msg(a->u.entry.mtime_ns == b->u.entry.mtime_ns, "%s: mtime_ns",
                  where);
    break;
  case FSP_OP_BEGIN:
    ck_assert_msg(a->u.begin.file_size == b->u.begin.file_size, "%s: file_size",
                  where);
    ck_assert_msg(a->u.begin.mtime_ns == b->u.begin.mtime_ns, "%s: mtime_ns",
                  where);
    ck_assert_msg(a->u.begin.offset == b->u.begin.offset, "%s: offset", where);
    ck_assert_msg(a->u.begin.length == b->u.begin.length, "%s: length", where);
    break;
  case FSP_OP_DIGEST:
    ck_assert_msg(a->u.digest.offset == b->u.digest.offset, "%s: offset",
                  where);
    ck_assert_msg(a->u.digest.length == b->u.digest.length, "%s: length",
                  where);
    ck_assert_msg(a->u.digest.hash == b->u.digest.hash, "%s: hash", where);
    break;
  case FSP_OP_CHALLENGE:
    ck_assert_msg(
        memcmp(a->u.challenge.nonce, b->u.challenge.nonce, FSP_NONCE_LEN) == 0,
        "%s: nonce", where);
    break;
  case FSP_OP_AUTH:
    ck_assert_msg(memcmp(a->u.auth.nonce, b->u.auth.nonce, FSP_NONCE_LEN) == 0,
                  "%s: nonce", where);
    ck_assert_msg(memcmp(a->u.auth.sig, b->u.auth.sig, FSP_SIG_LEN) == 0,
                  "%s: signature", where);
    check_str_eq(a->u.auth.user, b->u.auth.user, "user", where);
    break;
  case FSP_OP_EVENT:
    ck_assert_msg(a->u.event.seq == b->u.event.seq, "%s: seq", where);
    ck_assert_msg(a->u.event.kind == b->u.event.kind, "%s: kind", where);
    check_entry_eq(&a->u.event.file, &b->u.event.file, where);
    break;
  default: /* no payload */
    break;
  }
}

/* Two pre-encoded ENTRIES entries: "f\xc3\xbc.tt" (6 bytes, 2^64-1 bytes
 * big, mtime -1) and "z" (size 0x0102030405060708, mtime INT64_MIN). */
static const uint8_t sample_entries[] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* size */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* mtime_ns -1 */
    0x00, 0x06, 'f',  0xc3, 0xbc, '.',  't',  't',  /* name */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* size */
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* mtime_ns min */
    0x00, 0x01, 'z',
};

/* Nonces and a signature whose bytes are all distinct and cover the top
 * bit, so a swapped or shifted field shows. */
static const uint8_t sample_nonce[FSP_NONCE_LEN] = {
    0x00, 0xff, 0x01, 0xfe, 0x02, 0xfd, 0x03, 0xfc, 0x04, 0xfb, 0x05,
    0xfa, 0x06, 0xf9, 0x07, 0xf8, 0x08, 0xf7, 0x09, 0xf6, 0x0a, 0xf5,
    0x0b, 0xf4, 0x0c, 0xf3, 0x0d, 0xf2, 0x0e, 0xf1, 0x0f, 0xf0};
static const uint8_t sample_sig[FSP_NONCE_LEN + FSP_SIG_LEN] = {
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
    0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
    0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b,
    0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
    0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3,
    0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};

#define NAME_UTF8 "r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac.txt"

static const struct fsp_msg samples[] = {
    {.op = FSP_OP_HELLO,
     .id = 0,
     .u.hello = {.version = 0x0102,
                 .max_payload = 0x00100000,
                 .max_inflight = 0x01020304,
                 .caps = 0x8000000000000006ull,
                 .agent = {"fsd/0.1.0 \xf0\x9f\x93\x81", 14}}},
    {.op = FSP_OP_PING, .id = 1, .u.text = {"\x00\xff\x80 ping", 8}},
    {.op = FSP_OP_PONG, .id = 0xfffffffe, .u.text = {"", 0}},
    {.op = FSP_OP_BYE, .id = 3, .u.error = {FSP_ST_SHUTDOWN, {"bye", 3}}},
    {.op = FSP_OP_LIST, .id = 4},
    {.op = FSP_OP_STAT, .id = 5, .u.name = {NAME_UTF8, sizeof(NAME_UTF8) - 1}},
    {.op = FSP_OP_DELETE, .id = 6, .u.name = {"a", 1}},
    {.op = FSP_OP_GET,
     .id = 7,
     .u.range = {0x0102030405060708ull, FSP_LENGTH_TO_END, {"a.txt", 5}}},
    {.op = FSP_OP_PUT,
     .id = 8,
     .u.put = {0xfedcba9876543210ull, FSP_PUT_NO_CLOBBER, {"b.bin", 5}}},
    {.op = FSP_OP_HASH,
     .id = 9,
     .u.range = {0, 0x8000000000000001ull, {"c", 1}}},
    {.op = FSP_OP_SUBSCRIBE,
     .id = 10,
     .u.sub = {0x1122334455667788ull, 42, {NULL, 0}}},
    {.op = FSP_OP_UNSUBSCRIBE, .id = 11},
    {.op = FSP_OP_NOTICE, .id = 12, .u.text = {"hello \xe2\x82\xac", 9}},
    {.op = FSP_OP_CANCEL, .id = 13},
    {.op = FSP_OP_DATA, .id = 14, .u.text = {"\x00\x01\x02\xff\xfe", 5}},
    {.op = FSP_OP_END, .id = 15, .u.end = {5, 0x2d06800538d394c2ull}},
    {.op = FSP_OP_OK, .id = 16},
    {.op = FSP_OP_ERROR,
     .id = 17,
     .u.error = {FSP_ST_NOT_FOUND, {"no such file: a.txt", 19}}},
    {.op = FSP_OP_ENTRIES,
     .id = 18,
     .u.entries = {2, sample_entries, sizeof(sample_entries), 1}},
    {.op = FSP_OP_INFO,
     .id = 19,
     .u.entry = {0x0a0b0c0d0e0f1011ull, -1700000000123456789ll, {NULL, 0}, 0}},
    {.op = FSP_OP_BEGIN,
     .id = 20,
     .u.begin = {1000, 1700000000123456789ll, 10, 990}},
    {.op = FSP_OP_READY, .id = 21},
    {.op = FSP_OP_DIGEST, .id = 22, .u.digest = {1, 2, 0xffffffffffffffffull}},
    {.op = FSP_OP_SUBSCRIBED,
     .id = 23,
     .u.sub = {0xdeadbeefcafef00dull, 0, {NULL, 0}}},
    {.op = FSP_OP_EVENT,
     .id = 0,
     .u.event = {0x0102030405060708ull,
                 FSP_EV_REPLACED,
                 {0x1112131415161718ull, INT64_MIN, {"e.txt", 5}, 0},
                 {NULL, 0}}},
    {.op = FSP_OP_NOTIFY, .id = 0, .u.text = {"x", 1}},
    {.op = FSP_OP_RESYNC,
     .id = 0,
     .u.sub = {7, 0xffffffffffffffffull, {NULL, 0}}},
    /* One layout in every version. */
    {.op = FSP_OP_MKDIR,
     .id = 24,
     .u.tree = {FSP_MKDIR_PARENTS, {"a/" NAME_UTF8, sizeof(NAME_UTF8) + 1}}},
    {.op = FSP_OP_RENAME,
     .id = 25,
     .u.rename = {FSP_RENAME_NO_REPLACE, {"a/b", 3}, {"c", 1}}},
    {.op = FSP_OP_SKIPPED,
     .id = 26,
     .u.skipped = {FSP_ST_IO, {"old/locked.bin", 14}}},
    {.op = FSP_OP_CHALLENGE, .id = 0, .u.challenge = {sample_nonce}},
    {.op = FSP_OP_AUTH,
     .id = 0,
     .u.auth = {sample_sig, sample_sig + FSP_NONCE_LEN, {"alice.b-c_9", 11}}},
};

size_t th_samples(const struct fsp_msg **out) {
  *out = samples;
  return sizeof(samples) / sizeof(samples[0]);
}

uint8_t *th_encode(const struct fsp_msg *m, size_t *len) {
  ssize_t need = fsp_msg_encode(NULL, 0, m);
  uint8_t *buf;
  ssize_t n;

  ck_assert_msg(need >= (ssize_t)FSP_HDR_LEN, "encode %s: %s",
                fsp_op_name(m->op), fsp_err_name((int)need));
  buf = malloc((size_t)need);
  ck_assert_ptr_nonnull(buf);
  n = fsp_msg_encode(buf, (size_t)need, m);
  ck_assert_int_eq(n, need);
  *len = (size_t)n;
  return buf;
}

static size_t page_size(void) {
  return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t guard_span(size_t len) {
  size_t ps = page_size();
  return (len + ps - 1) / ps * ps + ps;
}

uint8_t *th_guard_alloc(size_t len) {
  size_t span = guard_span(len);
  uint8_t *base;

  base = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
  ck_assert_msg(base != MAP_FAILED, "mmap failed");
  ck_assert_int_eq(mprotect(base + span - page_size(), page_size(), PROT_NONE),
                   0);
  return base + span - page_size() - len;
}

void th_guard_free(uint8_t *p, size_t len) {
  size_t span = guard_span(len);
  uint8_t *end = p + len + page_size();

  munmap(end - span, span);
}

uint8_t *th_guard_copy(const void *buf, size_t len) {
  uint8_t *p = th_guard_alloc(len);

  if (len > 0)
    memcpy(p, buf, len);
  return p;
}
