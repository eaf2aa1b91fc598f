/* libfsproto: encoder and decoder for the fsproto wire protocol (protocol.md).
 *
 * The library does no I/O and never allocates. Decoders return pointers into
 * the caller's buffer; encoders write into caller buffers. All functions are
 * reentrant: there is no global state.
 *
 * Errors are negative FSP_E* codes; fsp_strerror() and fsp_err_name() turn
 * them into text. They are kept apart from libuv's UV_E* range (-500..-599).
 * Wire status codes (the code carried in an ERROR frame) are a separate enum,
 * enum fsp_status.
 */
#ifndef FSPROTO_FSPROTO_H
#define FSPROTO_FSPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fsproto/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(FSP_BUILDING)
#define FSP_EXTERN __attribute__((visibility("default")))
#else
#define FSP_EXTERN
#endif

/* ------------------------------------------------------------------------ */
/* Constants                                                                */

#define FSP_MAGIC 0xF5u              /* first byte of every frame */
#define FSP_PROTO_VERSION 1u         /* second byte of every frame */
#define FSP_HDR_LEN 12u              /* frame header size in bytes */
#define FSP_MIN_PAYLOAD 65536u       /* every peer accepts payloads this big */
#define FSP_MAX_PAYLOAD 16777216u    /* no peer may announce more than 16 MiB */
#define FSP_DEFAULT_PAYLOAD 1048576u /* what our programs announce: 1 MiB */
#define FSP_MAX_FRAME_LEN (FSP_HDR_LEN + FSP_MAX_PAYLOAD)
#define FSP_NAME_MAX 255u    /* longest file name, in bytes */
#define FSP_NOTICE_MAX 4096u /* longest NOTICE text, in bytes */
#define FSP_AGENT_MAX 256u   /* longest HELLO agent string, in bytes */
#define FSP_PING_MAX 64u     /* longest PING payload */
#define FSP_EVENT_ID 0u /* request id of HELLO, events, connection errors */
#define FSP_LENGTH_TO_END                                                      \
  UINT64_MAX /* GET/HASH length meaning "to the end"                           \
              */

#define FSP_PATH_MAX 4096u /* longest path, in bytes (version 3) */

/* Protocol versions, as HELLO announces them (the frame header's version
 * byte is FSP_PROTO_VERSION and stays 1). Version 2 adds authentication,
 * version 3 folders and paths (protocol.md sections 11 and 12). */
#define FSP_HELLO_VERSION 3u /* highest version this library speaks */
#define FSP_AUTH_VERSION 2u  /* first version that can authenticate */
#define FSP_TREE_VERSION 3u  /* first version with folders and paths */

/* Authentication (protocol.md section 11). */
#define FSP_PREAUTH_MAX 1024u /* largest payload accepted before AUTH */
#define FSP_NONCE_LEN 32u     /* CHALLENGE and AUTH nonces */
#define FSP_SIG_LEN 64u       /* an Ed25519 signature */
#define FSP_PUBKEY_LEN 32u    /* an Ed25519 public key */
#define FSP_USER_MAX 64u      /* longest user name, in bytes */
#define FSP_BINDING_MAX 64u   /* longest channel binding in a transcript */
#define FSP_BINDING_LEN 32u   /* what TLS exporters give for fsproto */
/* TLS exporter label of the channel binding (RFC 9266, no context). */
#define FSP_BINDING_LABEL "EXPORTER-Channel-Binding"
/* First bytes of every transcript: this text and a NUL byte. */
#define FSP_AUTH_CONTEXT "fsproto-v2-auth-ed25519"
#define FSP_AUTH_CONTEXT_LEN (sizeof(FSP_AUTH_CONTEXT)) /* NUL included */
#define FSP_TRANSCRIPT_MAX                                                     \
  (FSP_AUTH_CONTEXT_LEN + 2 * FSP_NONCE_LEN + 1 + FSP_USER_MAX + 1 +           \
   FSP_BINDING_MAX)

/* Capability bits announced in HELLO. */
#define FSP_CAP_READ_ONLY (1u << 0) /* server refuses PUT and DELETE */
#define FSP_CAP_EVENTS (1u << 1)    /* server supports SUBSCRIBE */
#define FSP_CAP_NOTICE (1u << 2)    /* server relays NOTICE */
#define FSP_CAP_AUTH (1u << 3) /* server requires AUTH; CHALLENGE follows */

/* PUT modes. */
#define FSP_PUT_REPLACE 0u
#define FSP_PUT_NO_CLOBBER 1u /* fail with FSP_ST_EXISTS if the name exists */
#define FSP_PUT_PARENTS 2u    /* version 3: create missing parent folders */

/* Version 3 request flags (protocol.md section 12). */
#define FSP_LIST_RECURSIVE 1u    /* LIST: the whole subtree */
#define FSP_DELETE_RECURSIVE 1u  /* DELETE: a folder and all it holds */
#define FSP_MKDIR_PARENTS 1u     /* MKDIR: like mkdir -p */
#define FSP_RENAME_NO_REPLACE 1u /* RENAME: fail with EXISTS if `to` exists */

/* Entry types (version 3: ENTRIES, INFO, EVENT). */
#define FSP_TYPE_FILE 1u
#define FSP_TYPE_FOLDER 2u

/* Event kinds. */
#define FSP_EV_ADDED 1u
#define FSP_EV_REPLACED 2u
#define FSP_EV_REMOVED 3u
#define FSP_EV_RENAMED 4u /* version 3 only */

/* Opcodes. X(NAME, value, direction) where direction is C (client to server),
 * S (server to client) or B (both). */
#define FSP_OPCODE_MAP(X)                                                      \
  X(HELLO, 0x01, B)                                                            \
  X(PING, 0x02, B)                                                             \
  X(PONG, 0x03, B)                                                             \
  X(BYE, 0x04, B)                                                              \
  X(CHALLENGE, 0x05, S)                                                        \
  X(AUTH, 0x06, C)                                                             \
  X(LIST, 0x10, C)                                                             \
  X(STAT, 0x11, C)                                                             \
  X(DELETE, 0x12, C)                                                           \
  X(GET, 0x13, C)                                                              \
  X(PUT, 0x14, C)                                                              \
  X(HASH, 0x15, C)                                                             \
  X(SUBSCRIBE, 0x16, C)                                                        \
  X(UNSUBSCRIBE, 0x17, C)                                                      \
  X(NOTICE, 0x18, C)                                                           \
  X(CANCEL, 0x19, C)                                                           \
  X(MKDIR, 0x1a, C)                                                            \
  X(RENAME, 0x1b, C)                                                           \
  X(DATA, 0x20, B)                                                             \
  X(END, 0x21, B)                                                              \
  X(OK, 0x40, S)                                                               \
  X(ERROR, 0x41, S)                                                            \
  X(ENTRIES, 0x42, S)                                                          \
  X(INFO, 0x43, S)                                                             \
  X(BEGIN, 0x44, S)                                                            \
  X(READY, 0x45, S)                                                            \
  X(DIGEST, 0x46, S)                                                           \
  X(SUBSCRIBED, 0x47, S)                                                       \
  X(SKIPPED, 0x48, S)                                                          \
  X(EVENT, 0x60, S)                                                            \
  X(NOTIFY, 0x61, S)                                                           \
  X(RESYNC, 0x62, S)

enum fsp_op {
#define FSP_OP_ENUM(name, val, dir) FSP_OP_##name = val,
  FSP_OPCODE_MAP(FSP_OP_ENUM)
#undef FSP_OP_ENUM
};

/* Wire status codes, carried in ERROR frames. Never a host errno. */
#define FSP_STATUS_MAP(X)                                                      \
  X(NOT_FOUND, 1, "no such file")                                              \
  X(EXISTS, 2, "file exists")                                                  \
  X(BAD_NAME, 3, "invalid file name")                                          \
  X(TOO_LARGE, 4, "too large")                                                 \
  X(BUSY, 5, "busy, try again later")                                          \
  X(IO, 6, "I/O error on the server")                                          \
  X(PROTOCOL, 7, "protocol error")                                             \
  X(READ_ONLY, 8, "server is read-only")                                       \
  X(NO_SPACE, 9, "no space left on the server")                                \
  X(CHECKSUM, 10, "checksum mismatch")                                         \
  X(SIZE, 11, "size mismatch")                                                 \
  X(UNKNOWN_OP, 12, "unknown opcode")                                          \
  X(VERSION, 13, "unsupported protocol version")                               \
  X(CANCELED, 14, "canceled")                                                  \
  X(RANGE, 15, "range not satisfiable")                                        \
  X(SHUTDOWN, 16, "server is shutting down")                                   \
  X(TIMEOUT, 17, "idle timeout")                                               \
  X(BAD_REQUEST, 18, "malformed request")                                      \
  X(LIMIT, 19, "limit reached")                                                \
  X(UNAUTHENTICATED, 20, "authentication required or refused")                 \
  X(FORBIDDEN, 21, "not allowed for this user")                                \
  X(NOT_FOLDER, 22, "not a folder")                                            \
  X(IS_FOLDER, 23, "is a folder")                                              \
  X(NOT_EMPTY, 24, "folder not empty")                                         \
  X(INTO_SELF, 25, "a folder cannot move into itself")

enum fsp_status {
#define FSP_ST_ENUM(name, val, msg) FSP_ST_##name = val,
  FSP_STATUS_MAP(FSP_ST_ENUM)
#undef FSP_ST_ENUM
};

/* API error codes (negative), apart from UV_E* and errno. */
#define FSP_ERRNO_MAP(X)                                                       \
  X(EAGAIN, -501, "more bytes are needed")                                     \
  X(ENOBUFS, -502, "buffer too small")                                         \
  X(EMAGIC, -503, "bad magic byte")                                            \
  X(EVERSION, -504, "unsupported protocol version")                            \
  X(EFLAGS, -505, "reserved flag bits set")                                    \
  X(ETOOBIG, -506, "payload length over the limit")                            \
  X(EOPCODE, -507, "unknown opcode")                                           \
  X(EMALFORMED, -508, "malformed payload")                                     \
  X(EBADNAME, -509, "invalid file name")                                       \
  X(EUTF8, -510, "invalid UTF-8")                                              \
  X(EINVAL, -511, "invalid argument")                                          \
  X(ESTATE, -512, "frame out of sequence")                                     \
  X(EBADUSER, -513, "invalid user name")

enum fsp_errno {
#define FSP_ERR_ENUM(name, val, msg) FSP_##name = val,
  FSP_ERRNO_MAP(FSP_ERR_ENUM)
#undef FSP_ERR_ENUM
};

/* Text for an FSP_E* code; "unknown error" for anything else. Static storage.
 */
FSP_EXTERN const char *fsp_strerror(int err);
/* Name of an FSP_E* code, e.g. "FSP_ETOOBIG"; "FSP_UNKNOWN" otherwise. */
FSP_EXTERN const char *fsp_err_name(int err);
/* Default English text for a wire status; "unknown status" otherwise. */
FSP_EXTERN const char *fsp_status_str(uint16_t status);
/* Name of a wire status, e.g. "NOT_FOUND"; "UNKNOWN" otherwise. */
FSP_EXTERN const char *fsp_status_name(uint16_t status);
/* Name of an opcode, e.g. "GET"; NULL when the opcode is unknown. */
FSP_EXTERN const char *fsp_op_name(uint8_t op);
/* The first protocol version that has opcode op (1; FSP_AUTH_VERSION for
 * CHALLENGE and AUTH; FSP_TREE_VERSION for MKDIR, RENAME and SKIPPED); 0
 * when the opcode is unknown. A receiver
 * treats an opcode newer than the version its connection speaks as
 * unknown (protocol.md section 12). */
FSP_EXTERN unsigned fsp_op_version(uint8_t op);
/* The library's version as FSP_VERSION_HEX, and as "MAJOR.MINOR.PATCH". */
FSP_EXTERN unsigned fsp_version(void);
FSP_EXTERN const char *fsp_version_string(void);

/* ------------------------------------------------------------------------ */
/* Names and text                                                           */

/* Returns 0 when buf[0..len) is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else FSP_EUTF8. NUL bytes are valid UTF-8. */
FSP_EXTERN int fsp_utf8_check(const void *buf, size_t len);

/* Returns 0 when name[0..len) is a valid file name: 1..FSP_NAME_MAX bytes of
 * UTF-8, no '/', no NUL, no control characters (< 0x20 or 0x7f), not "." or
 * "..", no leading '.'. Else FSP_EBADNAME (bad UTF-8 is also FSP_EBADNAME). */
FSP_EXTERN int fsp_name_check(const void *name, size_t len);

/* Returns 0 when path[0..len) is a valid path (protocol.md section 12): 1 to
 * FSP_PATH_MAX bytes, names (each passing fsp_name_check) joined by single
 * '/' bytes; so no leading, trailing or doubled '/', and no "." or ".."
 * component. Else FSP_EBADNAME. A name is a path of one component. */
FSP_EXTERN int fsp_path_check(const void *path, size_t len);

/* Returns 0 when path[0..len) is empty (the root folder) or passes
 * fsp_path_check(), else FSP_EBADNAME. For the folder fields of LIST and
 * SUBSCRIBE. */
FSP_EXTERN int fsp_folder_path_check(const void *path, size_t len);

/* Returns 1 when path is dir itself or lies below it (path starts with dir
 * followed by '/'), 0 otherwise. An empty dir (the root) holds every path.
 * Byte comparison only: both should have passed the checks above. */
FSP_EXTERN int fsp_path_within(const char *path, size_t len, const char *dir,
                               size_t dir_len);
/* Returns 0 when user[0..len) is a valid user name: 1..FSP_USER_MAX bytes of
 * ASCII letters, digits, '.', '_' and '-', not starting with '.' or '-'.
 * Else FSP_EBADUSER. */
FSP_EXTERN int fsp_user_check(const void *user, size_t len);

/* ------------------------------------------------------------------------ */
/* Frames                                                                   */

/* A frame header plus a pointer to its payload, which points into the
 * caller's input buffer and is valid as long as that buffer is. */
struct fsp_frame {
  uint8_t op;             /* opcode, possibly one this library doesn't know */
  uint8_t flags;          /* reserved, always 0 in version 1 */
  uint32_t id;            /* request id */
  uint32_t len;           /* payload length */
  const uint8_t *payload; /* len bytes */
};

/* Checks and parses the 12-byte header at buf (which must hold FSP_HDR_LEN
 * bytes). Fills f (payload left NULL). max_payload is the largest payload the
 * caller accepts (at most FSP_MAX_PAYLOAD; larger values count as
 * FSP_MAX_PAYLOAD, and 0 means FSP_MIN_PAYLOAD, here and in every function
 * taking a max_payload). Returns 0 or FSP_EMAGIC,
 * FSP_EVERSION, FSP_EFLAGS, FSP_ETOOBIG. Unknown opcodes are not an error
 * here: the framing stays valid, so the receiver can answer and go on. */
FSP_EXTERN int fsp_header_parse(const uint8_t *buf, uint32_t max_payload,
                                struct fsp_frame *f);

/* Writes a 12-byte header for (op, id, len) at buf, which must have room. */
FSP_EXTERN void fsp_header_write(uint8_t *buf, uint8_t op, uint32_t id,
                                 uint32_t len);

/* Stateless decode of one whole frame from buf[0..len). Returns the size of
 * the frame (> 0) with f->payload pointing into buf, FSP_EAGAIN when buf holds
 * only part of a frame (nothing is consumed; call again with more bytes), or
 * one of the fsp_header_parse() errors as soon as the header is in (a bad
 * magic, version or flags byte is reported as soon as that byte is in). */
FSP_EXTERN ssize_t fsp_frame_decode(const uint8_t *buf, size_t len,
                                    uint32_t max_payload, struct fsp_frame *f);

/* Bytes still needed before fsp_frame_decode() can succeed on buf[0..len):
 * 0 when a whole frame is there, FSP_HDR_LEN - len while the header is
 * incomplete. Errors as fsp_frame_decode(). */
FSP_EXTERN ssize_t fsp_frame_need(const uint8_t *buf, size_t len,
                                  uint32_t max_payload);

/* ------------------------------------------------------------------------ */
/* Incremental decoder                                                      */

/* What fsp_decoder_feed() yields. */
enum fsp_item_type {
  FSP_ITEM_NONE = 0,  /* nothing yet: keep the unconsumed bytes, add more */
  FSP_ITEM_FRAME = 1, /* a whole non-DATA frame; item.frame.payload points
                         into the input */
  FSP_ITEM_DATA = 2   /* a piece of a DATA frame's payload (zero-copy) */
};

struct fsp_item {
  enum fsp_item_type type;
  struct fsp_frame frame; /* FRAME: the frame. DATA: header of the DATA
                             frame (op, id, len), payload = this piece */
  const uint8_t *data;    /* DATA: this piece, pointing into the input */
  size_t data_len;        /* DATA: bytes in this piece (may be 0 only for an
                             empty DATA frame) */
  uint32_t data_off;      /* DATA: offset of this piece in the frame payload */
  int last;               /* DATA: 1 when this piece ends the frame */
};

/* Incremental decoder state. Zero-fill or fsp_decoder_init() before use.
 * Fields starting with '_' are private. */
struct fsp_decoder {
  uint32_t
      max_payload;     /* largest payload accepted; may be raised after HELLO */
  uint32_t _data_id;   /* id of the DATA frame being streamed */
  uint32_t _data_len;  /* its payload length */
  uint32_t _data_left; /* payload bytes of it not yet handed out */
  int _in_data;        /* 1 while streaming a DATA payload */
  int _error;          /* sticky error: once the framing broke, stay broken */
};

/* Initialises d. max_payload 0 means FSP_MIN_PAYLOAD. */
FSP_EXTERN void fsp_decoder_init(struct fsp_decoder *d, uint32_t max_payload);

/* Feeds in[0..len) to d. Returns the number of bytes consumed (>= 0) and sets
 * *it. Non-DATA frames are yielded only once whole in the input: when one is
 * partial, the call consumes nothing and yields FSP_ITEM_NONE, and the caller
 * must keep the unconsumed bytes and call again with them plus more (at most
 * FSP_HDR_LEN + max_payload bytes ever need keeping). DATA payloads are
 * yielded piece by piece as they arrive and never need keeping. Call in a loop
 * until it consumes nothing. Returns FSP_EMAGIC, FSP_EVERSION, FSP_EFLAGS or
 * FSP_ETOOBIG when the framing is broken; the error is sticky. */
FSP_EXTERN ssize_t fsp_decoder_feed(struct fsp_decoder *d, const uint8_t *in,
                                    size_t len, struct fsp_item *it);

/* ------------------------------------------------------------------------ */
/* Typed messages                                                           */

/* Byte strings inside a message point into the frame payload (decoding) or
 * into caller memory (encoding); they are not NUL-terminated. */
struct fsp_str {
  const char *ptr;
  size_t len;
};

struct fsp_hello {
  uint16_t version;      /* highest protocol version the sender speaks */
  uint32_t max_payload;  /* largest payload the sender accepts */
  uint32_t max_inflight; /* server: requests in flight it allows; client: 0 */
  uint64_t caps;         /* FSP_CAP_* bits */
  struct fsp_str agent;  /* free text, e.g. "fsd/1.0.0", 0..FSP_AGENT_MAX */
};

struct fsp_entry { /* one file in ENTRIES, or the subject of an EVENT */
  uint64_t size;
  int64_t mtime_ns;    /* modification time, ns since the Unix epoch */
  struct fsp_str name; /* version 3: a path */
  uint8_t type;        /* version 3: FSP_TYPE_*; 0 before */
};

/* A decoded or to-be-encoded frame. Which member of u is used depends on op:
 *  HELLO: hello          PING, PONG: text (opaque bytes, <= FSP_PING_MAX)
 *  BYE: status (0 = normal) + text
 *  LIST, UNSUBSCRIBE, CANCEL, OK, READY: no payload
 *  STAT, DELETE: name    GET, HASH: range   PUT: put
 *  SUBSCRIBE, SUBSCRIBED, RESYNC: sub     NOTICE, NOTIFY: text
 *  DATA: text (the bytes)   END: end     ERROR: error
 *  ENTRIES: entries (use fsp_entries_next to walk them)
 *  INFO: entry (name empty)  BEGIN: begin  DIGEST: digest  EVENT: event
 * Version 3 (paths where version 1 has names; protocol.md section 12):
 *  LIST, DELETE, MKDIR: tree    RENAME: rename    SKIPPED: skipped
 *  SUBSCRIBE: sub (with path)   EVENT: event (with from)
 *  PUT: put (mode holds FSP_PUT_* flags)   INFO, ENTRIES: entry type set
 *  CHALLENGE: challenge      AUTH: auth */
struct fsp_msg {
  uint8_t op;
  uint32_t id;
  union {
    struct fsp_hello hello;
    struct fsp_str name;
    struct fsp_str text;
    struct {
      uint64_t offset;
      uint64_t length; /* FSP_LENGTH_TO_END for the rest of the file */
      struct fsp_str name;
    } range;
    struct {
      uint64_t size;
      uint8_t mode; /* FSP_PUT_REPLACE or FSP_PUT_NO_CLOBBER */
      struct fsp_str name;
    } put;
    struct {
      uint64_t epoch; /* server instance; 0 in SUBSCRIBE means "any" */
      uint64_t seq;   /* SUBSCRIBE: replay events after this seq (0: none) */
      struct fsp_str path; /* version 3 SUBSCRIBE: subtree (empty: all) */
    } sub;
    struct {
      uint64_t size; /* bytes in the transfer */
      uint64_t hash; /* XXH3-64 (seed 0) of those bytes */
    } end;
    struct {
      uint16_t status; /* enum fsp_status */
      struct fsp_str text;
    } error;
    struct {
      uint32_t count;     /* entries in the batch */
      const uint8_t *buf; /* encoded entries (decoding only) */
      size_t len;
      uint16_t version; /* layout of the entries: 1 or 2 */
    } entries;
    struct fsp_entry entry;
    struct {
      uint64_t file_size;
      int64_t mtime_ns;
      uint64_t offset;
      uint64_t length; /* bytes that DATA frames will carry */
    } begin;
    struct {
      uint64_t offset;
      uint64_t length; /* bytes hashed (clamped to the file's end) */
      uint64_t hash;
    } digest;
    struct {
      uint64_t seq;
      uint8_t kind; /* FSP_EV_* */
      struct fsp_entry file;
      struct fsp_str from; /* version 3 RENAMED: the old path; else empty */
    } event;
    struct {
      uint8_t flags;       /* FSP_LIST_*, FSP_DELETE_* or FSP_MKDIR_* */
      struct fsp_str path; /* LIST: may be empty (the root) */
    } tree;
    struct {
      uint8_t flags; /* FSP_RENAME_* */
      struct fsp_str from, to;
    } rename;
    struct {
      uint16_t status; /* why the entry stayed: enum fsp_status */
      struct fsp_str path;
    } skipped;
    struct {
      const uint8_t *nonce; /* FSP_NONCE_LEN bytes from the server */
    } challenge;
    struct {
      const uint8_t *nonce; /* FSP_NONCE_LEN bytes from the client */
      const uint8_t *sig;   /* FSP_SIG_LEN bytes: Ed25519 over the transcript */
      struct fsp_str user;  /* who signs; fsp_user_check() holds */
    } auth;
  } u;
};

/* Decodes the payload of frame f into m. Strings point into f->payload.
 * Returns 0, FSP_EOPCODE (unknown op; m->op and m->id are still set),
 * FSP_EMALFORMED (wrong length or field values, including a text or PING
 * payload over its limit and a HELLO max_payload outside FSP_MIN_PAYLOAD..
 * FSP_MAX_PAYLOAD: answer BAD_REQUEST), FSP_EBADNAME (a name field fails
 * fsp_name_check: answer BAD_NAME), FSP_EBADUSER (AUTH's user fails
 * fsp_user_check) or FSP_EUTF8 (a text field is not UTF-8: BAD_REQUEST).
 * For a DATA frame, m->u.text is the whole payload: pass only whole frames
 * (fsp_frame_decode), not the pieces fsp_decoder_feed() yields. */
FSP_EXTERN int fsp_msg_decode(const struct fsp_frame *f, struct fsp_msg *m);

/* Encodes m as a whole frame into buf[0..cap). Returns the frame's size in
 * bytes; when that is more than cap nothing was written and the caller can
 * retry with a buffer that big (snprintf style). Negative on invalid input:
 * FSP_EBADNAME, FSP_EUTF8, FSP_ETOOBIG (payload over FSP_MAX_PAYLOAD or a
 * text over its limit), FSP_EOPCODE, FSP_EINVAL (a field value outside its
 * range, such as a HELLO max_payload outside FSP_MIN_PAYLOAD..
 * FSP_MAX_PAYLOAD). For DATA only the header is
 * cheap to write separately: see fsp_header_write(). */
FSP_EXTERN ssize_t fsp_msg_encode(uint8_t *buf, size_t cap,
                                  const struct fsp_msg *m);

/* fsp_msg_decode() and fsp_msg_encode() for the protocol version a
 * connection speaks (the lower of the two HELLOs' versions): versions 1 and 2
 * as the two functions above, version 3 (FSP_TREE_VERSION) with paths for
 * names and the layouts of protocol.md section 12. MKDIR, RENAME and SKIPPED
 * have one layout and decode in every version; refusing them on a connection
 * below version 3 is the server's job. Any other version is FSP_EINVAL. An
 * ENTRIES message decoded here records the version for fsp_entries_next(). */
FSP_EXTERN int fsp_msg_decode_v(const struct fsp_frame *f, unsigned version,
                                struct fsp_msg *m);
FSP_EXTERN ssize_t fsp_msg_encode_v(uint8_t *buf, size_t cap, unsigned version,
                                    const struct fsp_msg *m);

/* Size of one entry inside an ENTRIES payload with a name of name_len bytes. */
#define FSP_ENTRY_LEN(name_len) (8u + 8u + 2u + (name_len))
/* The same in version 3, whose entries carry a type byte and a path. */
#define FSP_ENTRY2_LEN(path_len) (8u + 8u + 1u + 2u + (path_len))

/* Building an ENTRIES frame in place: fsp_entries_begin() reserves the header
 * and count at buf; fsp_entries_add() appends one entry, returning 0 or
 * FSP_ENOBUFS when buf[0..cap) has no room left (the batch is then full) or
 * FSP_EBADNAME; fsp_entries_finish() writes header and count and returns the
 * frame size. b is caller state; zero-fill not needed. */
struct fsp_entries_builder {
  uint8_t *buf;
  size_t cap;
  size_t len;     /* bytes used so far, header included */
  uint32_t count; /* entries added */
  uint32_t id;
  unsigned version; /* entry layout: 1 or 2, or 3 with types and paths */
};
FSP_EXTERN int fsp_entries_begin(struct fsp_entries_builder *b, uint8_t *buf,
                                 size_t cap, uint32_t id);
/* The same for a connection speaking `version` (1 to 3; else FSP_EINVAL).
 * In version 3 fsp_entries_add() writes e->type (FSP_TYPE_*, else
 * FSP_EINVAL) and checks e->name as a path. */
FSP_EXTERN int fsp_entries_begin_v(struct fsp_entries_builder *b, uint8_t *buf,
                                   size_t cap, uint32_t id, unsigned version);
FSP_EXTERN int fsp_entries_add(struct fsp_entries_builder *b,
                               const struct fsp_entry *e);
FSP_EXTERN size_t fsp_entries_finish(struct fsp_entries_builder *b);

/* Walks a decoded ENTRIES message. *pos starts at 0. Returns 1 and fills e
 * while there are entries, 0 at the end, FSP_EMALFORMED or FSP_EBADNAME on a
 * bad entry (fsp_msg_decode already validated all entries, so a message that
 * decoded returns no error here). */
FSP_EXTERN int fsp_entries_next(const struct fsp_msg *m, size_t *pos,
                                struct fsp_entry *e);

/* ------------------------------------------------------------------------ */
/* Authentication                                                           */

/* Writes the bytes an AUTH signature covers (protocol.md section 11) into
 * buf[0..cap): FSP_AUTH_CONTEXT and its NUL, the server's nonce, the
 * client's nonce, the user name and the channel binding (binding_len 0
 * without TLS), each of the last two after a one-byte length. Pure: no
 * crypto, no I/O; both nonces are FSP_NONCE_LEN bytes. Returns the
 * transcript's size (at most FSP_TRANSCRIPT_MAX); when that is more than
 * cap nothing was written (snprintf style). Or FSP_EBADUSER for a bad user
 * name, FSP_EINVAL for a NULL nonce or a binding over FSP_BINDING_MAX. */
FSP_EXTERN ssize_t fsp_auth_transcript(uint8_t *buf, size_t cap,
                                       const uint8_t *server_nonce,
                                       const uint8_t *client_nonce,
                                       const char *user, size_t user_len,
                                       const uint8_t *binding,
                                       size_t binding_len);

#ifdef __cplusplus
}
#endif

#endif /* FSPROTO_FSPROTO_H */
