/* fsc output formatting. See fmt.h. */
#include "fmt.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* An output cursor that counts what the full text needs even when the buffer
 * is too small, like snprintf. */
struct out {
  char *buf;
  size_t cap;
  size_t len;
};

static void put_bytes(struct out *o, const char *s, size_t n) {
  if (o->len < o->cap) {
    size_t room = o->cap - o->len - 1;
    memcpy(o->buf + o->len, s, n < room ? n : room);
  }
  o->len += n;
}

static void put_str(struct out *o, const char *s) {
  put_bytes(o, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
put_fmt(struct out *o, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    put_bytes(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static size_t finish(struct out *o) {
  if (o->cap > 0)
    o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
  return o->len;
}

size_t fsc_fmt_human(char *buf, size_t cap, uint64_t bytes) {
  static const char units[] = "KMGTPE";
  struct out o = {buf, cap, 0};
  if (bytes < 1024) {
    put_fmt(&o, "%" PRIu64, bytes);
    return finish(&o);
  }
  double v = (double)bytes;
  int u = -1;
  do {
    v /= 1024.0;
    u++;
  } while (v >= 1024.0 && u < 5);
  /* Round up like ls -h does, so a size is never shown smaller than it is. */
  if (v < 10.0) {
    double r = (double)(uint64_t)(v * 10.0);
    if (r < v * 10.0)
      r += 1.0;
    if (r >= 100.0)
      put_fmt(&o, "%d%c", 10, units[u]);
    else
      put_fmt(&o, "%.1f%c", r / 10.0, units[u]);
  } else {
    uint64_t r = (uint64_t)v;
    if ((double)r < v)
      r++;
    if (r >= 1024 && u < 5)
      put_fmt(&o, "1.0%c", units[u + 1]);
    else
      put_fmt(&o, "%" PRIu64 "%c", r, units[u]);
  }
  return finish(&o);
}

size_t fsc_fmt_size(char *buf, size_t cap, uint64_t bytes, int human) {
  if (human)
    return fsc_fmt_human(buf, cap, bytes);
  struct out o = {buf, cap, 0};
  put_fmt(&o, "%" PRIu64, bytes);
  return finish(&o);
}

size_t fsc_fmt_time(char *buf, size_t cap, int64_t mtime_ns) {
  struct out o = {buf, cap, 0};
  /* Floor division, so times before 1970 land in the right second. */
  int64_t sec = mtime_ns / 1000000000;
  if (mtime_ns % 1000000000 < 0)
    sec--;
  time_t t = (time_t)sec;
  struct tm tm;
  char tmp[64];
  if (localtime_r(&t, &tm) == NULL ||
      strftime(tmp, sizeof tmp, "%Y-%m-%d %H:%M", &tm) == 0)
    put_str(&o, "-");
  else
    put_str(&o, tmp);
  return finish(&o);
}

/* Length of the well-formed UTF-8 sequence at s[0..len) (1..4), or 0 when
 * the bytes there are not one. */
static size_t utf8_seq(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  size_t n;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else
    return 0;
  if (len < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

size_t fsc_fmt_escape(char *buf, size_t cap, const char *s, size_t len) {
  struct out o = {buf, cap, 0};
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    size_t n = utf8_seq(p + i, len - i);
    if (n == 0 || p[i] < 0x20 || p[i] == 0x7f) {
      put_fmt(&o, "\\x%02x", p[i]);
      i++;
    } else if (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) {
      /* C1 controls (U+0080..U+009F) include CSI, which terminals obey. */
      put_fmt(&o, "\\u%04x", p[i + 1]);
      i += 2;
    } else {
      put_bytes(&o, s + i, n);
      i += n;
    }
  }
  return finish(&o);
}

size_t fsc_fmt_json_str(char *buf, size_t cap, const char *s, size_t len) {
  struct out o = {buf, cap, 0};
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  put_bytes(&o, "\"", 1);
  while (i < len) {
    size_t n = utf8_seq(p + i, len - i);
    if (n == 0) {
      put_str(&o, "\\ufffd");
      i++;
    } else if (p[i] == '"' || p[i] == '\\') {
      put_bytes(&o, "\\", 1);
      put_bytes(&o, s + i, 1);
      i++;
    } else if (p[i] == '\n') {
      put_str(&o, "\\n");
      i++;
    } else if (p[i] == '\t') {
      put_str(&o, "\\t");
      i++;
    } else if (p[i] == '\r') {
      put_str(&o, "\\r");
      i++;
    } else if (p[i] < 0x20 || p[i] == 0x7f) {
      put_fmt(&o, "\\u%04x", p[i]);
      i++;
    } else {
      put_bytes(&o, s + i, n);
      i += n;
    }
  }
  put_bytes(&o, "\"", 1);
  return finish(&o);
}

/* Appends the escaped form of a name or text. */
static void put_escaped(struct out *o, const struct fsp_str *s) {
  char tmp[4 * FSP_PATH_MAX + 1];
  size_t n = fsc_fmt_escape(tmp, sizeof tmp, s->ptr, s->len);
  if (n < sizeof tmp) {
    put_bytes(o, tmp, n);
    return;
  }
  /* Long texts (notices): escape piece by piece. Pieces end on character
   * boundaries only by luck, so cut at ASCII bytes, which start a
   * character in UTF-8. */
  size_t i = 0;
  while (i < s->len) {
    size_t end = i + 64 < s->len ? i + 64 : s->len;
    while (end < s->len && ((unsigned char)s->ptr[end] & 0xc0) == 0x80)
      end++;
    fsc_fmt_escape(tmp, sizeof tmp, s->ptr + i, end - i);
    put_str(o, tmp);
    i = end;
  }
}

static void put_json_str(struct out *o, const struct fsp_str *s) {
  size_t i = 0;
  char tmp[6 * 64 + 8];
  put_bytes(o, "\"", 1);
  while (i < s->len) {
    size_t end = i + 64 < s->len ? i + 64 : s->len;
    while (end < s->len && ((unsigned char)s->ptr[end] & 0xc0) == 0x80)
      end++;
    size_t n = fsc_fmt_json_str(tmp, sizeof tmp, s->ptr + i, end - i);
    /* Drop the quotes of the piece. */
    if (n >= 2 && n < sizeof tmp)
      put_bytes(o, tmp + 1, n - 2);
    i = end;
  }
  put_bytes(o, "\"", 1);
}

size_t fsc_fmt_ls_line(char *buf, size_t cap, const struct fsp_entry *e,
                       int long_fmt, int human, int size_width) {
  struct out o = {buf, cap, 0};
  if (long_fmt) {
    char sz[32], tm[64];
    fsc_fmt_size(sz, sizeof sz, e->size, human);
    fsc_fmt_time(tm, sizeof tm, e->mtime_ns);
    /* A folder's size is no size (protocol.md section 12 sends 0). */
    put_fmt(&o, "%*s  %s  ", size_width, e->type == FSP_TYPE_FOLDER ? "-" : sz,
            tm);
  }
  put_escaped(&o, &e->name);
  if (e->type == FSP_TYPE_FOLDER)
    put_str(&o, "/");
  return finish(&o);
}

size_t fsc_fmt_ls_json(char *buf, size_t cap, const struct fsp_entry *e) {
  struct out o = {buf, cap, 0};
  put_str(&o, "{\"name\":");
  put_json_str(&o, &e->name);
  if (e->type != 0)
    put_fmt(&o, ",\"type\":\"%s\"",
            e->type == FSP_TYPE_FOLDER ? "folder" : "file");
  put_fmt(&o, ",\"size\":%" PRIu64 ",\"mtime_ns\":%" PRId64 "}", e->size,
          e->mtime_ns);
  return finish(&o);
}

size_t fsc_fmt_width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80)
      w++;
  return w;
}

void fsc_fmt_columns(const char *const *items, size_t n, size_t term,
                     void (*emit)(void *arg, const char *line), void *arg) {
  size_t maxw = 1;
  for (size_t i = 0; i < n; i++)
    if (items[i] != NULL && fsc_fmt_width(items[i]) > maxw)
      maxw = fsc_fmt_width(items[i]);
  if (n == 0)
    return;
  size_t cols = term / (maxw + 2);
  if (cols < 1)
    cols = 1;
  size_t rows = (n + cols - 1) / cols;
  cols = (n + rows - 1) / rows; /* no empty columns at the right */
  char line[4096];
  for (size_t row = 0; row < rows; row++) {
    struct out o = {line, sizeof line, 0};
    for (size_t col = 0; col < cols; col++) {
      size_t i = col * rows + row;
      if (i >= n || items[i] == NULL)
        continue;
      put_str(&o, items[i]);
      int last = col + 1 == cols || (col + 1) * rows + row >= n;
      if (!last)
        for (size_t pad = fsc_fmt_width(items[i]); pad < maxw + 2; pad++)
          put_bytes(&o, " ", 1);
    }
    finish(&o);
    emit(arg, line);
  }
}

const char *fsc_event_kind_name(uint8_t kind) {
  switch (kind) {
  case FSP_EV_ADDED:
    return "added";
  case FSP_EV_REPLACED:
    return "replaced";
  case FSP_EV_REMOVED:
    return "removed";
  case FSP_EV_RENAMED:
    return "renamed";
  }
  return "unknown";
}

size_t fsc_fmt_push(char *buf, size_t cap, const struct fsp_msg *m, int json) {
  struct out o = {buf, cap, 0};
  int folder = m->op == FSP_OP_EVENT && m->u.event.file.type == FSP_TYPE_FOLDER;
  switch (m->op) {
  case FSP_OP_EVENT:
    if (json) {
      put_fmt(&o,
              "{\"type\":\"event\",\"seq\":%" PRIu64 ",\"kind\":\"%s\","
              "\"name\":",
              m->u.event.seq, fsc_event_kind_name(m->u.event.kind));
      put_json_str(&o, &m->u.event.file.name);
      if (m->u.event.kind == FSP_EV_RENAMED) {
        put_str(&o, ",\"from\":");
        put_json_str(&o, &m->u.event.from);
      }
      if (m->u.event.file.type != 0)
        put_fmt(&o, ",\"entry\":\"%s\"", folder ? "folder" : "file");
      put_fmt(&o, ",\"size\":%" PRIu64 ",\"mtime_ns\":%" PRId64 "}",
              m->u.event.file.size, m->u.event.file.mtime_ns);
    } else {
      /* Full paths; a folder ends with '/'; a rename shows both paths. */
      put_str(&o, fsc_event_kind_name(m->u.event.kind));
      put_str(&o, " ");
      if (m->u.event.kind == FSP_EV_RENAMED) {
        put_escaped(&o, &m->u.event.from);
        put_str(&o, folder ? "/ -> " : " -> ");
      }
      put_escaped(&o, &m->u.event.file.name);
      if (folder)
        put_str(&o, "/");
      else if (m->u.event.kind != FSP_EV_REMOVED &&
               m->u.event.kind != FSP_EV_RENAMED)
        put_fmt(&o, " (%" PRIu64 " bytes)", m->u.event.file.size);
    }
    break;
  case FSP_OP_NOTIFY:
    if (json) {
      put_str(&o, "{\"type\":\"notice\",\"text\":");
      put_json_str(&o, &m->u.text);
      put_str(&o, "}");
    } else {
      put_str(&o, "notice: ");
      put_escaped(&o, &m->u.text);
    }
    break;
  case FSP_OP_RESYNC:
    if (json)
      put_fmt(&o,
              "{\"type\":\"resync\",\"epoch\":%" PRIu64 ",\"seq\":%" PRIu64 "}",
              m->u.sub.epoch, m->u.sub.seq);
    else
      put_str(&o, "resync: some events were missed; list again");
    break;
  default:
    break;
  }
  return finish(&o);
}

/* Seconds as "M:SS" or "H:MM:SS". */
static void put_duration(struct out *o, double secs) {
  uint64_t s = secs < 0 ? 0 : (uint64_t)(secs + 0.5);
  if (s >= 3600)
    put_fmt(o, "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
            (unsigned)(s % 60));
  else
    put_fmt(o, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

size_t fsc_fmt_progress(char *buf, size_t cap, int width, const char *label,
                        uint64_t done, uint64_t total, double rate) {
  struct out tail = {NULL, 0, 0};
  char tbuf[128], d[32], t[32], r[32];
  tail.buf = tbuf;
  tail.cap = sizeof tbuf;
  fsc_fmt_human(d, sizeof d, done);
  if (total > 0) {
    fsc_fmt_human(t, sizeof t, total);
    put_fmt(&tail, " %s/%s", d, t);
  } else
    put_fmt(&tail, " %s", d);
  if (rate > 0) {
    fsc_fmt_human(r, sizeof r, (uint64_t)rate);
    put_fmt(&tail, "  %s/s", r);
    if (total > done) {
      put_str(&tail, "  ETA ");
      put_duration(&tail, (double)(total - done) / rate);
    }
  }
  finish(&tail);

  struct out o = {buf, cap, 0};
  int pct = total > 0 ? (int)(done >= total ? 100 : done * 100 / total) : -1;
  char pbuf[16] = "";
  if (pct >= 0)
    snprintf(pbuf, sizeof pbuf, " %3d%%", pct);
  /* The bar takes what is left after the label, the percentage and the
   * tail; the label is cut first when the terminal is narrow. */
  int fixed = (int)strlen(pbuf) + (int)strlen(tbuf) + 3;
  int lab = (int)strlen(label);
  if (lab > 24)
    lab = 24;
  if (lab + fixed + 10 > width)
    lab = width - fixed - 10 > 0 ? width - fixed - 10 : 0;
  int bar = width - lab - fixed;
  if (bar > 40)
    bar = 40;
  put_bytes(&o, label, (size_t)lab);
  put_str(&o, pbuf);
  if (bar >= 5 && pct >= 0) {
    int fill = bar * pct / 100;
    put_str(&o, " [");
    for (int i = 0; i < bar; i++)
      put_bytes(&o, i < fill ? "=" : (i == fill ? ">" : " "), 1);
    put_str(&o, "]");
  }
  put_str(&o, tbuf);
  return finish(&o);
}
