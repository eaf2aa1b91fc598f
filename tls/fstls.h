/* fstls: the TLS 1.3 transport shared by fsd and fsc.
 *
 * An internal static library, linked by the daemon and the client but never
 * by libfsproto, which stays free of I/O and of crypto. It has four parts:
 *
 *  - the engine (engine.c): one SSL object between two byte buffers. The
 *    caller feeds it ciphertext from the socket and drains ciphertext for
 *    the socket, so it runs under an event loop without ever blocking and is
 *    tested without sockets;
 *  - the contexts (ctx.c): the server's and the client's SSL_CTX, TLS 1.3
 *    only, ALPN "fsproto/1", no renegotiation, no session tickets;
 *  - the keys (keys.c, fingerprint.c): a key pair and self-signed
 *    certificate made on first start in a state directory, key file mode
 *    checks, and the server's fingerprint as ssh prints it;
 *  - the client's trust store (known.c): the known_servers file.
 *
 * Every function returns 0 (or a count) on success and a negative FSTLS_E*
 * code on failure; fstls_strerror() gives its text. Functions that can fail
 * for a reason worth showing a user also fill a caller's `why` buffer with
 * one line (file names, OpenSSL's reason).
 */
#ifndef FSTLS_H
#define FSTLS_H

#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* The one application protocol both sides offer and require (ALPN). */
#define FSTLS_ALPN "fsproto/1"

/* Bytes in a SHA-256 hash, and in its printed form "SHA256:" + 43 base64
 * characters (unpadded, as ssh prints it) + NUL. */
#define FSTLS_HASH_LEN 32
#define FSTLS_FP_SIZE 51

/* Error codes, kept apart from UV_E* (negative errno) and FSP_E* (-501..). */
#define FSTLS_ERRNO_MAP(X)                                                     \
  X(EAGAIN, -601, "more bytes are needed")                                     \
  X(ECLOSED, -602, "the peer closed the TLS connection")                       \
  X(EPROTO, -603, "TLS protocol error")                                        \
  X(EVERSION, -604, "the peer does not speak TLS 1.3")                         \
  X(EALPN, -605, "the peer does not speak " FSTLS_ALPN " (ALPN)")              \
  X(ECERT, -606, "certificate verification failed")                            \
  X(EPIN, -607, "the server's key does not match the pinned fingerprint")      \
  X(EKEYPERM, -608, "private key file is accessible by others")                \
  X(EKEY, -609, "cannot load the key or certificate")                          \
  X(ENOMEM, -610, "out of memory")                                             \
  X(EINVAL, -611, "invalid argument")                                          \
  X(EIO, -612, "cannot read or write a file")                                  \
  X(ESTATE, -613, "TLS handshake not finished")                                \
  X(ENOTFOUND, -614, "no entry for this server")

enum fstls_errno {
#define FSTLS_ERR_ENUM(name, val, msg) FSTLS_##name = val,
  FSTLS_ERRNO_MAP(FSTLS_ERR_ENUM)
#undef FSTLS_ERR_ENUM
};

/* Text for an FSTLS_E* code; "unknown error" otherwise. Static storage. */
const char *fstls_strerror(int err);

/* Formats one line of explanation into why[0..whylen) (nothing when why is
 * NULL or whylen is 0) and returns code: how the readers of key and users
 * files in fstls, fsd and fsc say what went wrong in one statement. */
int fstls_fail(char *why, size_t whylen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Name of an FSTLS_E* code, e.g. "FSTLS_EPIN"; "FSTLS_UNKNOWN" otherwise. */
const char *fstls_err_name(int err);

/* ------------------------------------------------------------------------ */
/* Contexts (ctx.c)                                                         */

/* Builds the server's SSL_CTX from a PEM certificate (chain) file and a PEM
 * private key file: TLS 1.3 only, ALPN FSTLS_ALPN required, renegotiation
 * off, no session tickets or cache (fsc never resumes, and a ticket is
 * server state an idle client could make us hold), and the handshake's
 * buffers released once idle (SSL_MODE_RELEASE_BUFFERS).
 *
 * The key file is opened once and refused when its mode lets group or others
 * in, or when it is owned by another user than us or root (fstls_key_fd_check).
 * Blocking file reads: call it at start or from a worker thread (a reload on
 * SIGHUP builds a new context while connections keep the one they started
 * with; each SSL holds a reference to its SSL_CTX).
 *
 * On success stores the new context in *out (free with SSL_CTX_free) and,
 * when fp is not NULL, the public key's fingerprint. Returns 0, or FSTLS_EKEY,
 * FSTLS_EKEYPERM, FSTLS_EIO or FSTLS_ENOMEM with a line in why.
 */
int fstls_server_ctx_new(const char *cert_file, const char *key_file,
                         SSL_CTX **out, char fp[FSTLS_FP_SIZE], char *why,
                         size_t whylen);

/* Builds the client's SSL_CTX: TLS 1.3 only, ALPN FSTLS_ALPN offered and
 * required. With ca_file NULL the server is trusted by its key's fingerprint
 * (pinned or first use, see fstls_engine_client); with a PEM CA file the
 * server's chain must verify against it and name the host given to
 * fstls_engine_client. Returns 0, or FSTLS_EKEY (unreadable CA file) or
 * FSTLS_ENOMEM with a line in why. Free with SSL_CTX_free.
 */
int fstls_client_ctx_new(const char *ca_file, SSL_CTX **out, char *why,
                         size_t whylen);

/* ------------------------------------------------------------------------ */
/* Engine (engine.c)                                                        */

/* One TLS connection as a byte-in/byte-out machine, in the style of
 * nghttp2's mem_recv/mem_send: ciphertext from the socket goes in with
 * fstls_feed(), plaintext comes out of fstls_read(), plaintext goes in with
 * fstls_write(), and ciphertext for the socket comes out of fstls_drain().
 * After every feed, read or write the caller drains: a handshake step, an
 * alert or a record may be waiting.
 *
 * Embed it in the connection (no allocation of its own besides OpenSSL's).
 * It must not move between init and free: the certificate check finds it
 * through the SSL object. The fields are private.
 */
/* Bytes waiting in the engine, one way (private). */
struct fstls_bytes {
  uint8_t *p; /* malloc'd; NULL while empty, so idle costs nothing */
  size_t off; /* first byte not yet taken */
  size_t len; /* end of the bytes */
  size_t cap; /* room at p */
};

struct fstls_engine {
  /* The connection; its BIOs read _in and append to _out. */
  SSL *_ssl;
  /* Ciphertext from the peer not yet read by OpenSSL. */
  struct fstls_bytes _in;
  /* Ciphertext for the peer not yet drained. */
  struct fstls_bytes _out;
  /* The OpenSSL error behind the last failure, for fstls_engine_why(). */
  unsigned long _err;
  /* The certificate check's verdict when it refused (X509_V_*), else 0. */
  long _verify;
  /* The fingerprint the server must have (client, when pinned). */
  uint8_t _pin[FSTLS_HASH_LEN];
  /* The fingerprint the server showed (client, once checked). */
  uint8_t _seen[FSTLS_HASH_LEN];
  /* _pin is set; _seen is set; handshake over; the pin did not match. */
  unsigned _pinned : 1, _have_seen : 1, _done : 1, _pin_failed : 1;
  /* Set once the engine has failed: it does nothing more but drain. */
  int _failed;
};

/* Starts a server connection on ctx (takes a reference to it). Returns 0 or
 * FSTLS_ENOMEM. */
int fstls_engine_server(struct fstls_engine *e, SSL_CTX *ctx);

/* Starts a client connection on ctx. host is the server's name or address
 * as the user wrote it: sent as SNI when it is a name, and checked against
 * the certificate when ctx has a CA file. pin, when not NULL, is the
 * FSTLS_HASH_LEN-byte hash the server's key must have (else the handshake
 * fails with FSTLS_EPIN); NULL accepts any key, whose fingerprint
 * fstls_engine_peer_fp() then gives (trust on first use). Returns 0,
 * FSTLS_EINVAL or FSTLS_ENOMEM. The first flight is ready to drain after
 * fstls_handshake().
 */
int fstls_engine_client(struct fstls_engine *e, SSL_CTX *ctx, const char *host,
                        const uint8_t *pin);

/* Frees everything the engine holds. Safe on a zeroed engine and twice. */
void fstls_engine_free(struct fstls_engine *e);

/* Copies len bytes of ciphertext from the peer into the engine. Returns 0,
 * or FSTLS_ENOMEM. The caller bounds how much it feeds before reading.
 */
int fstls_feed(struct fstls_engine *e, const void *buf, size_t len);

/* Moves the handshake forward with what has been fed. Returns 1 once it is
 * over (both sides agreed on TLS 1.3 and FSTLS_ALPN, and the client checked
 * the server's key), FSTLS_EAGAIN while it needs more bytes, or FSTLS_EPROTO,
 * FSTLS_EVERSION, FSTLS_EALPN, FSTLS_ECERT, FSTLS_EPIN, FSTLS_ECLOSED.
 * Drain afterwards in every case: a failure leaves an alert to send.
 */
int fstls_handshake(struct fstls_engine *e);

/* Non-zero once the handshake is over (and stays so after a later
 * failure or close_notify). */
int fstls_handshake_done(const struct fstls_engine *e);

/* The TLS exporter (RFC 8446 section 7.5) for label and no context, into
 * out[0..len): the channel binding fsproto's authentication signs
 * (RFC 9266 tls-exporter). Returns 0, or FSTLS_ESTATE before the handshake
 * is over or when OpenSSL refuses. */
int fstls_export(const struct fstls_engine *e, const char *label, uint8_t *out,
                 size_t len);

/* Decrypts up to len bytes of application data into buf, finishing the
 * handshake first if needed. Returns the count (> 0), FSTLS_EAGAIN when
 * more ciphertext is needed, FSTLS_ECLOSED when the peer sent close_notify,
 * or a handshake error. Call it until FSTLS_EAGAIN: a record larger than
 * len stays decrypted inside the engine (fstls_pending()).
 */
ssize_t fstls_read(struct fstls_engine *e, void *buf, size_t len);

/* Non-zero when fstls_read() can return data without another fstls_feed():
 * decrypted bytes left inside OpenSSL, or fed ciphertext not yet read. A
 * caller that stopped reading (backpressure) must resume on this, not on the
 * socket, or the data waits for a packet that may never come.
 */
int fstls_pending(const struct fstls_engine *e);

/* Encrypts len bytes of application data. Returns len, FSTLS_ESTATE before
 * the handshake is over, or FSTLS_ENOMEM/FSTLS_EPROTO. The records are
 * ready in fstls_drain(); write in chunks of a few records at most so the
 * output buffer stays small.
 */
ssize_t fstls_write(struct fstls_engine *e, const void *buf, size_t len);

/* Sends close_notify (it is then ready to drain). Returns 0 or FSTLS_ESTATE
 * before the handshake. */
int fstls_close(struct fstls_engine *e);

/* Bytes of ciphertext waiting to be sent. */
size_t fstls_out_pending(const struct fstls_engine *e);

/* Moves up to len bytes of ciphertext for the peer into buf. Returns the
 * count (0 when nothing waits). Once the output is empty its buffer is
 * given back, so an idle connection holds almost nothing.
 */
size_t fstls_drain(struct fstls_engine *e, void *buf, size_t len);

/* Hands all the ciphertext waiting for the peer to the caller without a
 * copy: returns a buffer allocated with malloc() whose first *len bytes
 * are to be sent (free() it once written), or NULL with *len 0 when
 * nothing waits (or, with *len non-zero, when out of memory: then use
 * fstls_drain). The engine's output is empty afterwards. */
void *fstls_take(struct fstls_engine *e, size_t *len);

/* One line explaining the last failure with OpenSSL's own words (e.g.
 * "certificate has expired", "no application protocol"); "" when none.
 * Valid until the next call on this engine's thread. */
const char *fstls_engine_why(const struct fstls_engine *e);

/* After a handshake on the client side (or a FSTLS_EPIN failure), stores the
 * fingerprint of the key the server showed. Returns 0 or FSTLS_ESTATE. */
int fstls_engine_peer_fp(const struct fstls_engine *e, char fp[FSTLS_FP_SIZE]);

/* ------------------------------------------------------------------------ */
/* Keys and fingerprints (keys.c, fingerprint.c)                            */

/* Stores the SHA-256 of pkey's DER SubjectPublicKeyInfo. Returns 0 or
 * FSTLS_ENOMEM. Hashing the key, not the certificate, keeps a server's
 * fingerprint when its self-signed certificate is made again. */
int fstls_spki_hash(const EVP_PKEY *pkey, uint8_t hash[FSTLS_HASH_LEN]);

/* Formats a hash as "SHA256:" + unpadded base64. */
void fstls_fp_format(const uint8_t hash[FSTLS_HASH_LEN],
                     char fp[FSTLS_FP_SIZE]);

/* Parses "SHA256:" + 43 base64 characters (a trailing '=' tolerated) into
 * hash. Returns 0 or FSTLS_EINVAL (anything else, including non-canonical
 * trailing bits). */
int fstls_fp_parse(const char *s, uint8_t hash[FSTLS_HASH_LEN]);

/* The state directory fsd keeps its key in when none is given: the first
 * entry of $STATE_DIRECTORY (systemd's StateDirectory=), else
 * $XDG_STATE_HOME/fsd, else $HOME/.local/state/fsd. Returns 0, or
 * FSTLS_EINVAL when none of them is set or the result does not fit. */
int fstls_state_dir_default(char *buf, size_t len);

/* File names inside a state directory. */
#define FSTLS_KEY_NAME "key.pem"
#define FSTLS_CERT_NAME "cert.pem"

/* Makes sure dir holds a private key (FSTLS_KEY_NAME, mode 0600) and a
 * self-signed certificate for it (FSTLS_CERT_NAME): creates the directory
 * (0700) and whichever file is missing. An existing key is kept, so the
 * fingerprint survives a lost certificate. Files are written under a
 * temporary name and renamed, so a crash leaves no half file. Stores the
 * two paths in key_path/cert_path (PATH_MAX bytes each). Returns 1 when it
 * created the key, 0 when it was there, or FSTLS_EIO, FSTLS_EKEY,
 * FSTLS_EKEYPERM, FSTLS_ENOMEM with a line in why. Blocking.
 */
int fstls_keys_ensure(const char *dir, char *key_path, char *cert_path,
                      char *why, size_t whylen);

/* Checks an open private key file as OpenSSH's sshkey_perm_ok() does: a
 * regular file owned by us or root, with no permission for group or others.
 * Returns 0, or FSTLS_EKEYPERM with a line in why saying how to fix it. */
int fstls_key_fd_check(int fd, const char *path, char *why, size_t whylen);

/* ------------------------------------------------------------------------ */
/* Kernel TLS (ktls.c)                                                      */

/* Whether the kernel offers the "tls" TCP upper-layer protocol, that is
 * whether sendfile() could send file pages through TLS records the kernel
 * makes. Reads /proc/sys/net/ipv4/tcp_available_ulp (blocking; call it at
 * start). Returns 1 or 0, with a line for the log in why either way. */
int fstls_ktls_available(char *why, size_t whylen);

/* Whether a tcp_available_ulp text ("mptcp tls") names "tls". Pure. */
int fstls_ulp_has_tls(const char *text);

/* ------------------------------------------------------------------------ */
/* The client's known_servers file (known.c)                                */

/* One line of a known_servers file that names a server. */
struct fstls_known_hit {
  unsigned line;                /* 1-based line number in the file */
  uint8_t hash[FSTLS_HASH_LEN]; /* the fingerprint recorded there */
  char fp[FSTLS_FP_SIZE];       /* the same, printed */
};

/* Longest line considered; longer ones are ignored as malformed. */
#define FSTLS_KNOWN_LINE_MAX 1024
/* Largest known_servers file read. */
#define FSTLS_KNOWN_FILE_MAX (1024 * 1024)

/* Writes the key a server is recorded under: "host:port" with the host in
 * lower case, "[v6]:port" for an IPv6 address. Returns the length, or
 * FSTLS_EINVAL when host is empty, holds a space, '#' or control character,
 * or the result does not fit in len. */
int fstls_known_key(const char *host, unsigned port, char *buf, size_t len);

/* Looks key up in the text of a known_servers file (buf[0..len), need not
 * be NUL-terminated). Each line is "KEY SHA256:..." with blanks between;
 * blank lines and lines starting with '#' are skipped, and so are malformed
 * ones (bad fingerprint, missing field, NUL bytes, overlong), which never
 * match. A line may end with CRLF. On a match stores its line and
 * fingerprint in *hit and returns 0 (the first line for key wins); returns
 * FSTLS_ENOTFOUND when no line names key. Pure: no I/O, no allocation.
 */
int fstls_known_lookup(const char *buf, size_t len, const char *key,
                       struct fstls_known_hit *hit);

/* The file's path: $XDG_CONFIG_HOME/fsc/known_servers, else
 * $HOME/.config/fsc/known_servers. Returns 0 or FSTLS_EINVAL. */
int fstls_known_path(char *buf, size_t len);

/* Reads a known_servers file into a malloc'd buffer (*out, *outlen; free
 * it). A missing file reads as empty. Returns 0, FSTLS_EIO (with errno's
 * text in why) or FSTLS_ENOMEM; a file over FSTLS_KNOWN_FILE_MAX is EIO. */
int fstls_known_read(const char *path, char **out, size_t *outlen, char *why,
                     size_t whylen);

/* Appends "KEY FP\n" to the file in one write, creating it (0600) and its
 * directory (0700) when missing; starts a new line first if the file does
 * not end with one. Stores the new line's number in *line when not NULL.
 * Returns 0, FSTLS_EINVAL or FSTLS_EIO with a line in why. */
int fstls_known_append(const char *path, const char *key, const char *fp,
                       unsigned *line, char *why, size_t whylen);

/* ------------------------------------------------------------------------ */
/* The client's trust decision (trust.c)                                    */

enum fstls_trust_mode {
  FSTLS_TRUST_PIN,   /* --pin: that key only; nothing recorded */
  FSTLS_TRUST_KNOWN, /* known_servers names the server: its key only */
  FSTLS_TRUST_NEW,   /* first use: any key, recorded after the handshake */
  FSTLS_TRUST_CA     /* --ca: a chain to the CA naming the host */
};

/* How one server is trusted. Fill with fstls_trust_init(). */
struct fstls_trust {
  enum fstls_trust_mode mode;
  uint8_t pin[FSTLS_HASH_LEN]; /* the key expected (PIN, KNOWN) */
  unsigned line;               /* KNOWN: its line in path */
  char key[300];               /* "host:port" as recorded */
  char path[PATH_MAX];         /* the known_servers file (KNOWN, NEW) */
};

/* Decides how the server at host:port will be trusted: pin (a printed
 * fingerprint) when given, else a CA when use_ca, else the known_servers
 * file at known_path (NULL: fstls_known_path()) names its key, else first
 * use. Reads the file (blocking; call before the loop). Returns 0, or
 * FSTLS_EINVAL (bad pin or host: a usage error), FSTLS_EIO, FSTLS_ENOMEM
 * with a line in why. */
int fstls_trust_init(struct fstls_trust *t, const char *host, unsigned port,
                     const char *pin, const char *known_path, int use_ca,
                     char *why, size_t whylen);

/* The pin to give fstls_engine_client(), or NULL (first use, CA). */
const uint8_t *fstls_trust_pin(const struct fstls_trust *t);

/* After a finished handshake: on first use, appends the server's key to
 * known_servers and writes the line to show on stderr into note (empty
 * otherwise). Returns 0, or FSTLS_EIO/FSTLS_EINVAL with the reason in
 * note. Blocking: one small append. */
int fstls_trust_done(struct fstls_trust *t, const struct fstls_engine *e,
                     char *note, size_t notelen);

/* After a failed handshake (rc from the engine): one line for the user.
 * A changed key names the known_servers line to remove; a refused
 * certificate says why (expired, wrong host name). */
void fstls_trust_failure(const struct fstls_trust *t,
                         const struct fstls_engine *e, int rc, char *msg,
                         size_t len);

#endif
