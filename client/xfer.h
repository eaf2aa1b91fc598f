/* fsc transfer state machines, apart from any I/O: what a download or an
 * upload expects next, the running XXH3-64, and the checks on BEGIN, DATA,
 * END, DIGEST and INFO. The libuv side feeds them what arrived and does what
 * they say. Each machine owns an XXH3 state allocated by its init function
 * (XXH3_state_t needs 64-byte alignment, which XXH3_createState() gives) and
 * released by its free function. */
#ifndef FSC_XFER_H
#define FSC_XFER_H

#include <stddef.h>
#include <stdint.h>

#include <xxhash.h>

#include "fsproto/fsproto.h"

/* Client-side transfer errors (negative, apart from FSP_E* and UV_E*). */
#define FSC_XFER_ERRNO_MAP(X)                                                  \
  X(ESTATE, -601, "unexpected answer from the server")                         \
  X(ERANGE, -602, "server sent a different range than asked for")              \
  X(ETOOMUCH, -603, "server sent more data than announced")                    \
  X(ESIZE, -604, "size mismatch: transfer incomplete")                         \
  X(ECHECKSUM, -605, "checksum mismatch: data corrupted in transit")           \
  X(ECHANGED, -606, "local file changed size while being uploaded")            \
  X(ENOMEM, -607, "out of memory")

enum fsc_xfer_errno {
#define FSC_XE(name, val, msg) FSC_##name = val,
  FSC_XFER_ERRNO_MAP(FSC_XE)
#undef FSC_XE
};

/* Text for an FSC_E* code, or NULL when err is not one. */
const char *fsc_xfer_strerror(int err);

/* --- Download ----------------------------------------------------------- */

enum fsc_get_state {
  FSC_GET_PREFIX, /* resuming: hashing the local partial copy */
  FSC_GET_DIGEST, /* resuming: HASH sent, waiting for DIGEST */
  FSC_GET_BEGIN,  /* GET sent, waiting for BEGIN */
  FSC_GET_DATA,   /* receiving DATA until END */
  FSC_GET_DONE,   /* END matched: the download is good */
  FSC_GET_FAILED, /* an error ended it */
};

struct fsc_get {
  enum fsc_get_state state;
  uint64_t offset;     /* where the GET starts (the verified prefix) */
  uint64_t prefix;     /* bytes of the local partial copy (resume) */
  uint64_t length;     /* bytes the DATA frames carry, from BEGIN */
  uint64_t received;   /* DATA bytes so far */
  uint64_t file_size;  /* from BEGIN */
  int64_t mtime_ns;    /* from BEGIN */
  XXH3_state_t *range; /* hash of the bytes of this GET */
  XXH3_state_t *whole; /* hash of prefix + bytes: the whole local file */
};

/* Starts a download. prefix is the size of the local partial copy to
 * resume from (0: none, the machine starts in FSC_GET_BEGIN at offset 0;
 * else in FSC_GET_PREFIX). Returns 0 or FSC_ENOMEM. */
int fsc_get_init(struct fsc_get *g, uint64_t prefix);

/* Releases the hash states. Safe on a zeroed or already freed machine. */
void fsc_get_free(struct fsc_get *g);

/* Resuming: n bytes of the local partial copy, in order. */
void fsc_get_prefix_data(struct fsc_get *g, const void *p, size_t n);

/* Resuming: the local prefix is hashed; the caller now sends HASH (0,
 * prefix). Moves to FSC_GET_DIGEST. */
void fsc_get_prefix_done(struct fsc_get *g);

/* Resuming: the server's DIGEST arrived. Returns 1 when it matches the local
 * prefix (the GET starts at offset = prefix, appending to the partial copy),
 * 0 when it does not (the partial copy must be discarded and the GET starts
 * at 0), or FSC_ESTATE. Either way the machine moves to FSC_GET_BEGIN. */
int fsc_get_on_digest(struct fsc_get *g, const struct fsp_msg *m);

/* BEGIN arrived: checks its range against the request. Returns 0,
 * FSC_ESTATE or FSC_ERANGE. */
int fsc_get_on_begin(struct fsc_get *g, const struct fsp_msg *m);

/* n DATA bytes arrived (a piece of a frame). Returns 0, or FSC_ESTATE /
 * FSC_ETOOMUCH (more than BEGIN announced), which fail the download. */
int fsc_get_on_data(struct fsc_get *g, const void *p, size_t n);

/* END arrived. Returns 0 when its size and hash match what was received
 * (state FSC_GET_DONE), else FSC_ESIZE, FSC_ECHECKSUM or FSC_ESTATE. */
int fsc_get_on_end(struct fsc_get *g, const struct fsp_msg *m);

/* XXH3-64 of the whole local file (prefix and received bytes). */
uint64_t fsc_get_whole_hash(const struct fsc_get *g);

/* --- Upload ------------------------------------------------------------- */

enum fsc_put_state {
  FSC_PUT_READY,   /* PUT sent, waiting for READY */
  FSC_PUT_SENDING, /* READY came: reading the file and sending DATA */
  FSC_PUT_INFO,    /* END sent, waiting for INFO */
  FSC_PUT_DONE,    /* INFO matched */
  FSC_PUT_FAILED,
};

struct fsc_put {
  enum fsc_put_state state;
  uint64_t size;  /* bytes announced in PUT */
  uint64_t read;  /* bytes read from the file and hashed so far */
  uint32_t chunk; /* DATA payload size to use */
  XXH3_state_t *hash;
};

/* Starts an upload of size bytes to a server that accepts payloads of
 * max_payload bytes; chunks are min(max_payload, want_chunk). Returns 0 or
 * FSC_ENOMEM. */
int fsc_put_init(struct fsc_put *p, uint64_t size, uint32_t max_payload,
                 uint32_t want_chunk);

void fsc_put_free(struct fsc_put *p);

/* READY arrived. Returns 0 or FSC_ESTATE. */
int fsc_put_on_ready(struct fsc_put *p);

/* How many bytes to read next for the following DATA frame (0 when all
 * have been read). */
uint32_t fsc_put_next_len(const struct fsc_put *p);

/* A read of the file returned n bytes (in order) for a request of want
 * bytes. Returns 0, or FSC_ECHANGED when the file ended early (n < want). */
int fsc_put_on_read(struct fsc_put *p, const void *buf, size_t n, size_t want);

/* Fills the END message once everything was read; moves to FSC_PUT_INFO.
 * Returns 0 or FSC_ESTATE. */
int fsc_put_end(struct fsc_put *p, struct fsp_msg *end, uint32_t id);

/* INFO (the stored file) arrived. Returns 0 (FSC_PUT_DONE), FSC_ESIZE or
 * FSC_ESTATE. */
int fsc_put_on_info(struct fsc_put *p, const struct fsp_msg *m);

#endif /* FSC_XFER_H */
