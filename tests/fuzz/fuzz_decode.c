/* libFuzzer target for the decoders.
 *
 * The input is a byte stream as a peer might send it. It goes through
 * fsp_frame_decode() until FSP_EAGAIN or an error; every frame is decoded as
 * a message of protocol version 1 and of version 3 (paths, folders), and
 * each that decodes is encoded again in its version, which must give the
 * very same bytes, and decoded again, which must give the same message (an
 * AUTH also gets its transcript built and checked). Then
 * the same stream is fed to fsp_decoder_feed() in chunks (sizes taken from the
 * input), keeping unconsumed bytes as a caller does; it must yield exactly the
 * frames and DATA bytes the stateless decoder found, and stop with the same
 * error. Any disagreement aborts, which libFuzzer reports as a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsproto/fsproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static int str_eq(struct fsp_str a, struct fsp_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int entry_eq(const struct fsp_entry *a, const struct fsp_entry *b) {
  return a->size == b->size && a->mtime_ns == b->mtime_ns &&
         a->type == b->type && str_eq(a->name, b->name);
}

/* The messages whose layout only version 3 has: 1 when equal, 0 when not,
 * -1 when op has the version 1 layout here. */
static int msg_eq_v2(const struct fsp_msg *a, const struct fsp_msg *b,
                     unsigned version) {
  int tree = version >= FSP_TREE_VERSION;

  switch (a->op) {
  case FSP_OP_LIST:
  case FSP_OP_DELETE:
    if (!tree)
      return -1;
    /* fall through */
  case FSP_OP_MKDIR:
    return a->u.tree.flags == b->u.tree.flags &&
           str_eq(a->u.tree.path, b->u.tree.path);
  case FSP_OP_RENAME:
    return a->u.rename.flags == b->u.rename.flags &&
           str_eq(a->u.rename.from, b->u.rename.from) &&
           str_eq(a->u.rename.to, b->u.rename.to);
  case FSP_OP_SKIPPED:
    return a->u.skipped.status == b->u.skipped.status &&
           str_eq(a->u.skipped.path, b->u.skipped.path);
  case FSP_OP_SUBSCRIBE:
    return str_eq(a->u.sub.path, b->u.sub.path) ? -1 : 0;
  case FSP_OP_INFO:
    return a->u.entry.type == b->u.entry.type ? -1 : 0;
  case FSP_OP_EVENT:
    return str_eq(a->u.event.from, b->u.event.from) ? -1 : 0;
  default:
    return -1;
  }
}

/* Field by field, for the fields op uses in version. */
static int msg_eq(const struct fsp_msg *a, const struct fsp_msg *b,
                  unsigned version) {
  int r;

  if (a->op != b->op || a->id != b->id)
    return 0;
  r = msg_eq_v2(a, b, version);
  if (r >= 0)
    return r;
  switch (a->op) {
  case FSP_OP_HELLO:
    return a->u.hello.version == b->u.hello.version &&
           a->u.hello.max_payload == b->u.hello.max_payload &&
           a->u.hello.max_inflight == b->u.hello.max_inflight &&
           a->u.hello.caps == b->u.hello.caps &&
           str_eq(a->u.hello.agent, b->u.hello.agent);
  case FSP_OP_PING:
  case FSP_OP_PONG:
  case FSP_OP_NOTICE:
  case FSP_OP_NOTIFY:
  case FSP_OP_DATA:
    return str_eq(a->u.text, b->u.text);
  case FSP_OP_BYE:
  case FSP_OP_ERROR:
    return a->u.error.status == b->u.error.status &&
           str_eq(a->u.error.text, b->u.error.text);
  case FSP_OP_STAT:
  case FSP_OP_DELETE:
    return str_eq(a->u.name, b->u.name);
  case FSP_OP_GET:
  case FSP_OP_HASH:
    return a->u.range.offset == b->u.range.offset &&
           a->u.range.length == b->u.range.length &&
           str_eq(a->u.range.name, b->u.range.name);
  case FSP_OP_PUT:
    return a->u.put.size == b->u.put.size && a->u.put.mode == b->u.put.mode &&
           str_eq(a->u.put.name, b->u.put.name);
  case FSP_OP_SUBSCRIBE:
  case FSP_OP_SUBSCRIBED:
  case FSP_OP_RESYNC:
    return a->u.sub.epoch == b->u.sub.epoch && a->u.sub.seq == b->u.sub.seq;
  case FSP_OP_END:
    return a->u.end.size == b->u.end.size && a->u.end.hash == b->u.end.hash;
  case FSP_OP_ENTRIES: {
    size_t pa = 0, pb = 0;
    struct fsp_entry ea, eb;
    int ra, rb;
    if (a->u.entries.count != b->u.entries.count ||
        a->u.entries.len != b->u.entries.len)
      return 0;
    do {
      ra = fsp_entries_next(a, &pa, &ea);
      rb = fsp_entries_next(b, &pb, &eb);
      if (ra != rb || ra < 0 || (ra == 1 && !entry_eq(&ea, &eb)))
        return 0;
    } while (ra == 1);
    return 1;
  }
  case FSP_OP_INFO:
    return a->u.entry.size == b->u.entry.size &&
           a->u.entry.mtime_ns == b->u.entry.mtime_ns;
  case FSP_OP_BEGIN:
    return a->u.begin.file_size == b->u.begin.file_size &&
           a->u.begin.mtime_ns == b->u.begin.mtime_ns &&
           a->u.begin.offset == b->u.begin.offset &&
           a->u.begin.length == b->u.begin.length;
  case FSP_OP_DIGEST:
    return a->u.digest.offset == b->u.digest.offset &&
           a->u.digest.length == b->u.digest.length &&
           a->u.digest.hash == b->u.digest.hash;
  case FSP_OP_EVENT:
    return a->u.event.seq == b->u.event.seq &&
           a->u.event.kind == b->u.event.kind &&
           entry_eq(&a->u.event.file, &b->u.event.file);
  case FSP_OP_CHALLENGE:
    return memcmp(a->u.challenge.nonce, b->u.challenge.nonce, FSP_NONCE_LEN) ==
           0;
  case FSP_OP_AUTH:
    return memcmp(a->u.auth.nonce, b->u.auth.nonce, FSP_NONCE_LEN) == 0 &&
           memcmp(a->u.auth.sig, b->u.auth.sig, FSP_SIG_LEN) == 0 &&
           str_eq(a->u.auth.user, b->u.auth.user);
  default:
    return 1;
  }
}

/* Builds the transcript of a decoded AUTH, with the signature's bytes as
 * the server nonce and a binding whose length comes from the input (up to
 * 79, so FSP_BINDING_MAX + 1 and more are reached), and checks its layout. */
static void check_transcript(const struct fsp_msg *m) {
  uint8_t out[FSP_TRANSCRIPT_MAX];
  size_t blen = m->u.auth.sig[0] % 80, ulen = m->u.auth.user.len;
  ssize_t n =
      fsp_auth_transcript(out, sizeof(out), m->u.auth.sig, m->u.auth.nonce,
                          m->u.auth.user.ptr, ulen, m->u.auth.sig, blen);

  if (blen > FSP_BINDING_MAX) {
    CHECK(n == FSP_EINVAL);
    return;
  }
  CHECK(n ==
        (ssize_t)(FSP_AUTH_CONTEXT_LEN + 2 * FSP_NONCE_LEN + 2 + ulen + blen));
  CHECK(memcmp(out, FSP_AUTH_CONTEXT, FSP_AUTH_CONTEXT_LEN) == 0);
  CHECK(memcmp(out + FSP_AUTH_CONTEXT_LEN + FSP_NONCE_LEN, m->u.auth.nonce,
               FSP_NONCE_LEN) == 0);
  CHECK(out[FSP_AUTH_CONTEXT_LEN + 2 * FSP_NONCE_LEN] == ulen);
  CHECK(out[FSP_AUTH_CONTEXT_LEN + 2 * FSP_NONCE_LEN + 1 + ulen] == blen);
}

/* Decodes one frame as a message and, if that works, checks that encoding
 * gives back the same bytes and decoding those the same message. */
static void check_message(const uint8_t *frame, size_t frame_len,
                          const struct fsp_frame *f, unsigned version) {
  struct fsp_msg m, again;
  struct fsp_frame f2;
  uint8_t *buf;
  ssize_t need;
  int r = fsp_msg_decode_v(f, version, &m);

  CHECK(m.op == f->op && m.id == f->id);
  if (r != 0) {
    CHECK(r == FSP_EOPCODE || r == FSP_EMALFORMED || r == FSP_EBADNAME ||
          r == FSP_EUTF8 || r == FSP_ETOOBIG || r == FSP_EBADUSER);
    CHECK((r == FSP_EOPCODE) == (fsp_op_name(f->op) == NULL));
    return;
  }
  need = fsp_msg_encode_v(NULL, 0, version, &m);
  CHECK(need == (ssize_t)frame_len);
  buf = malloc((size_t)need);
  CHECK(buf != NULL);
  CHECK(fsp_msg_encode_v(buf, (size_t)need, version, &m) == need);
  CHECK(memcmp(buf, frame, frame_len) == 0);
  CHECK(fsp_frame_decode(buf, (size_t)need, FSP_MAX_PAYLOAD, &f2) == need);
  CHECK(fsp_msg_decode_v(&f2, version, &again) == 0);
  CHECK(msg_eq(&m, &again, version));
  free(buf);
  if (m.op == FSP_OP_AUTH)
    check_transcript(&m);
}

/* The path rules of protocol.md section 12 written a second way, byte by
 * byte with a state instead of splitting on '/', for a differential check
 * of fsp_path_check() on every input. */
static int path_ok_reference(const uint8_t *p, size_t len) {
  size_t comp = 0; /* bytes in the current component */

  if (len == 0 || len > FSP_PATH_MAX || fsp_utf8_check(p, len) != 0)
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '/') {
      if (comp == 0)
        return 0; /* leading or doubled '/' */
      comp = 0;
      continue;
    }
    if (p[i] < 0x20 || p[i] == 0x7f || (comp == 0 && p[i] == '.'))
      return 0;
    if (++comp > FSP_NAME_MAX)
      return 0;
  }
  return comp > 0; /* no trailing '/' */
}

struct span {
  size_t off, len; /* where a whole frame sits in the input */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Odd-sized inputs use a small limit, so FSP_ETOOBIG is reachable. */
  uint32_t max = (size & 1) ? 512 : FSP_MAX_PAYLOAD;
  struct span *frames = malloc((size / FSP_HDR_LEN + 2) * sizeof(*frames));
  size_t nframes = 0, off = 0;
  ssize_t end;

  CHECK(frames != NULL);
  CHECK((fsp_path_check(data, size) == 0) == path_ok_reference(data, size));

  /* Stateless pass. */
  for (;;) {
    struct fsp_frame f;
    end = fsp_frame_decode(data + off, size - off, max, &f);
    if (end <= 0)
      break;
    CHECK((size_t)end == FSP_HDR_LEN + f.len && (size_t)end <= size - off);
    CHECK(f.payload == data + off + FSP_HDR_LEN);
    CHECK(fsp_frame_need(data + off, size - off, max) == 0);
    check_message(data + off, (size_t)end, &f, 1);
    check_message(data + off, (size_t)end, &f, FSP_TREE_VERSION);
    frames[nframes].off = off;
    frames[nframes].len = (size_t)end;
    nframes++;
    off += (size_t)end;
  }
  CHECK(end == FSP_EAGAIN || end == FSP_EMAGIC || end == FSP_EVERSION ||
        end == FSP_EFLAGS || end == FSP_ETOOBIG);
  if (end == FSP_EAGAIN)
    CHECK(fsp_frame_need(data + off, size - off, max) > 0);
  else
    CHECK(fsp_frame_need(data + off, size - off, max) == end);

  /* A DATA frame cut off by the end of the input still streams its first
   * bytes through the incremental decoder: note where it is. */
  frames[nframes].off = off;
  frames[nframes].len = 0;
  if (end == FSP_EAGAIN && size - off >= FSP_HDR_LEN &&
      data[off + 2] == FSP_OP_DATA) {
    struct fsp_frame f;
    CHECK(fsp_header_parse(data + off, max, &f) == 0);
    frames[nframes].len = FSP_HDR_LEN + (size_t)f.len;
  }

  /* Incremental pass, in chunks whose sizes come from the input. */
  {
    struct fsp_decoder d;
    uint8_t *kept = malloc(size + 1);
    size_t nkept = 0, in = 0, done = 0, data_off = 0, step = 0;
    int err = 0;

    CHECK(kept != NULL);
    fsp_decoder_init(&d, max);
    while (in < size && err == 0) {
      size_t k = 1 + (size > 0 ? data[step++ % size] % 64 : 0);
      if (k > size - in)
        k = size - in;
      memcpy(kept + nkept, data + in, k);
      nkept += k;
      in += k;
      for (;;) {
        struct fsp_item it;
        ssize_t n = fsp_decoder_feed(&d, kept, nkept, &it);
        /* frames[nframes] is the cut-off DATA frame, if any. */
        const struct span *sp = frames[done].len > 0 ? &frames[done] : NULL;

        if (n < 0) {
          err = (int)n;
          break;
        }
        if (n == 0) {
          CHECK(it.type == FSP_ITEM_NONE);
          break;
        }
        CHECK((size_t)n <= nkept);
        CHECK(sp != NULL); /* nothing beyond what the stateless pass saw */
        if (it.type == FSP_ITEM_FRAME) {
          CHECK(data_off == 0 && (size_t)n == sp->len);
          CHECK(memcmp(kept, data + sp->off, sp->len) == 0);
          CHECK(it.frame.payload == kept + FSP_HDR_LEN);
          done++;
        } else {
          CHECK(it.type == FSP_ITEM_DATA);
          CHECK(data[sp->off + 2] == FSP_OP_DATA);
          CHECK(it.data_off == data_off);
          CHECK(it.frame.len == sp->len - FSP_HDR_LEN);
          CHECK(it.data_len <= it.frame.len - data_off);
          CHECK(it.data_len <= size - sp->off - FSP_HDR_LEN - data_off);
          CHECK(it.data_len > 0 || it.frame.len == 0);
          CHECK(it.data_len == 0 ||
                memcmp(it.data, data + sp->off + FSP_HDR_LEN + data_off,
                       it.data_len) == 0);
          data_off += it.data_len;
          CHECK(it.last == (data_off == it.frame.len));
          if (it.last) {
            data_off = 0;
            done++;
          }
        }
        memmove(kept, kept + n, nkept - (size_t)n);
        nkept -= (size_t)n;
      }
    }
    CHECK(done == nframes);
    if (end == FSP_EAGAIN)
      CHECK(err == 0);
    else
      CHECK(err == end);
    free(kept);
  }
  free(frames);
  return 0;
}
