/* fsd's access log (--access-log FILE|-): one line per finished request,
 * as nginx writes its access log:
 *
 *   2026-12-04T14:03:35.123Z 192.0.2.7:51234 alice GET "a.txt" 1048576
 * OK 12.345ms
 *
 * time (UTC, ms), peer, user ("-" on a server without users), operation,
 * file name (quoted; "-" when the request has none), bytes moved, status
 * ("OK" or the ERROR status name), duration. Lines are formatted on the loop
 * thread into a buffer and written by libuv's threadpool (uv_fs_write), so a
 * slow disk never blocks the loop: when the buffer is full, lines are
 * dropped and counted, and a line saying how many were lost follows. */
#ifndef FSD_ALOG_H
#define FSD_ALOG_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define FSD_ALOG_BUF (256u * 1024u) /* bytes buffered while a write runs */
#define FSD_ALOG_LINE_MAX 1024u     /* longest line; longer names are cut */

/* One finished request. */
struct fsd_alog_rec {
  int64_t when_ms;  /* end time, ms since the Unix epoch */
  const char *peer; /* "192.0.2.7:51234" */
  const char *user; /* NULL or "" for none */
  const char *op;   /* "GET", "PUT", ... */
  const char *name; /* NULL when the request names no file */
  size_t name_len;
  uint64_t bytes;       /* payload bytes moved (GET sent, PUT received) */
  const char *status;   /* "OK" or a status name such as "NOT_FOUND" */
  uint64_t duration_us; /* from the request's arrival to its end */
};

struct fsd_alog;

/* Formats r as one line with its newline into buf[0..cap) (cap at least
 * FSD_ALOG_LINE_MAX). Bytes of the name that are not printable ASCII, and
 * '"' and '\', are written as \xHH, so a line never breaks or lies. Returns
 * the line's length. */
size_t fsd_alog_format(char *buf, size_t cap, const struct fsd_alog_rec *r);

/* Opens the log: path "-" is standard output, anything else a file opened
 * for appending (created 0640). Opening blocks: do it before the loop runs.
 * bufcap is the buffer size (0 for FSD_ALOG_BUF). Returns 0 and *out, or a
 * negative UV_E* code with err set. */
int fsd_alog_open(uv_loop_t *loop, const char *path, size_t bufcap,
                  struct fsd_alog **out, char *err, size_t errlen);

/* Logs one request (never blocks; see above). */
void fsd_alog_write(struct fsd_alog *a, const struct fsd_alog_rec *r);

/* Lines dropped so far because the disk did not keep up. */
uint64_t fsd_alog_dropped(const struct fsd_alog *a);

/* Writes what is buffered, closes the file and frees a, all in the
 * background; the loop runs until that is done. */
void fsd_alog_close(struct fsd_alog *a);

#endif /* FSD_ALOG_H */
