/* fsp-cat: prints a file from an fsd server on standard output.
 *
 *   fsp-cat HOST:PORT NAME          e.g. fsp-cat 127.0.0.1:7878 notes.txt
 *
 * A small blocking client showing how a program uses libfsproto: the
 * library only turns messages into bytes and bytes into messages; the
 * program owns the socket and the buffers. Build it against the installed
 * library: cc fsp-cat.c $(pkg-config --cflags --libs fsproto) -o fsp-cat
 *
 * It checks the byte count in END. A client that keeps the file should
 * also compare END's XXH3-64 hash with its own (libxxhash, XXH3_64bits). */
#include <fsproto/fsproto.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* We announce the smallest payload every peer accepts, so one frame always
 * fits in this buffer. */
static uint8_t in[FSP_HDR_LEN + FSP_MIN_PAYLOAD];

static void die(const char *what, const char *why) {
  fprintf(stderr, "fsp-cat: %s: %s\n", what, why);
  exit(1);
}

/* Connects to "HOST:PORT" ("[ADDR]:PORT" for IPv6). */
static int dial(const char *addr) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
  int fd = -1, rc;

  if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
    die(addr, "want HOST:PORT");
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host) - 2);
    host[strlen(host) - 2] = '\0';
  }
  rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0)
    die(addr, gai_strerror(rc));
  for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0)
    die(addr, "cannot connect");
  return fd;
}

/* Encodes m at the end of out[0..*len) and advances *len. */
static void put_msg(uint8_t *out, size_t cap, size_t *len,
                    const struct fsp_msg *m) {
  ssize_t n = fsp_msg_encode(out + *len, cap - *len, m);
  if (n < 0 || (size_t)n > cap - *len)
    die("encode", n < 0 ? fsp_strerror((int)n) : "buffer too small");
  *len += (size_t)n;
}

/* Acts on one message of the GET (id 1). Returns 1 once the file is
 * complete; exits on any error. */
static int on_msg(const struct fsp_msg *m, uint64_t *got) {
  switch (m->op) {
  case FSP_OP_HELLO: /* the server's: nothing to do in this program */
  case FSP_OP_BEGIN:
    return 0;
  case FSP_OP_DATA:
    if (fwrite(m->u.text.ptr, 1, m->u.text.len, stdout) != m->u.text.len)
      die("stdout", "write failed");
    *got += m->u.text.len;
    return 0;
  case FSP_OP_END:
    if (m->u.end.size != *got)
      die("get", "short transfer");
    return 1;
  case FSP_OP_ERROR:
    fprintf(stderr, "fsp-cat: %s: %.*s\n", fsp_status_name(m->u.error.status),
            (int)m->u.error.text.len, m->u.error.text.ptr);
    exit(1);
  case FSP_OP_BYE:
    die("server", "closed the connection");
  }
  return 0; /* PING and anything newer: not ours to answer here */
}

int main(int argc, char **argv) {
  uint8_t out[512]; /* HELLO and GET: at most 2 headers + 43 + 271 bytes */
  size_t outlen = 0, have = 0;
  uint64_t got = 0;
  struct fsp_msg m;
  int fd, done = 0;

  if (argc != 3) {
    fprintf(stderr, "usage: fsp-cat HOST:PORT NAME\n");
    return 2;
  }
  fd = dial(argv[1]);

  /* HELLO first; the GET may follow at once, without waiting for the
   * server's HELLO, since it is smaller than FSP_MIN_PAYLOAD. */
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = FSP_PROTO_VERSION;
  m.u.hello.max_payload = FSP_MIN_PAYLOAD;
  m.u.hello.agent = (struct fsp_str){"fsp-cat", 7};
  put_msg(out, sizeof(out), &outlen, &m);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_GET;
  m.id = 1;
  m.u.range.offset = 0;
  m.u.range.length = FSP_LENGTH_TO_END;
  m.u.range.name = (struct fsp_str){argv[2], strlen(argv[2])};
  put_msg(out, sizeof(out), &outlen, &m);
  if (send(fd, out, outlen, MSG_NOSIGNAL) != (ssize_t)outlen)
    die("send", "failed");

  while (!done) {
    struct fsp_frame f;
    ssize_t n = fsp_frame_decode(in, have, FSP_MIN_PAYLOAD, &f);
    if (n == FSP_EAGAIN) { /* part of a frame: read more */
      ssize_t r = recv(fd, in + have, sizeof(in) - have, 0);
      if (r <= 0)
        die("server", "connection lost");
      have += (size_t)r;
      continue;
    }
    if (n < 0)
      die("decode", fsp_strerror((int)n));
    int rc = fsp_msg_decode(&f, &m);
    if (rc == 0)
      done = on_msg(&m, &got);
    else if (rc != FSP_EOPCODE) /* unknown opcodes are skipped */
      die("decode", fsp_strerror(rc));
    /* The frame is used up: keep only the bytes after it. */
    memmove(in, in + n, have - (size_t)n);
    have -= (size_t)n;
  }
  close(fd);
  return fflush(stdout) == 0 ? 0 : 1;
}
