/* Typed messages: payload layouts of protocol.md section 5.
 *
 * Decoding and encoding share one description per opcode: the fixed fields,
 * then at most one variable "rest" field (a name, a text or raw bytes).
 * fsp_msg_decode() and fsp_msg_encode() apply the same checks, so anything
 * the encoder writes the decoder accepts and vice versa.
 */
#include <string.h>

#include "fsp_int.h"

/* What kind of trailing field a message has, and its limits. */
enum rest_kind {
  REST_NONE,  /* fixed layout: the payload length must match exactly */
  REST_NAME,  /* a file name, checked with fsp_name_check() */
  REST_TEXT,  /* UTF-8 text between min and max bytes */
  REST_BYTES, /* opaque bytes up to max */
  REST_USER,  /* a user name, checked with fsp_user_check() */
};

struct layout {
  size_t fixed;        /* bytes of fixed fields before the rest */
  enum rest_kind rest; /* what follows them */
  size_t min, max;     /* rest length limits (REST_TEXT, REST_BYTES) */
};

/* Returns 0 and fills *l for a known opcode other than ENTRIES (which has a
 * layout of its own), FSP_EOPCODE otherwise. */
static int layout_of(uint8_t op, struct layout *l) {
  l->fixed = 0;
  l->rest = REST_NONE;
  l->min = 0;
  l->max = FSP_MAX_PAYLOAD;
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

/* Parses one ENTRIES entry at p[0..left). Returns its size or a negative
 * FSP_E* code. */
static ssize_t parse_entry(const uint8_t *p, size_t left, struct fsp_entry *e) {
  size_t name_len;
  int r;

  if (left < FSP_ENTRY_LEN(0))
    return FSP_EMALFORMED;
  name_len = fsp__get16(p + 16);
  if (left - FSP_ENTRY_LEN(0) < name_len)
    return FSP_EMALFORMED;
  r = fsp_name_check(p + FSP_ENTRY_LEN(0), name_len);
  if (r != 0)
    return r;
  e->size = fsp__get64(p);
  e->mtime_ns = (int64_t)fsp__get64(p + 8);
  e->name.ptr = (const char *)p + FSP_ENTRY_LEN(0);
  e->name.len = name_len;
  return (ssize_t)FSP_ENTRY_LEN(name_len);
}

/* Checks that buf[0..len) holds exactly count valid entries. The loop is
 * bounded by the bytes present, never by the count, so a hostile count of
 * 0xffffffff costs nothing. */
static int check_entries(const uint8_t *buf, size_t len, uint32_t count) {
  size_t pos = 0;
  uint32_t seen = 0;
  struct fsp_entry e;

  while (pos < len) {
    ssize_t n = parse_entry(buf + pos, len - pos, &e);
    if (n < 0)
      return (int)n;
    if (seen == count)
      return FSP_EMALFORMED; /* more entries than announced */
    seen++;
    pos += (size_t)n;
  }
  return seen == count ? 0 : FSP_EMALFORMED;
}

/* Decodes frame f into m; see fsproto.h. m is cleared first, then op and id
 * are set before any check, so even a failed decode says what it was. */
int fsp_msg_decode(const struct fsp_frame *f, struct fsp_msg *m) {
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

  if (f->op == FSP_OP_ENTRIES) {
    if (len < 4)
      return FSP_EMALFORMED;
    m->u.entries.count = fsp__get32(p);
    m->u.entries.buf = p + 4;
    m->u.entries.len = len - 4;
    r = check_entries(p + 4, len - 4, m->u.entries.count);
    if (r != 0)
      memset(&m->u, 0, sizeof(m->u));
    return r;
  }

  r = layout_of(f->op, &l);
  if (r != 0)
    return r;
  if (len < l.fixed)
    return FSP_EMALFORMED;
  rest = (const char *)p + l.fixed;
  rest_len = len - l.fixed;
  r = check_rest(&l, rest, rest_len, FSP_EMALFORMED, FSP_EMALFORMED);
  if (r != 0)
    return r;

  switch (f->op) {
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
    if (p[8] != FSP_PUT_REPLACE && p[8] != FSP_PUT_NO_CLOBBER)
      return FSP_EMALFORMED;
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

/* The rest field of m for its opcode (empty for fixed layouts). */
static struct fsp_str rest_of(const struct fsp_msg *m) {
  struct fsp_str none = {NULL, 0};

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
  case FSP_OP_DELETE:
    return m->u.name;
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

/* Encodes an ENTRIES message from its count and pre-encoded entries (as a
 * decode produced them), after checking that they add up. */
static ssize_t encode_entries(uint8_t *buf, size_t cap,
                              const struct fsp_msg *m) {
  size_t plen;
  int r;

  if (m->u.entries.len > 0 && m->u.entries.buf == NULL)
    return FSP_EINVAL;
  if (m->u.entries.len > FSP_MAX_PAYLOAD - 4)
    return FSP_ETOOBIG;
  r = check_entries(m->u.entries.buf, m->u.entries.len, m->u.entries.count);
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

/* Encodes m into buf[0..cap), snprintf style; see fsproto.h. Everything is
 * validated before the size is reported, so a caller that sizes its buffer
 * with cap 0 learns about invalid input at once. */
ssize_t fsp_msg_encode(uint8_t *buf, size_t cap, const struct fsp_msg *m) {
  struct layout l;
  struct fsp_str rest;
  uint8_t *p;
  size_t plen;
  int r;

  if (m == NULL)
    return FSP_EINVAL;
  if (m->op == FSP_OP_ENTRIES)
    return encode_entries(buf, cap, m);
  r = layout_of(m->op, &l);
  if (r != 0)
    return r;

  rest = rest_of(m);
  if (rest.len > 0 && rest.ptr == NULL)
    return FSP_EINVAL;
  if (rest.len > FSP_MAX_PAYLOAD - l.fixed)
    return FSP_ETOOBIG;
  r = check_rest(&l, rest.ptr, rest.len, FSP_EINVAL, FSP_ETOOBIG);
  if (r != 0)
    return r;
  if (m->op == FSP_OP_PUT && m->u.put.mode != FSP_PUT_REPLACE &&
      m->u.put.mode != FSP_PUT_NO_CLOBBER)
    return FSP_EINVAL;
  if (m->op == FSP_OP_EVENT &&
      (m->u.event.kind < FSP_EV_ADDED || m->u.event.kind > FSP_EV_REMOVED))
    return FSP_EINVAL;
  if (m->op == FSP_OP_HELLO && !max_payload_ok(m->u.hello.max_payload))
    return FSP_EINVAL;
  /* The fixed-size byte fields of the auth frames come by pointer. */
  if ((m->op == FSP_OP_CHALLENGE && m->u.challenge.nonce == NULL) ||
      (m->op == FSP_OP_AUTH &&
       (m->u.auth.nonce == NULL || m->u.auth.sig == NULL)))
    return FSP_EINVAL;

  plen = l.fixed + rest.len;
  if (cap < FSP_HDR_LEN + plen)
    return (ssize_t)(FSP_HDR_LEN + plen);

  fsp_header_write(buf, m->op, m->id, (uint32_t)plen);
  p = buf + FSP_HDR_LEN;
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
  if (rest.len > 0)
    memcpy(p + l.fixed, rest.ptr, rest.len);
  return (ssize_t)(FSP_HDR_LEN + plen);
}

/* Starts an ENTRIES frame at buf[0..cap). Returns 0, FSP_EINVAL for a NULL
 * buffer, or FSP_ENOBUFS when cap cannot even hold the header and count. */
int fsp_entries_begin(struct fsp_entries_builder *b, uint8_t *buf, size_t cap,
                      uint32_t id) {
  b->buf = buf;
  b->cap = cap;
  b->len = 0;
  b->count = 0;
  b->id = id;
  if (buf == NULL)
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
  uint8_t *p;

  if (fsp_name_check(e->name.ptr, e->name.len) != 0)
    return FSP_EBADNAME;
  if (b->len == 0 || b->cap - b->len < FSP_ENTRY_LEN(e->name.len))
    return FSP_ENOBUFS;
  p = b->buf + b->len;
  fsp__put64(p, e->size);
  fsp__put64(p + 8, (uint64_t)e->mtime_ns);
  fsp__put16(p + 16, (uint16_t)e->name.len);
  memcpy(p + FSP_ENTRY_LEN(0), e->name.ptr, e->name.len);
  b->len += FSP_ENTRY_LEN(e->name.len);
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
  n = parse_entry(m->u.entries.buf + *pos, m->u.entries.len - *pos, e);
  if (n < 0)
    return (int)n;
  *pos += (size_t)n;
  return 1;
}
