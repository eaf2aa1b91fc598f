/* Frame headers, the stateless frame decoder and the incremental decoder
 * (protocol.md section 2). */
#include "fsp_int.h"

/* Checks the header bytes that are present in buf[0..len), len < FSP_HDR_LEN
 * allowed. Broken framing is reported as soon as the offending byte is in, so
 * a peer that speaks something else entirely (HTTP, TLS) is turned away after
 * its first byte instead of after twelve. */
static int check_partial_header(const uint8_t *buf, size_t len) {
  if (len >= 1 && buf[0] != FSP_MAGIC)
    return FSP_EMAGIC;
  if (len >= 2 && buf[1] != FSP_PROTO_VERSION)
    return FSP_EVERSION;
  if (len >= 4 && buf[3] != 0)
    return FSP_EFLAGS;
  return 0;
}

/* Parses and checks the 12-byte header at buf. max_payload 0 means
 * FSP_MIN_PAYLOAD, and values above FSP_MAX_PAYLOAD are treated as
 * FSP_MAX_PAYLOAD. Returns 0, FSP_EMAGIC, FSP_EVERSION, FSP_EFLAGS or
 * FSP_ETOOBIG; f is filled in every case except FSP_EMAGIC/FSP_EVERSION. */
int fsp_header_parse(const uint8_t *buf, uint32_t max_payload,
                     struct fsp_frame *f) {
  int r = check_partial_header(buf, FSP_HDR_LEN);

  if (r == FSP_EMAGIC || r == FSP_EVERSION)
    return r;
  f->op = buf[2];
  f->flags = buf[3];
  f->id = fsp__get32(buf + 4);
  f->len = fsp__get32(buf + 8);
  f->payload = NULL;
  if (r != 0)
    return r;
  /* The length is checked before anyone waits for (or allocates room for)
   * the payload: a hostile 0xffffffff is refused right here. */
  if (f->len > fsp__payload_limit(max_payload))
    return FSP_ETOOBIG;
  return 0;
}

/* Writes the header for (op, id, len) at buf[0..FSP_HDR_LEN). */
void fsp_header_write(uint8_t *buf, uint8_t op, uint32_t id, uint32_t len) {
  buf[0] = FSP_MAGIC;
  buf[1] = FSP_PROTO_VERSION;
  buf[2] = op;
  buf[3] = 0;
  fsp__put32(buf + 4, id);
  fsp__put32(buf + 8, len);
}

/* Returns the frame size (> 0) of the whole frame at buf, FSP_EAGAIN when
 * only part of it is there, or a header error. f->payload points into buf. */
ssize_t fsp_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload,
                         struct fsp_frame *f) {
  struct fsp_frame tmp;
  int r;

  if (len < FSP_HDR_LEN) {
    r = check_partial_header(buf, len);
    return r != 0 ? r : FSP_EAGAIN;
  }
  r = fsp_header_parse(buf, max_payload, &tmp);
  if (r != 0)
    return r;
  /* Compare with what is left after the header rather than computing
   * FSP_HDR_LEN + tmp.len against len: no sum that could wrap. */
  if (len - FSP_HDR_LEN < tmp.len)
    return FSP_EAGAIN;
  tmp.payload = buf + FSP_HDR_LEN;
  *f = tmp;
  return (ssize_t)(FSP_HDR_LEN + (size_t)tmp.len);
}

/* Returns how many more bytes fsp_frame_decode() needs before it succeeds on
 * buf[0..len): FSP_HDR_LEN - len while the header is incomplete, then the
 * rest of the payload, 0 when the frame is whole. Or a header error. */
ssize_t fsp_frame_need(const uint8_t *buf, size_t len, uint32_t max_payload) {
  struct fsp_frame f;
  int r;

  if (len < FSP_HDR_LEN) {
    r = check_partial_header(buf, len);
    return r != 0 ? r : (ssize_t)(FSP_HDR_LEN - len);
  }
  r = fsp_header_parse(buf, max_payload, &f);
  if (r != 0)
    return r;
  if (len - FSP_HDR_LEN >= f.len)
    return 0;
  return (ssize_t)(f.len - (len - FSP_HDR_LEN));
}

/* Initialises d for a new stream; max_payload 0 means FSP_MIN_PAYLOAD. */
void fsp_decoder_init(struct fsp_decoder *d, uint32_t max_payload) {
  d->max_payload = max_payload != 0 ? max_payload : FSP_MIN_PAYLOAD;
  d->_data_id = 0;
  d->_data_len = 0;
  d->_data_left = 0;
  d->_in_data = 0;
  d->_error = 0;
}

/* Hands out the next piece of the DATA payload being streamed. */
static ssize_t feed_data(struct fsp_decoder *d, const uint8_t *in, size_t len,
                         struct fsp_item *it) {
  size_t n = len < d->_data_left ? len : d->_data_left;

  it->type = FSP_ITEM_DATA;
  it->frame.op = FSP_OP_DATA;
  it->frame.flags = 0;
  it->frame.id = d->_data_id;
  it->frame.len = d->_data_len;
  it->frame.payload = in;
  it->data = in;
  it->data_len = n;
  it->data_off = d->_data_len - d->_data_left;
  d->_data_left -= (uint32_t)n;
  it->last = d->_data_left == 0;
  if (it->last)
    d->_in_data = 0;
  return (ssize_t)n;
}

/* Feeds in[0..len) to d; see fsproto.h for the contract.
 *
 * Invariant: a call either consumes bytes and yields an item, or consumes
 * nothing and yields FSP_ITEM_NONE. A DATA header is therefore consumed
 * together with the first piece of its payload (or alone, as an empty last
 * piece, for an empty DATA frame), never on its own. */
ssize_t fsp_decoder_feed(struct fsp_decoder *d, const uint8_t *in, size_t len,
                         struct fsp_item *it) {
  struct fsp_frame f;
  size_t avail;
  int r;

  it->type = FSP_ITEM_NONE;
  it->frame.op = 0;
  it->frame.flags = 0;
  it->frame.id = 0;
  it->frame.len = 0;
  it->frame.payload = NULL;
  it->data = NULL;
  it->data_len = 0;
  it->data_off = 0;
  it->last = 0;

  if (d->_error != 0)
    return d->_error;
  if (d->_in_data) {
    if (len == 0)
      return 0;
    return feed_data(d, in, len, it);
  }
  if (len < FSP_HDR_LEN) {
    r = check_partial_header(in, len);
    if (r != 0)
      return d->_error = r;
    return 0;
  }
  r = fsp_header_parse(in, d->max_payload, &f);
  if (r != 0)
    return d->_error = r;
  avail = len - FSP_HDR_LEN;

  if (f.op == FSP_OP_DATA) {
    ssize_t n;
    if (f.len > 0 && avail == 0)
      return 0; /* keep the header until payload bytes arrive */
    d->_data_id = f.id;
    d->_data_len = f.len;
    d->_data_left = f.len;
    d->_in_data = 1;
    n = feed_data(d, in + FSP_HDR_LEN, avail, it);
    return FSP_HDR_LEN + n;
  }

  if (avail < f.len)
    return 0;
  f.payload = in + FSP_HDR_LEN;
  it->type = FSP_ITEM_FRAME;
  it->frame = f;
  return (ssize_t)(FSP_HDR_LEN + (size_t)f.len);
}
