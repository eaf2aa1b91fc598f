/* fsc line editor. See edit.h. */
#include "edit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fsc_edit_init(struct fsc_edit *e) {
  memset(e, 0, sizeof *e);
}

void fsc_edit_free(struct fsc_edit *e) {
  for (int i = 0; i < e->nhist; i++)
    free(e->hist[i]);
  e->nhist = 0;
}

static int is_cont(char c) {
  return ((unsigned char)c & 0xc0) == 0x80;
}

/* Cursor moves step over whole UTF-8 characters. */
static size_t prev_char(const struct fsc_edit *e, size_t pos) {
  if (pos == 0)
    return 0;
  pos--;
  while (pos > 0 && is_cont(e->buf[pos]))
    pos--;
  return pos;
}

static size_t next_char(const struct fsc_edit *e, size_t pos) {
  if (pos >= e->len)
    return e->len;
  pos++;
  while (pos < e->len && is_cont(e->buf[pos]))
    pos++;
  return pos;
}

static void delete_range(struct fsc_edit *e, size_t from, size_t to) {
  memmove(e->buf + from, e->buf + to, e->len - to);
  e->len -= to - from;
  e->buf[e->len] = '\0';
  if (e->pos > to)
    e->pos -= to - from;
  else if (e->pos > from)
    e->pos = from;
}

static void set_line(struct fsc_edit *e, const char *s) {
  size_t n = strlen(s);
  if (n > FSC_EDIT_MAX)
    n = FSC_EDIT_MAX;
  memcpy(e->buf, s, n);
  e->buf[n] = '\0';
  e->len = e->pos = n;
}

static enum fsc_edit_result history(struct fsc_edit *e, int dir) {
  int to = e->hist_pos + dir;
  if (to < 0 || to > e->nhist)
    return FSC_EDIT_NONE;
  e->hist_pos = to;
  set_line(e, to == e->nhist ? "" : e->hist[to]);
  return FSC_EDIT_REDRAW;
}

/* Acts on a complete escape sequence in e->esc: CSI/SS3 arrows, Home, End,
 * Delete. Unknown sequences are ignored. */
static enum fsc_edit_result escape(struct fsc_edit *e) {
  const char *s = e->esc + 1; /* after ESC */
  char fin = e->esc[e->esc_len - 1];
  e->esc_len = 0;
  if (s[0] != '[' && s[0] != 'O')
    return FSC_EDIT_NONE;
  switch (fin) {
  case 'A':
    return history(e, -1);
  case 'B':
    return history(e, +1);
  case 'C':
    e->pos = next_char(e, e->pos);
    return FSC_EDIT_REDRAW;
  case 'D':
    e->pos = prev_char(e, e->pos);
    return FSC_EDIT_REDRAW;
  case 'H':
    e->pos = 0;
    return FSC_EDIT_REDRAW;
  case 'F':
    e->pos = e->len;
    return FSC_EDIT_REDRAW;
  case '~':
    if (s[1] == '1' || s[1] == '7') {
      e->pos = 0;
      return FSC_EDIT_REDRAW;
    }
    if (s[1] == '4' || s[1] == '8') {
      e->pos = e->len;
      return FSC_EDIT_REDRAW;
    }
    if (s[1] == '3' && e->pos < e->len) {
      delete_range(e, e->pos, next_char(e, e->pos));
      return FSC_EDIT_REDRAW;
    }
    return FSC_EDIT_NONE;
  }
  return FSC_EDIT_NONE;
}

enum fsc_edit_result fsc_edit_key(struct fsc_edit *e, unsigned char c) {
  if (e->esc_len > 0) {
    e->esc[e->esc_len++] = (char)c;
    /* ESC [ params final, or ESC O final: the final byte is 0x40..0x7e
     * (after the introducer). */
    if (e->esc_len == 2) {
      if (c != '[' && c != 'O')
        e->esc_len = 0;
      return FSC_EDIT_NONE;
    }
    if (c >= 0x40 && c <= 0x7e)
      return escape(e);
    if (e->esc_len >= sizeof e->esc - 1)
      e->esc_len = 0;
    return FSC_EDIT_NONE;
  }
  switch (c) {
  case 0x1b:
    e->esc[0] = 0x1b;
    e->esc_len = 1;
    return FSC_EDIT_NONE;
  case '\r':
  case '\n':
    memcpy(e->line, e->buf, e->len + 1);
    return FSC_EDIT_LINE;
  case 0x03: /* Ctrl-C */
    e->len = e->pos = 0;
    e->buf[0] = '\0';
    e->hist_pos = e->nhist;
    return FSC_EDIT_INTR;
  case 0x04: /* Ctrl-D: EOF on an empty line, else delete */
    if (e->len == 0)
      return FSC_EDIT_EOF;
    if (e->pos < e->len)
      delete_range(e, e->pos, next_char(e, e->pos));
    return FSC_EDIT_REDRAW;
  case 0x7f:
  case 0x08: /* Backspace */
    if (e->pos == 0)
      return FSC_EDIT_NONE;
    delete_range(e, prev_char(e, e->pos), e->pos);
    return FSC_EDIT_REDRAW;
  case 0x01: /* Ctrl-A */
    e->pos = 0;
    return FSC_EDIT_REDRAW;
  case 0x05: /* Ctrl-E */
    e->pos = e->len;
    return FSC_EDIT_REDRAW;
  case 0x02: /* Ctrl-B */
    e->pos = prev_char(e, e->pos);
    return FSC_EDIT_REDRAW;
  case 0x06: /* Ctrl-F */
    e->pos = next_char(e, e->pos);
    return FSC_EDIT_REDRAW;
  case 0x0b: /* Ctrl-K */
    delete_range(e, e->pos, e->len);
    return FSC_EDIT_REDRAW;
  case 0x15: /* Ctrl-U */
    delete_range(e, 0, e->pos);
    return FSC_EDIT_REDRAW;
  case 0x17: { /* Ctrl-W: the word before the cursor */
    size_t p = e->pos;
    while (p > 0 && e->buf[p - 1] == ' ')
      p--;
    while (p > 0 && e->buf[p - 1] != ' ')
      p--;
    delete_range(e, p, e->pos);
    return FSC_EDIT_REDRAW;
  }
  case 0x0c: /* Ctrl-L */
    return FSC_EDIT_CLEAR;
  case 0x10: /* Ctrl-P */
    return history(e, -1);
  case 0x0e: /* Ctrl-N */
    return history(e, +1);
  }
  if (c < 0x20 || e->len >= FSC_EDIT_MAX)
    return FSC_EDIT_NONE;
  memmove(e->buf + e->pos + 1, e->buf + e->pos, e->len - e->pos);
  e->buf[e->pos++] = (char)c;
  e->buf[++e->len] = '\0';
  return FSC_EDIT_REDRAW;
}

const char *fsc_edit_take(struct fsc_edit *e) {
  const char *s = e->line;
  while (*s == ' ' || *s == '\t')
    s++;
  if (*s != '\0' &&
      (e->nhist == 0 || strcmp(e->hist[e->nhist - 1], e->line) != 0)) {
    char *copy = strdup(e->line);
    if (copy != NULL) {
      if (e->nhist == FSC_EDIT_HIST) {
        free(e->hist[0]);
        memmove(e->hist, e->hist + 1, sizeof e->hist[0] * (FSC_EDIT_HIST - 1));
        e->nhist--;
      }
      e->hist[e->nhist++] = copy;
    }
  }
  e->hist_pos = e->nhist;
  e->len = e->pos = 0;
  e->buf[0] = '\0';
  return e->line;
}

/* Terminal columns of s[0..n): one per character (wide characters are rare
 * in commands and file names; they would only misplace the cursor). */
static size_t columns(const char *s, size_t n) {
  size_t cols = 0;
  for (size_t i = 0; i < n; i++)
    if (!is_cont(s[i]))
      cols++;
  return cols;
}

size_t fsc_edit_render(const struct fsc_edit *e, const char *prompt, char *out,
                       size_t cap) {
  size_t back = columns(e->buf + e->pos, e->len - e->pos);
  int n;
  if (back > 0)
    n = snprintf(out, cap, "\r%s%s\x1b[K\x1b[%zuD", prompt, e->buf, back);
  else
    n = snprintf(out, cap, "\r%s%s\x1b[K", prompt, e->buf);
  return n < 0 ? 0 : (size_t)n;
}
