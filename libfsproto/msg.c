/* Typed messages: payload layouts of protocol.md section 5.
 *
 * Decoding and encoding share one description per opcode: the fixed fields,
 * then at most one variable "rest" field (a name, a text or raw bytes).
 * fsp_msg_decode() and fsp_msg_encode() apply the same checks, so anything
 * the encoder writes the decoder accepts and vice versa. Version 3
 * (protocol.md section 12) changes some layouts and turns names into paths;
 * the version is an argument, since the frames themselves do not carry it.
 */
#include <string.h>

#include "fsp_int.h"

/* What kind of trailing field a message has, and its limits. */
enum rest_kind {
  REST_NONE,   /* fixed layout: the payload length must match exactly */
  REST_NAME,   /* a file name, checked with fsp_name_check() */
  REST_TEXT,   /* UTF-8 text between min and max bytes */
  REST_BYTES,  /* opaque bytes up to max */
  REST_PATH,   /* a path, checked with fsp_path_check() */
  REST_FOLDER, /* a path or nothing (the root folder) */
  REST_USER,   /* a user name, checked with fsp_user_check() */
  REST_PATH2,  /* two paths: the last u16 of the fixed part is the first's
                  length; the second runs to the end and may be empty only
                  when min is 0 */
};

struct layout {
  size_t fixed;        /* bytes of fixed fields before the rest */
  enum rest_kind rest; /* what follows them */
  size_t min, max;     /* rest length limits (REST_TEXT, REST_BYTES) */
};

/* Version 3 layouts that differ from version 1 (protocol.md section 12),
 * and the opcodes that exist only there (which have this layout in every
 * version). Returns 1 when op is one of them and *l is filled. */
static int layout_tree(uint8_t op, unsigned version, struct layout *l) {
  int tree = version >= FSP_TREE_VERSION;

  switch (op) {
  case FSP_OP_MKDIR:
  case FSP_OP_SKIPPED:
    l->fixed = op == FSP_OP_MKDIR ? 1 : 2;
    l->rest = REST_PATH;
    return 1;
  case FSP_OP_RENAME:
    l->fixed = 3;
    l->rest = REST_PATH2;
    l->min = 1;
    return 1;
  case FSP_OP_LIST:
  case FSP_OP_DELETE:
    if (!tree)
      return 0;
    l->fixed = 1;
    l->rest = op == FSP_OP_LIST ? REST_FOLDER : REST_PATH;
    return 1;
  case FSP_OP_STAT:
  case FSP_OP_GET:
  case FSP_OP_HASH:
  case FSP_OP_PUT:
    if (!tree)
      return 0;
    l->fixed = op == FSP_OP_STAT ? 0 : op == FSP_OP_PUT ? 9 : 16;
    l->rest = REST_PATH;
    return 1;
  case FSP_OP_SUBSCRIBE:
    if (!tree)
      return 0;
    l->fixed = 16;
    l->rest = REST_FOLDER;
    return 1;
  case FSP_OP_INFO:
    if (!tree)
      return 0;
    l->fixed = 17;
    return 1;
  case FSP_OP_EVENT:
    if (!tree)
      return 0;
    l->fixed = 28;
    l->rest = REST_PATH2;
    return 1;
  default:
    return 0;
  }
}

/* Returns 0 and fills *l for a known opcode other than ENTRIES (which has a
 * layout of its own), FSP_EOPCODE otherwise. */
static int layout_of(uint8_t op, unsigned version, struct layout *l) {
  l->fixed = 0;
  l->rest = REST_NONE;
  l->min = 0;
  l->max = FSP_MAX_PAYLOAD;
  if (layout_tree(op, version, l))
    return 0;
  switch (op) {
  case FSP_OP_HELLO:
    l->fixed = 20;
    l->rest = REST_TEXT;
    l->max = FSP_AGENT_MAX;
    return 0;
  case FSP_OP_PING:
  case FSP_OP_PONG:
    l->rest = REST_BYTES;
    l->max = FSP_PING_MAX;
    return 0;
  case FSP_OP_BYE:
  case FSP_OP_ERROR:
    l->fixed = 2;
    l->rest = REST_TEXT;
    return 0;
  case FSP_OP_LIST:
  case FSP_OP_UNSUBSCRIBE:
  case FSP_OP_CANCEL:
  case FSP_OP_OK:
  case FSP_OP_READY:
    return 0;
  case FSP_OP_STAT:
  case FSP_OP_DELETE:
    l->rest = REST_NAME;
    return 0;
  case FSP_OP_GET:
  case FSP_OP_HASH:
    l->fixed = 16;
    l->rest = REST_NAME;
    return 0;
  case FSP_OP_PUT:
    l->fixed = 9;
    l->rest = REST_NAME;
    return 0;
  case FSP_OP_SUBSCRIBE:
  case FSP_OP_SUBSCRIBED:
  case FSP_OP_RESYNC:
  case FSP_OP_END:
  case FSP_OP_INFO:
    l->fixed = 16;
    return 0;
  case FSP_OP_NOTICE:
  case FSP_OP_NOTIFY:
    l->rest = REST_TEXT;
    l->min = 1;
    l->max = FSP_NOTICE_MAX;
    return 0;
  case FSP_OP_DATA:
    l->rest = REST_BYTES;
    return 0;
  case FSP_OP_BEGIN:
    l->fixed = 32;
    return 0;
  case FSP_OP_DIGEST:
    l->fixed = 24;
    return 0;
  case FSP_OP_EVENT:
    l->fixed = 25;
    l->rest = REST_NAME;
    return 0;
  case FSP_OP_CHALLENGE:
    l->fixed = FSP_NONCE_LEN;
    return 0;
  case FSP_OP_AUTH:
    l->fixed = FSP_NONCE_LEN + FSP_SIG_LEN;
    l->rest = REST_USER;
    return 0;
  default:
    return FSP_EOPCODE;
  }
}

/* Checks a rest field against its layout. A rest field longer than its
 * limit is long_err: for a decoded payload that is FSP_EMALFORMED like any
 * other field outside its layout (protocol.md section 7: BAD_REQUEST), for
 * an encode FSP_ETOOBIG. One shorter than its minimum (an empty NOTICE) is
 * short_err. */
static int check_rest(const struct layout *l, const void *p, size_t len,
                      int short_err, int long_err) {
  switch (l->rest) {
  case REST_NONE:
    return len == 0 ? 0 : FSP_EMALFORMED;
  case REST_NAME:
    return fsp_name_check(p, len);
  case REST_PATH:
    return fsp_path_check(p, len);
  case REST_FOLDER:
    return fsp_folder_path_check(p, len);
  case REST_PATH2:
    return FSP_EINVAL; /* checked by check_paths() */
  case REST_TEXT:
    if (len > l->max)
      return long_err;
    if (len < l->min)
      return short_err;
    return fsp_utf8_check(p, len);
  case REST_BYTES:
    return len > l->max ? long_err : 0;
  case REST_USER:
    return fsp_user_check(p, len);
  }
  return FSP_EINVAL;
}

/* HELLO's max_payload lies between FSP_MIN_PAYLOAD and FSP_MAX_PAYLOAD:
 * a peer announcing less could not take the frames every peer may send
 * before the HELLOs crossed. */
static int max_payload_ok(uint32_t v) {
  return v >= FSP_MIN_PAYLOAD && v <= FSP_MAX_PAYLOAD;
}

/* Checks the two paths of a REST_PATH2 field: first_len bytes of path,
 * then the second path in the remaining bytes (empty allowed when l->min is
 * 0). first_len comes off the wire, so it is compared with what is there
 * before anything is read. */
static int check_paths(const struct layout *l, const char *rest,
                       size_t rest_len, size_t first_len) {
  if (first_len > rest_len)
    return FSP_EMALFORMED;
  if (fsp_path_check(rest, first_len) != 0)
    return FSP_EBADNAME;
  if (rest_len == first_len && l->min == 0)
    return 0;
  return fsp_path_check(rest + first_len, rest_len - first_len);
}

static int type_ok(uint8_t type) {
  return type == FSP_TYPE_FILE || type == FSP_TYPE_FOLDER;
}

/* Parses one ENTRIES entry at p[0..left) in the layout of version (1: u64
 * size, i64 mtime, u16 name_len, name; 2: a type byte before the length,
 * and a path). Returns its size or a negative FSP_E* code. */
static ssize_t parse_entry(const uint8_t *p, size_t left, unsigned version,
                           struct fsp_entry *e) {
  size_t head =
      version >= FSP_TREE_VERSION ? FSP_ENTRY2_LEN(0) : FSP_ENTRY_LEN(0);
  size_t name_len;
  int r;

  if (left < head)
    return FSP_EMALFORMED;
  name_len = fsp__get16(p + head - 2);
  if (left - head < name_len)
    return FSP_EMALFORMED;
  e->type = 0;
  if (version >= FSP_TREE_VERSION) {
    if (!type_ok(p[16]))
      return FSP_EMALFORMED;
    e->type = p[16];
    r = fsp_path_check(p + head, name_len);
  } else {
    r = fsp_name_check(p + head, name_len);
  }
  if (r != 0)
    return r;
  e->size = fsp__get64(p);
  e->mtime_ns = (int64_t)fsp__get64(p + 8);
  e->name.ptr = (const char *)p + head;
  e->name.len = name_len;
  return (ssize_t)(head + name_len);
}

/* Checks that buf[0..len) holds exactly count valid entries. The loop is
 * bounded by the bytes present, never by the count, so a hostile count of
 * 0xffffffff costs nothing. */
static int check_entries(const uint8_t *buf, size_t len, uint32_t count,
                         unsigned version) {
  size_t pos = 0;
  uint32_t seen = 0;
  struct fsp_entry e;

  while (pos < len) {
    ssize_t n = parse_entry(buf + pos, len - pos, version, &e);
    if (n < 0)
      return (int)n;
    if (seen == count)
      return FSP_EMALFORMED; /* more entries than announced */
    seen++;
    pos += (size_t)n;
  }
  return seen == count ? 0 : FSP_EMALFORMED;
}

/* Fills m from the fields of a message whose layout layout_tree() gave
 * (version 3, or an opcode that exists only there). rest is the variable
 * field, already checked. Returns 0 or FSP_EMALFORMED for a field out of
 * range (unknown flag bits, type or event kind). */
static int decode_v2(const uint8_t *p, const char *rest, size_t rest_len,
                     struct fsp_msg *m) {
  switch (m->op) {
  case FSP_OP_LIST:
  case FSP_OP_DELETE:
  case FSP_OP_MKDIR:
    /* The one flag each has is bit 0. */
    if ((p[0] & ~1u) != 0)
      return FSP_EMALFORMED;
    m->u.tree.flags = p[0];
    m->u.tree.path.ptr = rest;
    m->u.tree.path.len = rest_len;
    return 0;
  case FSP_OP_RENAME:
    if ((p[0] & ~FSP_RENAME_NO_REPLACE) != 0)
      return FSP_EMALFORMED;
    m->u.rename.flags = p[0];
    m->u.rename.from.ptr = rest;
    m->u.rename.from.len = fsp__get16(p + 1);
    m->u.rename.to.ptr = rest + m->u.rename.from.len;
    m->u.rename.to.len = rest_len - m->u.rename.from.len;
    return 0;
  case FSP_OP_SKIPPED:
    m->u.skipped.status = fsp__get16(p);
    m->u.skipped.path.ptr = rest;
    m->u.skipped.path.len = rest_len;
    return 0;
  case FSP_OP_SUBSCRIBE:
    m->u.sub.epoch = fsp__get64(p);
    m->u.sub.seq = fsp__get64(p + 8);
    m->u.sub.path.ptr = rest;
    m->u.sub.path.len = rest_len;
    return 0;
  case FSP_OP_INFO:
    if (!type_ok(p[16]))
      return FSP_EMALFORMED;
    m->u.entry.size = fsp__get64(p);
    m->u.entry.mtime_ns = (int64_t)fsp__get64(p + 8);
    m->u.entry.type = p[16];
    return 0;
  case FSP_OP_EVENT: {
    size_t path_len = fsp__get16(p + 26);
    int renamed = p[8] == FSP_EV_RENAMED;

    /* A rename carries its old path, and only a rename does. */
    if (p[8] < FSP_EV_ADDED || p[8] > FSP_EV_RENAMED || !type_ok(p[9]) ||
        renamed != (rest_len > path_len))
      return FSP_EMALFORMED;
    m->u.event.seq = fsp__get64(p);
    m->u.event.kind = p[8];
    m->u.event.file.type = p[9];
    m->u.event.file.size = fsp__get64(p + 10);
    m->u.event.file.mtime_ns = (int64_t)fsp__get64(p + 18);
    m->u.event.file.name.ptr = rest;
    m->u.event.file.name.len = path_len;
    m->u.event.from.ptr = rest + path_len;
    m->u.event.from.len = rest_len - path_len;
    return 0;
  }
  default: /* STAT, GET, HASH, PUT: version 1 fields, path for name */
    return 1;
  }
}

/* Fills m from the fields of a version 1 layout (also those of STAT, GET,
 * HASH and PUT in version 3, which only turn the name into a path). rest
 * is the variable field, already checked. Returns 0 or FSP_EMALFORMED. */
static int decode_v1(const uint8_t *p, const char *rest, size_t rest_len,
                     struct fsp_msg *m) {
  switch (m->op) {
  case FSP_OP_HELLO:
    if (fsp__get16(p + 2) != 0)
      return FSP_EMALFORMED; /* reserved */
    m->u.hello.version = fsp__get16(p);
    m->u.hello.max_payload = fsp__get32(p + 4);
    if (!max_payload_ok(m->u.hello.max_payload))
      return FSP_EMALFORMED;
    m->u.hello.max_inflight = fsp__get32(p + 8);
    m->u.hello.caps = fsp__get64(p + 12);
    m->u.hello.agent.ptr = rest;
    m->u.hello.agent.len = rest_len;
    break;
  case FSP_OP_PING:
  case FSP_OP_PONG:
  case FSP_OP_NOTICE:
  case FSP_OP_NOTIFY:
  case FSP_OP_DATA:
    m->u.text.ptr = rest;
    m->u.text.len = rest_len;
    break;
  case FSP_OP_BYE:
  case FSP_OP_ERROR:
    m->u.error.status = fsp__get16(p);
    m->u.error.text.ptr = rest;
    m->u.error.text.len = rest_len;
    break;
  case FSP_OP_STAT:
  case FSP_OP_DELETE:
    m->u.name.ptr = rest;
    m->u.name.len = rest_len;
    break;
  case FSP_OP_GET:
  case FSP_OP_HASH:
    m->u.range.offset = fsp__get64(p);
    m->u.range.length = fsp__get64(p + 8);
    m->u.range.name.ptr = rest;
    m->u.range.name.len = rest_len;
    break;
  case FSP_OP_PUT:
    m->u.put.size = fsp__get64(p);
    m->u.put.mode = p[8];
    m->u.put.name.ptr = rest;
    m->u.put.name.len = rest_len;
    break;
  case FSP_OP_SUBSCRIBE:
  case FSP_OP_SUBSCRIBED:
  case FSP_OP_RESYNC:
    m->u.sub.epoch = fsp__get64(p);
    m->u.sub.seq = fsp__get64(p + 8);
    break;
  case FSP_OP_END:
    m->u.end.size = fsp__get64(p);
    m->u.end.hash = fsp__get64(p + 8);
    break;
  case FSP_OP_INFO:
    m->u.entry.size = fsp__get64(p);
    m->u.entry.mtime_ns = (int64_t)fsp__get64(p + 8);
    m->u.entry.name.ptr = NULL;
    m->u.entry.name.len = 0;
    break;
  case FSP_OP_BEGIN:
    m->u.begin.file_size = fsp__get64(p);
    m->u.begin.mtime_ns = (int64_t)fsp__get64(p + 8);
    m->u.begin.offset = fsp__get64(p + 16);
    m->u.begin.length = fsp__get64(p + 24);
    break;
  case FSP_OP_DIGEST:
    m->u.digest.offset = fsp__get64(p);
    m->u.digest.length = fsp__get64(p + 8);
    m->u.digest.hash = fsp__get64(p + 16);
    break;
  case FSP_OP_EVENT:
    if (p[8] < FSP_EV_ADDED || p[8] > FSP_EV_REMOVED)
      return FSP_EMALFORMED;
    m->u.event.seq = fsp__get64(p);
    m->u.event.kind = p[8];
    m->u.event.file.size = fsp__get64(p + 9);
    m->u.event.file.mtime_ns = (int64_t)fsp__get64(p + 17);
    m->u.event.file.name.ptr = rest;
    m->u.event.file.name.len = rest_len;
    break;
  case FSP_OP_CHALLENGE:
    m->u.challenge.nonce = p;
    break;
  case FSP_OP_AUTH:
    m->u.auth.nonce = p;
    m->u.auth.sig = p + FSP_NONCE_LEN;
    m->u.auth.user.ptr = rest;
    m->u.auth.user.len = rest_len;
    break;
  default: /* LIST, UNSUBSCRIBE, CANCEL, OK, READY: no payload */
    break;
  }
  return 0;
}

/* Decodes an ENTRIES payload p[0..len). */
static int decode_entries(const uint8_t *p, size_t len, unsigned version,
                          struct fsp_msg *m) {
  int r;

  if (len < 4)
    return FSP_EMALFORMED;
  m->u.entries.count = fsp__get32(p);
  m->u.entries.buf = p + 4;
  m->u.entries.len = len - 4;
  m->u.entries.version = (uint16_t)version;
  r = check_entries(p + 4, len - 4, m->u.entries.count, version);
  if (r != 0)
    memset(&m->u, 0, sizeof(m->u));
  return r;
}

/* The version an opcode appeared in; see fsproto.h. */
unsigned fsp_op_version(uint8_t op) {
  if (fsp_op_name(op) == NULL)
    return 0;
  switch (op) {
  case FSP_OP_MKDIR:
  case FSP_OP_RENAME:
  case FSP_OP_SKIPPED:
    return FSP_TREE_VERSION;
  case FSP_OP_CHALLENGE:
  case FSP_OP_AUTH:
    return FSP_AUTH_VERSION;
  default:
    return 1;
  }
}

int fsp_msg_decode(const struct fsp_frame *f, struct fsp_msg *m) {
  return fsp_msg_decode_v(f, 1, m);
}

/* Decodes frame f into m; see fsproto.h. m is cleared first, then op and id
 * are set before any check, so even a failed decode says what it was. */
int fsp_msg_decode_v(const struct fsp_frame *f, unsigned version,
                     struct fsp_msg *m) {
  const uint8_t *p = f->payload;
  size_t len = f->len;
  struct layout l;
  const char *rest;
  size_t rest_len;
  int r;

  memset(m, 0, sizeof(*m));
  m->op = f->op;
  m->id = f->id;
  if (len > 0 && p == NULL)
    return FSP_EINVAL;
  if (version < 1 || version > FSP_HELLO_VERSION)
    return FSP_EINVAL;

  if (f->op == FSP_OP_ENTRIES)
    return decode_entries(p, len, version, m);

  r = layout_of(f->op, version, &l);
  if (r != 0)
    return r;
  if (len < l.fixed)
    return FSP_EMALFORMED;
  rest = (const char *)p + l.fixed;
  rest_len = len - l.fixed;
  if (l.rest == REST_PATH2)
    r = check_paths(&l, rest, rest_len, fsp__get16(p + l.fixed - 2));
  else
    r = check_rest(&l, rest, rest_len, FSP_EMALFORMED, FSP_EMALFORMED);
  if (r != 0)
    return r;
  if (layout_tree(f->op, version, &l)) {
    r = decode_v2(p, rest, rest_len, m);
    if (r <= 0)
      return r;
  }
  /* Version 3's PUT flags add PARENTS to version 1's modes. */
  if (f->op == FSP_OP_PUT &&
      (p[8] & ~(version >= FSP_TREE_VERSION ? 3u : 1u)) != 0)
    return FSP_EMALFORMED;

  return decode_v1(p, rest, rest_len, m);
}

/* The rest field of m for its opcode in version (empty for fixed layouts).
 * For two-path layouts it is the first path; second_of() gives the other. */
static struct fsp_str rest_of(const struct fsp_msg *m, unsigned version) {
  struct fsp_str none = {NULL, 0};
  int tree = version >= FSP_TREE_VERSION;

  switch (m->op) {
  case FSP_OP_HELLO:
    return m->u.hello.agent;
  case FSP_OP_PING:
  case FSP_OP_PONG:
  case FSP_OP_NOTICE:
  case FSP_OP_NOTIFY:
  case FSP_OP_DATA:
    return m->u.text;
  case FSP_OP_BYE:
  case FSP_OP_ERROR:
    return m->u.error.text;
  case FSP_OP_STAT:
    return m->u.name;
  case FSP_OP_DELETE:
    return tree ? m->u.tree.path : m->u.name;
  case FSP_OP_LIST:
    return tree ? m->u.tree.path : none;
  case FSP_OP_MKDIR:
    return m->u.tree.path;
  case FSP_OP_RENAME:
    return m->u.rename.from;
  case FSP_OP_SKIPPED:
    return m->u.skipped.path;
  case FSP_OP_SUBSCRIBE:
    return tree ? m->u.sub.path : none;
  case FSP_OP_GET:
  case FSP_OP_HASH:
    return m->u.range.name;
  case FSP_OP_PUT:
    return m->u.put.name;
  case FSP_OP_EVENT:
    return m->u.event.file.name;
  case FSP_OP_AUTH:
    return m->u.auth.user;
  default:
    return none;
  }
}

static struct fsp_str second_of(const struct fsp_msg *m) {
  struct fsp_str none = {NULL, 0};

  if (m->op == FSP_OP_RENAME)
    return m->u.rename.to;
  if (m->op == FSP_OP_EVENT)
    return m->u.event.from;
  return none;
}

/* Encodes an ENTRIES message from its count and pre-encoded entries (as a
 * decode produced them), after checking that they add up. */
static ssize_t encode_entries(uint8_t *buf, size_t cap, unsigned version,
                              const struct fsp_msg *m) {
  size_t plen;
  int r;

  if (m->u.entries.len > 0 && m->u.entries.buf == NULL)
    return FSP_EINVAL;
  if (m->u.entries.len > FSP_MAX_PAYLOAD - 4)
    return FSP_ETOOBIG;
  r = check_entries(m->u.entries.buf, m->u.entries.len, m->u.entries.count,
                    version);
  if (r != 0)
    return r;
  plen = 4 + m->u.entries.len;
  if (cap < FSP_HDR_LEN + plen)
    return (ssize_t)(FSP_HDR_LEN + plen);
  fsp_header_write(buf, m->op, m->id, (uint32_t)plen);
  fsp__put32(buf + FSP_HDR_LEN, m->u.entries.count);
  if (m->u.entries.len > 0)
    memcpy(buf + FSP_HDR_LEN + 4, m->u.entries.buf, m->u.entries.len);
  return (ssize_t)(FSP_HDR_LEN + plen);
}

/* The checks on fixed fields that the decoder makes, for the encoder:
 * returns 0 or FSP_EINVAL for a value the decoder would call malformed. */
static int check_fields(const struct fsp_msg *m, unsigned version) {
  int tree = version >= FSP_TREE_VERSION;

  switch (m->op) {
  case FSP_OP_HELLO:
    return max_payload_ok(m->u.hello.max_payload) ? 0 : FSP_EINVAL;
  case FSP_OP_PUT:
    return (m->u.put.mode & ~(tree ? 3u : 1u)) == 0 ? 0 : FSP_EINVAL;
  case FSP_OP_EVENT:
    if (m->u.event.kind < FSP_EV_ADDED ||
        m->u.event.kind > (tree ? FSP_EV_RENAMED : FSP_EV_REMOVED))
      return FSP_EINVAL;
    if (tree &&
        (!type_ok(m->u.event.file.type) ||
         (m->u.event.kind == FSP_EV_RENAMED) != (m->u.event.from.len > 0)))
      return FSP_EINVAL;
    return 0;
  case FSP_OP_INFO:
    return !tree || type_ok(m->u.entry.type) ? 0 : FSP_EINVAL;
  case FSP_OP_LIST:
  case FSP_OP_DELETE:
    return !tree || (m->u.tree.flags & ~1u) == 0 ? 0 : FSP_EINVAL;
  case FSP_OP_MKDIR:
    return (m->u.tree.flags & ~1u) == 0 ? 0 : FSP_EINVAL;
  case FSP_OP_RENAME:
    return (m->u.rename.flags & ~FSP_RENAME_NO_REPLACE) == 0 ? 0 : FSP_EINVAL;
  /* The fixed-size byte fields of the auth frames come by pointer. */
  case FSP_OP_CHALLENGE:
    return m->u.challenge.nonce != NULL ? 0 : FSP_EINVAL;
  case FSP_OP_AUTH:
    return m->u.auth.nonce != NULL && m->u.auth.sig != NULL ? 0 : FSP_EINVAL;
  default:
    return 0;
  }
}

/* Checks the variable fields of m against layout l. */
static int check_encode_rest(const struct layout *l, struct fsp_str rest,
                             struct fsp_str second) {
  if ((rest.len > 0 && rest.ptr == NULL) ||
      (second.len > 0 && second.ptr == NULL))
    return FSP_EINVAL;
  if (rest.len > FSP_MAX_PAYLOAD - l->fixed ||
      second.len > FSP_MAX_PAYLOAD - l->fixed - rest.len)
    return FSP_ETOOBIG;
  if (l->rest != REST_PATH2)
    return check_rest(l, rest.ptr, rest.len, FSP_EINVAL, FSP_ETOOBIG);
  if (fsp_path_check(rest.ptr, rest.len) != 0)
    return FSP_EBADNAME;
  if (second.len == 0 && l->min == 0)
    return 0;
  return fsp_path_check(second.ptr, second.len);
}

/* Writes the fixed fields of a version 3 layout (layout_tree()) at p and
 * returns 1; 0 for the layouts that only add a path to version 1's fields. */
static int encode_fixed_tree(uint8_t *p, const struct fsp_msg *m) {
  switch (m->op) {
  case FSP_OP_LIST:
  case FSP_OP_DELETE:
  case FSP_OP_MKDIR:
    p[0] = m->u.tree.flags;
    break;
  case FSP_OP_RENAME:
    p[0] = m->u.rename.flags;
    fsp__put16(p + 1, (uint16_t)m->u.rename.from.len);
    break;
  case FSP_OP_SKIPPED:
    fsp__put16(p, m->u.skipped.status);
    break;
  case FSP_OP_INFO:
    fsp__put64(p, m->u.entry.size);
    fsp__put64(p + 8, (uint64_t)m->u.entry.mtime_ns);
    p[16] = m->u.entry.type;
    break;
  case FSP_OP_EVENT:
    fsp__put64(p, m->u.event.seq);
    p[8] = m->u.event.kind;
    p[9] = m->u.event.file.type;
    fsp__put64(p + 10, m->u.event.file.size);
    fsp__put64(p + 18, (uint64_t)m->u.event.file.mtime_ns);
    fsp__put16(p + 26, (uint16_t)m->u.event.file.name.len);
    break;
  default:
    return 0;
  }
  return 1;
}

/* Writes the fixed fields of a version 1 layout at p (also those of
 * SUBSCRIBE, GET, HASH and PUT in version 3, which only add a path). */
static void encode_fixed(uint8_t *p, const struct fsp_msg *m) {
  switch (m->op) {
  case FSP_OP_HELLO:
    fsp__put16(p, m->u.hello.version);
    fsp__put16(p + 2, 0);
    fsp__put32(p + 4, m->u.hello.max_payload);
    fsp__put32(p + 8, m->u.hello.max_inflight);
    fsp__put64(p + 12, m->u.hello.caps);
    break;
  case FSP_OP_BYE:
  case FSP_OP_ERROR:
    fsp__put16(p, m->u.error.status);
    break;
  case FSP_OP_GET:
  case FSP_OP_HASH:
    fsp__put64(p, m->u.range.offset);
    fsp__put64(p + 8, m->u.range.length);
    break;
  case FSP_OP_PUT:
    fsp__put64(p, m->u.put.size);
    p[8] = m->u.put.mode;
    break;
  case FSP_OP_SUBSCRIBE:
  case FSP_OP_SUBSCRIBED:
  case FSP_OP_RESYNC:
    fsp__put64(p, m->u.sub.epoch);
    fsp__put64(p + 8, m->u.sub.seq);
    break;
  case FSP_OP_END:
    fsp__put64(p, m->u.end.size);
    fsp__put64(p + 8, m->u.end.hash);
    break;
  case FSP_OP_INFO:
    fsp__put64(p, m->u.entry.size);
    fsp__put64(p + 8, (uint64_t)m->u.entry.mtime_ns);
    break;
  case FSP_OP_BEGIN:
    fsp__put64(p, m->u.begin.file_size);
    fsp__put64(p + 8, (uint64_t)m->u.begin.mtime_ns);
    fsp__put64(p + 16, m->u.begin.offset);
    fsp__put64(p + 24, m->u.begin.length);
    break;
  case FSP_OP_DIGEST:
    fsp__put64(p, m->u.digest.offset);
    fsp__put64(p + 8, m->u.digest.length);
    fsp__put64(p + 16, m->u.digest.hash);
    break;
  case FSP_OP_EVENT:
    fsp__put64(p, m->u.event.seq);
    p[8] = m->u.event.kind;
    fsp__put64(p + 9, m->u.event.file.size);
    fsp__put64(p + 17, (uint64_t)m->u.event.file.mtime_ns);
    break;
  case FSP_OP_CHALLENGE:
    memcpy(p, m->u.challenge.nonce, FSP_NONCE_LEN);
    break;
  case FSP_OP_AUTH:
    memcpy(p, m->u.auth.nonce, FSP_NONCE_LEN);
    memcpy(p + FSP_NONCE_LEN, m->u.auth.sig, FSP_SIG_LEN);
    break;
  default:
    break;
  }
}

ssize_t fsp_msg_encode(uint8_t *buf, size_t cap, const struct fsp_msg *m) {
  return fsp_msg_encode_v(buf, cap, 1, m);
}

/* Encodes m into buf[0..cap), snprintf style; see fsproto.h. Everything is
 * validated before the size is reported, so a caller that sizes its buffer
 * with cap 0 learns about invalid input at once. */
ssize_t fsp_msg_encode_v(uint8_t *buf, size_t cap, unsigned version,
                         const struct fsp_msg *m) {
  struct layout l;
  struct fsp_str rest, second;
  uint8_t *p;
  size_t plen;
  int r;

  if (m == NULL || version < 1 || version > FSP_HELLO_VERSION)
    return FSP_EINVAL;
  if (m->op == FSP_OP_ENTRIES)
    return encode_entries(buf, cap, version, m);
  r = layout_of(m->op, version, &l);
  if (r != 0)
    return r;

  rest = rest_of(m, version);
  second = l.rest == REST_PATH2 ? second_of(m) : (struct fsp_str){NULL, 0};
  r = check_encode_rest(&l, rest, second);
  if (r == 0)
    r = check_fields(m, version);
  if (r != 0)
    return r;

  plen = l.fixed + rest.len + second.len;
  if (cap < FSP_HDR_LEN + plen)
    return (ssize_t)(FSP_HDR_LEN + plen);

  fsp_header_write(buf, m->op, m->id, (uint32_t)plen);
  p = buf + FSP_HDR_LEN;
  if (!layout_tree(m->op, version, &l) || !encode_fixed_tree(p, m))
    encode_fixed(p, m);
  if (rest.len > 0)
    memcpy(p + l.fixed, rest.ptr, rest.len);
  if (second.len > 0)
    memcpy(p + l.fixed + rest.len, second.ptr, second.len);
  return (ssize_t)(FSP_HDR_LEN + plen);
}

/* Starts an ENTRIES frame at buf[0..cap). Returns 0, FSP_EINVAL for a NULL
 * buffer, or FSP_ENOBUFS when cap cannot even hold the header and count. */
int fsp_entries_begin(struct fsp_entries_builder *b, uint8_t *buf, size_t cap,
                      uint32_t id) {
  return fsp_entries_begin_v(b, buf, cap, id, 1);
}

int fsp_entries_begin_v(struct fsp_entries_builder *b, uint8_t *buf, size_t cap,
                        uint32_t id, unsigned version) {
  b->version = version;
  b->buf = buf;
  b->cap = cap;
  b->len = 0;
  b->count = 0;
  b->id = id;
  if (buf == NULL || version < 1 || version > FSP_HELLO_VERSION)
    return FSP_EINVAL;
  if (cap < FSP_HDR_LEN + 4) {
    b->cap = 0;
    return FSP_ENOBUFS;
  }
  /* Never let a batch outgrow what any peer may receive. */
  if (b->cap > FSP_MAX_FRAME_LEN)
    b->cap = FSP_MAX_FRAME_LEN;
  b->len = FSP_HDR_LEN + 4;
  return 0;
}

/* Appends e. Returns 0, FSP_EBADNAME, or FSP_ENOBUFS when it does not fit
 * (nothing is written then, and the batch can still be finished). */
int fsp_entries_add(struct fsp_entries_builder *b, const struct fsp_entry *e) {
  int tree = b->version >= FSP_TREE_VERSION;
  size_t head = tree ? FSP_ENTRY2_LEN(0) : FSP_ENTRY_LEN(0);
  uint8_t *p;

  if (tree ? fsp_path_check(e->name.ptr, e->name.len) != 0
           : fsp_name_check(e->name.ptr, e->name.len) != 0)
    return FSP_EBADNAME;
  if (tree && !type_ok(e->type))
    return FSP_EINVAL;
  if (b->len == 0 || b->cap - b->len < head + e->name.len)
    return FSP_ENOBUFS;
  p = b->buf + b->len;
  fsp__put64(p, e->size);
  fsp__put64(p + 8, (uint64_t)e->mtime_ns);
  if (tree)
    p[16] = e->type;
  fsp__put16(p + head - 2, (uint16_t)e->name.len);
  memcpy(p + head, e->name.ptr, e->name.len);
  b->len += head + e->name.len;
  b->count++;
  return 0;
}

/* Writes header and count; returns the frame size, or 0 when
 * fsp_entries_begin() had failed. */
size_t fsp_entries_finish(struct fsp_entries_builder *b) {
  if (b->len == 0)
    return 0;
  fsp_header_write(b->buf, FSP_OP_ENTRIES, b->id,
                   (uint32_t)(b->len - FSP_HDR_LEN));
  fsp__put32(b->buf + FSP_HDR_LEN, b->count);
  return b->len;
}

/* Returns 1 and the entry at *pos (advancing it), 0 at the end, or
 * FSP_EMALFORMED/FSP_EBADNAME; FSP_EINVAL when m is not ENTRIES. */
int fsp_entries_next(const struct fsp_msg *m, size_t *pos,
                     struct fsp_entry *e) {
  ssize_t n;

  if (m->op != FSP_OP_ENTRIES)
    return FSP_EINVAL;
  if (*pos >= m->u.entries.len)
    return 0;
  /* A zero-filled message (built for encoding) means version 1. */
  n = parse_entry(
      m->u.entries.buf + *pos, m->u.entries.len - *pos,
      m->u.entries.version >= FSP_TREE_VERSION ? FSP_TREE_VERSION : 1, e);
  if (n < 0)
    return (int)n;
  *pos += (size_t)n;
  return 1;
}
