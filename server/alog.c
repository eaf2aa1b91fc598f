/* The access log. See alog.h.
 *
 * Two buffers: lines are appended to `fill` while `out` is being written by
 * the threadpool; when that write completes, the buffers swap and the next
 * write starts. At most one write is in flight, so lines reach the file in
 * order, and the memory held is bounded by two buffers. */
#include "alog.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fsd_alog {
  uv_loop_t *loop;
  uv_fs_t req; /* the write (or close) in flight */
  uv_file fd;  /* the file, or 1 for standard output */
  int own_fd;  /* close fd at the end (not stdout) */
  int busy;    /* a request is in flight */
  int closing; /* fsd_alog_close() was called */
  char *fill;  /* lines being collected */
  size_t fill_len;
  char *out; /* lines being written */
  size_t out_len;
  size_t out_done;  /* bytes of out already written */
  size_t cap;       /* size of each buffer */
  uint64_t dropped; /* lines lost, in total */
  uint64_t unsaid;  /* lines lost since the last note about it */
};

/* Appends src as a quoted, escaped name. */
static size_t put_name(char *buf, size_t cap, size_t n, const char *s,
                       size_t len) {
  static const char hex[] = "0123456789abcdef";

  if (n < cap)
    buf[n++] = '"';
  for (size_t i = 0; i < len && n + 5 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      buf[n++] = (char)c;
    } else {
      buf[n++] = '\\';
      buf[n++] = 'x';
      buf[n++] = hex[c >> 4];
      buf[n++] = hex[c & 15];
    }
  }
  if (n < cap)
    buf[n++] = '"';
  return n;
}

/* Formats a line (see alog.h). The name goes last but one in the buffer
 * budget: whatever it costs, the fields after it still fit. */
size_t fsd_alog_format(char *buf, size_t cap, const struct fsd_alog_rec *r) {
  char when[40], tail[128];
  time_t secs = (time_t)(r->when_ms / 1000);
  struct tm tm;
  size_t n, tl;
  int w;

  gmtime_r(&secs, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  w = snprintf(tail, sizeof(tail), " %llu %s %llu.%03llums\n",
               (unsigned long long)r->bytes, r->status,
               (unsigned long long)(r->duration_us / 1000),
               (unsigned long long)(r->duration_us % 1000));
  tl = w < 0 ? 0 : (size_t)w < sizeof(tail) ? (size_t)w : sizeof(tail) - 1;
  if (cap < tl + 1)
    return 0;
  w = snprintf(buf, cap - tl, "%s.%03dZ %s %s %s ", when,
               (int)(r->when_ms % 1000), r->peer,
               r->user != NULL && r->user[0] != '\0' ? r->user : "-", r->op);
  n = w < 0 ? 0 : (size_t)w < cap - tl ? (size_t)w : cap - tl - 1;
  if (r->name != NULL)
    n = put_name(buf, cap - tl, n, r->name, r->name_len);
  else if (n + 1 < cap - tl)
    buf[n++] = '-';
  memcpy(buf + n, tail, tl);
  return n + tl;
}

static void start_write(struct fsd_alog *a);

static void free_log(struct fsd_alog *a) {
  free(a->fill);
  free(a->out);
  free(a);
}

static void on_closed(uv_fs_t *req) {
  struct fsd_alog *a = req->data;

  uv_fs_req_cleanup(req);
  free_log(a);
}

/* Nothing in flight (start_write() found nothing it could write): finish a
 * close. */
static void maybe_finish(struct fsd_alog *a) {
  if (!a->closing || a->busy)
    return;
  if (a->own_fd) {
    a->busy = 1;
    a->req.data = a;
    if (uv_fs_close(a->loop, &a->req, a->fd, on_closed) == 0)
      return;
    a->busy = 0;
  }
  free_log(a);
}

static void on_written(uv_fs_t *req) {
  struct fsd_alog *a = req->data;
  ssize_t n = req->result;

  uv_fs_req_cleanup(req);
  a->busy = 0;
  if (n < 0) {
    /* Lost: count the lines rather than retry a failing disk forever. */
    for (size_t i = a->out_done; i < a->out_len; i++)
      if (a->out[i] == '\n') {
        a->unsaid++;
        a->dropped++;
      }
    a->out_len = a->out_done = 0;
  } else {
    a->out_done += (size_t)n;
    if (a->out_done >= a->out_len)
      a->out_len = a->out_done = 0;
  }
  start_write(a);
  maybe_finish(a);
}

/* Starts the next write: the rest of out, or the fill buffer swapped in. */
static void start_write(struct fsd_alog *a) {
  uv_buf_t b;

  if (a->busy)
    return;
  if (a->out_len == 0) {
    char *t;
    if (a->unsaid > 0 && a->cap - a->fill_len > 80) {
      int w = snprintf(a->fill + a->fill_len, a->cap - a->fill_len,
                       "# fsd: %llu access log lines lost (the disk did not "
                       "keep up)\n",
                       (unsigned long long)a->unsaid);
      if (w > 0) {
        a->fill_len += (size_t)w;
        a->unsaid = 0;
      }
    }
    if (a->fill_len == 0)
      return;
    t = a->out;
    a->out = a->fill;
    a->out_len = a->fill_len;
    a->out_done = 0;
    a->fill = t;
    a->fill_len = 0;
  }
  b = uv_buf_init(a->out + a->out_done, (unsigned)(a->out_len - a->out_done));
  a->req.data = a;
  a->busy = 1;
  if (uv_fs_write(a->loop, &a->req, a->fd, &b, 1, -1, on_written) != 0) {
    a->busy = 0;
    a->out_len = a->out_done = 0;
  }
}

/* Opens the log (see alog.h). */
int fsd_alog_open(uv_loop_t *loop, const char *path, size_t bufcap,
                  struct fsd_alog **out, char *err, size_t errlen) {
  struct fsd_alog *a = calloc(1, sizeof(*a));

  if (bufcap == 0)
    bufcap = FSD_ALOG_BUF;
  if (bufcap < FSD_ALOG_LINE_MAX)
    bufcap = FSD_ALOG_LINE_MAX;
  if (a == NULL || (a->fill = malloc(bufcap)) == NULL ||
      (a->out = malloc(bufcap)) == NULL) {
    if (a != NULL)
      free_log(a);
    snprintf(err, errlen, "access log: out of memory");
    return UV_ENOMEM;
  }
  a->loop = loop;
  a->cap = bufcap;
  if (strcmp(path, "-") == 0) {
    a->fd = STDOUT_FILENO;
  } else {
    /* Opened before the loop runs, once; writes go through the pool. */
    int fd =
        open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
      int r = uv_translate_sys_error(errno);
      snprintf(err, errlen, "access log %s: %s", path, uv_strerror(r));
      free_log(a);
      return r;
    }
    a->fd = fd;
    a->own_fd = 1;
  }
  *out = a;
  return 0;
}

/* Logs a request (see alog.h). */
void fsd_alog_write(struct fsd_alog *a, const struct fsd_alog_rec *r) {
  char line[FSD_ALOG_LINE_MAX];
  size_t n;

  if (a == NULL || a->closing)
    return;
  n = fsd_alog_format(line, sizeof(line), r);
  if (a->cap - a->fill_len < n) {
    a->dropped++;
    a->unsaid++;
    return;
  }
  memcpy(a->fill + a->fill_len, line, n);
  a->fill_len += n;
  start_write(a);
}

uint64_t fsd_alog_dropped(const struct fsd_alog *a) {
  return a->dropped;
}

/* Flushes and frees (see alog.h). */
void fsd_alog_close(struct fsd_alog *a) {
  if (a == NULL)
    return;
  a->closing = 1;
  start_write(a);
  maybe_finish(a);
}
