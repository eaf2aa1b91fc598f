/* protocol.md's hex examples, checked byte for byte against the encoder and
 * decoded back. The path of protocol.md is the program's first argument.
 *
 * Every fenced block whose info string is "fsp-hex NAME" is one complete
 * frame. Each NAME must have an entry in the table below describing the
 * message in words-turned-into-code, and each entry must have an example, so
 * neither the document nor the code can change alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "helpers.h"

#define MAX_EXAMPLES 64

struct example {
  char name[64];
  uint8_t bytes[512];
  size_t len;
  int bad_hex; /* the block did not parse */
};

static struct example examples[MAX_EXAMPLES];
static size_t nexamples;

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;

  ck_assert_msg(f != NULL, "cannot open %s", path);
  ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  ck_assert_int_ge(n, 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static const char *protocol_md(void) {
  ck_assert_msg(fsp_test_argc >= 2, "usage: test_spec path/to/protocol.md");
  return fsp_test_argv[1];
}

/* Collects the fsp-hex blocks of protocol.md into examples[]. */
static void load_examples(void) {
  static const char fence[] = "```";
  static const char info[] = "```fsp-hex";
  char *doc = read_file(protocol_md());
  char *line = doc;

  nexamples = 0;
  while (line != NULL && *line != '\0') {
    char *next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    if (strncmp(line, info, sizeof(info) - 1) == 0) {
      struct example *e = &examples[nexamples];
      const char *name = line + sizeof(info) - 1;
      char *body = next, *end;

      ck_assert_uint_lt(nexamples, MAX_EXAMPLES);
      ck_assert_msg(*name == ' ', "fsp-hex block without a name: %s", line);
      while (*name == ' ')
        name++;
      ck_assert_msg(*name != '\0' && strlen(name) < sizeof(e->name),
                    "bad example name: %s", line);
      snprintf(e->name, sizeof(e->name), "%s", name);
      /* The body runs to the closing fence at the start of a line. */
      end = body;
      while (end != NULL && strncmp(end, fence, sizeof(fence) - 1) != 0) {
        end = strchr(end, '\n');
        if (end != NULL)
          end++;
      }
      ck_assert_msg(end != NULL, "example %s is not closed", e->name);
      end[-1] = '\0';
      {
        ssize_t n = th_hex(body, e->bytes, sizeof(e->bytes));
        e->bad_hex = n < 0;
        e->len = n < 0 ? 0 : (size_t)n;
      }
      nexamples++;
      next = strchr(end, '\n');
      if (next != NULL)
        next++;
    }
    line = next;
  }
  free(doc);
}

/* ------------------------------------------------------------------------ */
/* What the text of protocol.md section 8 says each example is.             */

#define MTIME_1 1700000000123456789ll /* 2023-11-14T22:13:20.123456789Z */
#define MTIME_2 1700000000000000000ll

/* Builds the described frame into buf (returns its size) and fills m with
 * the message that decoding the example must give. */
typedef size_t build_fn(uint8_t *buf, size_t cap, struct fsp_msg *m);

static size_t encode(uint8_t *buf, size_t cap, const struct fsp_msg *m) {
  ssize_t n = fsp_msg_encode(buf, cap, m);

  ck_assert_msg(n > 0 && (size_t)n <= cap, "encode %s: %zd", fsp_op_name(m->op),
                n);
  return (size_t)n;
}

static size_t hello_client(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_HELLO;
  m->id = FSP_EVENT_ID;
  m->u.hello.version = 1;
  m->u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  m->u.hello.max_inflight = 0;
  m->u.hello.caps = 0;
  m->u.hello.agent = th_str("fsc/0.1.0");
  return encode(buf, cap, m);
}

static size_t hello_server(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_HELLO;
  m->id = FSP_EVENT_ID;
  m->u.hello.version = 1;
  m->u.hello.max_payload = 1048576;
  m->u.hello.max_inflight = 64;
  m->u.hello.caps = FSP_CAP_EVENTS | FSP_CAP_NOTICE;
  m->u.hello.agent = th_str("fsd/0.1.0");
  return encode(buf, cap, m);
}

static size_t stat_request(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_STAT;
  m->id = 7;
  m->u.name = th_str("a.txt");
  return encode(buf, cap, m);
}

static size_t info_reply(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_INFO;
  m->id = 7;
  m->u.entry.size = 1234;
  m->u.entry.mtime_ns = MTIME_1;
  return encode(buf, cap, m);
}

static size_t error_reply(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_ERROR;
  m->id = 8;
  m->u.error.status = FSP_ST_NOT_FOUND;
  m->u.error.text = th_str("no such file");
  return encode(buf, cap, m);
}

static size_t get_request(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_GET;
  m->id = 9;
  m->u.range.offset = 0;
  m->u.range.length = FSP_LENGTH_TO_END;
  m->u.range.name = th_str("a.txt");
  return encode(buf, cap, m);
}

static size_t event_added(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_EVENT;
  m->id = FSP_EVENT_ID;
  m->u.event.seq = 42;
  m->u.event.kind = FSP_EV_ADDED;
  m->u.event.file.size = 5;
  m->u.event.file.mtime_ns = MTIME_1;
  m->u.event.file.name = th_str("a.txt");
  return encode(buf, cap, m);
}

/* Built with the in-place builder, the way fsd sends LIST answers. */
static size_t entries(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  struct fsp_entries_builder b;
  struct fsp_entry a = {5, MTIME_1, {"a.txt", 5}, 0};
  struct fsp_entry e = {0, MTIME_2, {"b", 1}, 0};
  size_t n;

  ck_assert_int_eq(fsp_entries_begin(&b, buf, cap, 3), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &a), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
  n = fsp_entries_finish(&b);
  m->op = FSP_OP_ENTRIES;
  m->id = 3;
  m->u.entries.count = 2;
  m->u.entries.buf = buf + FSP_HDR_LEN + 4;
  m->u.entries.len = n - FSP_HDR_LEN - 4;
  return n;
}

/* Section 11: bytes 0x00, 0x01, ... as the text's nonces, and the signature
 * it gives (test_auth.c checks that signature with OpenSSL). */
static const uint8_t counting[] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b,
    0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36,
    0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f};
static const char sig_tls_hex[] =
    "9a 56 e7 20 ae 32 a3 e3 2b 22 58 36 ee 39 d3 3c 47 1d 0c ad 0d df 65 78 "
    "2f a3 02 32 be 17 5b 41 41 a3 3e 83 97 88 98 e2 4a 3f 14 f7 4c 5a 14 ac "
    "a3 6a c1 e8 c0 f1 8c 4a f8 76 90 09 e5 a5 71 02";

static size_t hello_server_auth(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_HELLO;
  m->id = FSP_EVENT_ID;
  m->u.hello.version = FSP_AUTH_VERSION;
  m->u.hello.max_payload = 1048576;
  m->u.hello.max_inflight = 64;
  m->u.hello.caps = FSP_CAP_AUTH | FSP_CAP_EVENTS | FSP_CAP_NOTICE;
  m->u.hello.agent = th_str("fsd/0.2.0");
  return encode(buf, cap, m);
}

static size_t challenge(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_CHALLENGE;
  m->id = FSP_EVENT_ID;
  m->u.challenge.nonce = counting;
  return encode(buf, cap, m);
}

static size_t auth(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  static uint8_t sig[FSP_SIG_LEN];

  ck_assert_int_eq(th_hex(sig_tls_hex, sig, sizeof(sig)), FSP_SIG_LEN);
  m->op = FSP_OP_AUTH;
  m->id = FSP_EVENT_ID;
  m->u.auth.nonce = counting + FSP_NONCE_LEN;
  m->u.auth.sig = sig;
  m->u.auth.user = th_str("alice");
  return encode(buf, cap, m);
}

static size_t error_unauthenticated(uint8_t *buf, size_t cap,
                                    struct fsp_msg *m) {
  m->op = FSP_OP_ERROR;
  m->id = FSP_EVENT_ID;
  m->u.error.status = FSP_ST_UNAUTHENTICATED;
  m->u.error.text = th_str("authentication failed for user alice");
  return encode(buf, cap, m);
}

static size_t error_forbidden(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_ERROR;
  m->id = 5;
  m->u.error.status = FSP_ST_FORBIDDEN;
  m->u.error.text = th_str("user bob lacks the write right: a.txt");
  return encode(buf, cap, m);
}

/* Section 12: version 3 frames, encoded with fsp_msg_encode_v(). */
static size_t encode2(uint8_t *buf, size_t cap, const struct fsp_msg *m) {
  ssize_t n = fsp_msg_encode_v(buf, cap, FSP_TREE_VERSION, m);

  ck_assert_msg(n > 0 && (size_t)n <= cap, "encode %s: %zd", fsp_op_name(m->op),
                n);
  return (size_t)n;
}

static size_t list_recursive(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_LIST;
  m->id = 4;
  m->u.tree.flags = FSP_LIST_RECURSIVE;
  m->u.tree.path = th_str("photos");
  return encode2(buf, cap, m);
}

static size_t entries_tree(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  struct fsp_entries_builder b;
  struct fsp_entry d = {0, MTIME_2, {"2024", 4}, FSP_TYPE_FOLDER};
  struct fsp_entry f = {5, MTIME_1, {"2024/a.jpg", 10}, FSP_TYPE_FILE};
  size_t n;

  ck_assert_int_eq(fsp_entries_begin_v(&b, buf, cap, 4, FSP_TREE_VERSION), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &d), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &f), 0);
  n = fsp_entries_finish(&b);
  m->op = FSP_OP_ENTRIES;
  m->id = 4;
  m->u.entries.count = 2;
  m->u.entries.buf = buf + FSP_HDR_LEN + 4;
  m->u.entries.len = n - FSP_HDR_LEN - 4;
  m->u.entries.version = FSP_TREE_VERSION;
  return n;
}

static size_t info_folder(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_INFO;
  m->id = 3;
  m->u.entry.size = 0;
  m->u.entry.mtime_ns = MTIME_2;
  m->u.entry.type = FSP_TYPE_FOLDER;
  return encode2(buf, cap, m);
}

static size_t mkdir_parents(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_MKDIR;
  m->id = 5;
  m->u.tree.flags = FSP_MKDIR_PARENTS;
  m->u.tree.path = th_str("a/b/c");
  return encode2(buf, cap, m);
}

static size_t rename_no_replace(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_RENAME;
  m->id = 6;
  m->u.rename.flags = FSP_RENAME_NO_REPLACE;
  m->u.rename.from = th_str("a/x.txt");
  m->u.rename.to = th_str("b/y.txt");
  return encode2(buf, cap, m);
}

static size_t delete_recursive(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_DELETE;
  m->id = 7;
  m->u.tree.flags = FSP_DELETE_RECURSIVE;
  m->u.tree.path = th_str("old");
  return encode2(buf, cap, m);
}

static size_t skipped(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_SKIPPED;
  m->id = 7;
  m->u.skipped.status = FSP_ST_IO;
  m->u.skipped.path = th_str("old/locked.bin");
  return encode2(buf, cap, m);
}

static size_t put_parents(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_PUT;
  m->id = 8;
  m->u.put.size = 5;
  m->u.put.mode = FSP_PUT_REPLACE | FSP_PUT_PARENTS;
  m->u.put.name = th_str("new/dir/f.txt");
  return encode2(buf, cap, m);
}

static size_t subscribe_subtree(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_SUBSCRIBE;
  m->id = 9;
  m->u.sub.epoch = 0;
  m->u.sub.seq = 0;
  m->u.sub.path = th_str("photos");
  return encode2(buf, cap, m);
}

static size_t event_renamed(uint8_t *buf, size_t cap, struct fsp_msg *m) {
  m->op = FSP_OP_EVENT;
  m->id = FSP_EVENT_ID;
  m->u.event.seq = 43;
  m->u.event.kind = FSP_EV_RENAMED;
  m->u.event.file.type = FSP_TYPE_FILE;
  m->u.event.file.size = 5;
  m->u.event.file.mtime_ns = MTIME_1;
  m->u.event.file.name = th_str("b/y.txt");
  m->u.event.from = th_str("a/x.txt");
  return encode2(buf, cap, m);
}

/* version: the protocol version the example is written in (its frames
 * decode with fsp_msg_decode_v() at that version). */
static const struct {
  const char *name;
  build_fn *build;
  unsigned version;
} table[] = {
    {"hello-client", hello_client, 1},
    {"hello-server", hello_server, 1},
    {"stat-request", stat_request, 1},
    {"info-reply", info_reply, 1},
    {"error-reply", error_reply, 1},
    {"get-request", get_request, 1},
    {"event-added", event_added, 1},
    {"entries", entries, 1},
    {"list-recursive", list_recursive, 3},
    {"entries-tree", entries_tree, 3},
    {"info-folder", info_folder, 3},
    {"mkdir-parents", mkdir_parents, 3},
    {"rename-no-replace", rename_no_replace, 3},
    {"delete-recursive", delete_recursive, 3},
    {"skipped", skipped, 3},
    {"put-parents", put_parents, 3},
    {"subscribe-subtree", subscribe_subtree, 3},
    {"event-renamed", event_renamed, 3},
    {"hello-server-auth", hello_server_auth, 2},
    {"challenge", challenge, 2},
    {"auth", auth, 2},
    {"error-unauthenticated", error_unauthenticated, 2},
    {"error-forbidden", error_forbidden, 2},
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

static const struct example *find_example(const char *name) {
  for (size_t i = 0; i < nexamples; i++)
    if (strcmp(examples[i].name, name) == 0)
      return &examples[i];
  return NULL;
}

/* ------------------------------------------------------------------------ */

START_TEST(test_spec_examples_have_table_entries) {
  load_examples();
  ck_assert_msg(nexamples > 0, "no fsp-hex examples in %s", protocol_md());
  for (size_t i = 0; i < nexamples; i++) {
    size_t found = 0;
    ck_assert_msg(!examples[i].bad_hex, "example %s: bad hex",
                  examples[i].name);
    for (size_t j = 0; j < NTABLE; j++)
      found += strcmp(table[j].name, examples[i].name) == 0;
    ck_assert_msg(found == 1, "example %s in protocol.md has no test entry",
                  examples[i].name);
    for (size_t j = i + 1; j < nexamples; j++)
      ck_assert_msg(strcmp(examples[i].name, examples[j].name) != 0,
                    "example %s appears twice", examples[i].name);
  }
}
END_TEST

START_TEST(test_spec_table_entries_have_examples) {
  load_examples();
  ck_assert_msg(find_example(table[_i].name) != NULL,
                "protocol.md has no fsp-hex block named %s", table[_i].name);
}
END_TEST

/* The example is exactly what the encoder writes, and decodes (one whole
 * frame, nothing left over) to the message the text describes. */
START_TEST(test_spec_example_matches_encoder) {
  const struct example *e;
  uint8_t buf[512];
  struct fsp_msg want, got;
  struct fsp_frame f;
  size_t n;

  load_examples();
  e = find_example(table[_i].name);
  ck_assert_msg(e != NULL, "no example %s", table[_i].name);
  memset(&want, 0, sizeof(want));
  n = table[_i].build(buf, sizeof(buf), &want);
  if (n != e->len || memcmp(buf, e->bytes, n) != 0) {
    char hex[3 * sizeof(buf) + 1] = "";
    for (size_t i = 0; i < n; i++)
      snprintf(hex + 3 * i, 4, "%02x ", buf[i]);
    ck_abort_msg("example %s differs from the encoder, which writes: %s",
                 e->name, hex);
  }
  ck_assert_int_eq(fsp_frame_decode(e->bytes, e->len, 0, &f), e->len);
  ck_assert_int_eq(fsp_msg_decode_v(&f, table[_i].version, &got), 0);
  th_check_msg_eq_v(&want, &got, table[_i].version, e->name);
}
END_TEST

/* protocol.md states the checksum of zero bytes; libxxhash agrees. */
START_TEST(test_spec_xxh3_of_nothing) {
  char *doc = read_file(protocol_md());

  ck_assert_uint_eq(XXH3_64bits("", 0), 0x2d06800538d394c2ull);
  ck_assert_ptr_nonnull(strstr(doc, "2d06800538d394c2"));
  ck_assert_ptr_nonnull(strstr(doc, "XXH3_64bits()"));
  free(doc);
}
END_TEST

Suite *spec_suite(void) {
  Suite *s = suite_create("spec");
  TCase *tc = tcase_create("protocol.md");

  tcase_add_test(tc, test_spec_examples_have_table_entries);
  tcase_add_loop_test(tc, test_spec_table_entries_have_examples, 0,
                      (int)NTABLE);
  tcase_add_loop_test(tc, test_spec_example_matches_encoder, 0, (int)NTABLE);
  tcase_add_test(tc, test_spec_xxh3_of_nothing);
  suite_add_tcase(s, tc);
  return s;
}
