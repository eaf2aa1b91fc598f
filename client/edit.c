/* fsc line editor. See edit.h. */
#include "edit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void fsc_edit_init(struct fsc_edit *e) {
  memset(e, 0, sizeof *e);
}

void fsc_edit_free(struct fsc_edit *e) {
  for (int i = 0; i < e->nhist; i++)
    fsc_free(e->hist[i]);
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
    char *copy = fsc_strdup(e->line);
    if (copy != NULL) {
      if (e->nhist == FSC_EDIT_HIST) {
        fsc_free(e->hist[0]);
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

/* Display width of a code point: 0 for combining marks and zero-width
 * characters, 2 for East Asian wide and fullwidth ones (ranges from Unicode's
 * EastAsianWidth.txt, W and F, grouped), 1 for the rest. */
struct range {
  unsigned lo, hi;
};

static const struct range zero_width[] = {
    {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x0610, 0x061a},
    {0x064b, 0x065f}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x200b, 0x200f},
    {0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f}, {0xe0100, 0xe01ef},
};

static const struct range wide[] = {
    {0x1100, 0x115f},   {0x231a, 0x231b},   {0x2329, 0x232a},
    {0x23e9, 0x23ec},   {0x23f0, 0x23f0},   {0x23f3, 0x23f3},
    {0x25fd, 0x25fe},   {0x2614, 0x2615},   {0x2648, 0x2653},
    {0x267f, 0x267f},   {0x2693, 0x2693},   {0x26a1, 0x26a1},
    {0x26aa, 0x26ab},   {0x26bd, 0x26be},   {0x26c4, 0x26c5},
    {0x26ce, 0x26ce},   {0x26d4, 0x26d4},   {0x26ea, 0x26ea},
    {0x26f2, 0x26f3},   {0x26f5, 0x26f5},   {0x26fa, 0x26fa},
    {0x26fd, 0x26fd},   {0x2705, 0x2705},   {0x270a, 0x270b},
    {0x2728, 0x2728},   {0x274c, 0x274c},   {0x274e, 0x274e},
    {0x2753, 0x2755},   {0x2757, 0x2757},   {0x2795, 0x2797},
    {0x27b0, 0x27b0},   {0x27bf, 0x27bf},   {0x2b1b, 0x2b1c},
    {0x2b50, 0x2b50},   {0x2b55, 0x2b55},   {0x2e80, 0x303e},
    {0x3041, 0x33ff},   {0x3400, 0x4dbf},   {0x4e00, 0x9fff},
    {0xa000, 0xa4cf},   {0xa960, 0xa97f},   {0xac00, 0xd7a3},
    {0xf900, 0xfaff},   {0xfe10, 0xfe19},   {0xfe30, 0xfe6f},
    {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x16fe0, 0x16fe4},
    {0x17000, 0x18aff}, {0x1b000, 0x1b2ff}, {0x1f004, 0x1f004},
    {0x1f0cf, 0x1f0cf}, {0x1f18e, 0x1f18e}, {0x1f191, 0x1f19a},
    {0x1f200, 0x1f251}, {0x1f300, 0x1f64f}, {0x1f680, 0x1f6ff},
    {0x1f900, 0x1f9ff}, {0x1fa70, 0x1faff}, {0x20000, 0x2fffd},
    {0x30000, 0x3fffd},
};

static int in_ranges(unsigned cp, const struct range *r, size_t n) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < r[mid].lo)
      hi = mid;
    else if (cp > r[mid].hi)
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

static int cp_width(unsigned cp) {
  if (in_ranges(cp, zero_width, sizeof zero_width / sizeof zero_width[0]))
    return 0;
  if (in_ranges(cp, wide, sizeof wide / sizeof wide[0]))
    return 2;
  return 1;
}

/* Decodes the character at s[0..n): its length in bytes, and its code point
 * in *cp, or -1 in *cp for a byte that does not start valid UTF-8 (which is
 * then one byte long). */
static size_t decode(const char *s, size_t n, long *cp) {
  const unsigned char *u = (const unsigned char *)s;
  size_t len;
  unsigned v, min;
  if (u[0] < 0x80) {
    *cp = u[0];
    return 1;
  }
  if (u[0] >= 0xc2 && u[0] <= 0xdf)
    len = 2, v = u[0] & 0x1f, min = 0x80;
  else if (u[0] >= 0xe0 && u[0] <= 0xef)
    len = 3, v = u[0] & 0x0f, min = 0x800;
  else if (u[0] >= 0xf0 && u[0] <= 0xf4)
    len = 4, v = u[0] & 0x07, min = 0x10000;
  else
    len = 0, v = 0, min = 0;
  if (len == 0 || len > n) {
    *cp = -1;
    return 1;
  }
  for (size_t i = 1; i < len; i++) {
    if (!is_cont(s[i])) {
      *cp = -1;
      return 1;
    }
    v = (v << 6) | (u[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
    *cp = -1;
    return 1;
  }
  *cp = v;
  return len;
}

/* Terminal columns of s[0..n) as render() draws it. */
static size_t columns(const char *s, size_t n) {
  size_t cols = 0;
  long cp;
  for (size_t i = 0; i < n;) {
    i += decode(s + i, n - i, &cp);
    cols += cp < 0 ? 1 : (size_t)cp_width((unsigned)cp);
  }
  return cols;
}

/* Appends s[0..n) to out, with '?' for bytes that are not UTF-8. */
static size_t draw(const char *s, size_t n, char *out, size_t cap, size_t at) {
  long cp;
  for (size_t i = 0; i < n;) {
    size_t len = decode(s + i, n - i, &cp);
    for (size_t k = 0; k < len; k++, at++)
      if (at < cap)
        out[at] = cp < 0 ? '?' : s[i + k];
    i += len;
  }
  return at;
}

static size_t put(const char *s, char *out, size_t cap, size_t at) {
  for (; *s; s++, at++)
    if (at < cap)
      out[at] = *s;
  return at;
}

size_t fsc_edit_render(const struct fsc_edit *e, const char *prompt,
                       unsigned width, char *out, size_t cap) {
  size_t from = 0, to = e->len;
  size_t prompt_cols = columns(prompt, strlen(prompt));
  /* Leave the last column free so the terminal never wraps; below a few
   * columns of room, scrolling would only confuse: draw it all. */
  if (width > prompt_cols + 9) {
    size_t room = width - prompt_cols - 1;
    while (columns(e->buf + from, e->pos - from) > room)
      from = next_char(e, from);
    to = from;
    while (to < e->len &&
           columns(e->buf + from, next_char(e, to) - from) <= room)
      to = next_char(e, to);
  }
  size_t back = columns(e->buf + e->pos, to - e->pos);
  char move[32] = "";
  if (back > 0)
    snprintf(move, sizeof move, "\x1b[%zuD", back);
  size_t at = put("\r", out, cap, 0);
  at = put(prompt, out, cap, at);
  at = draw(e->buf + from, to - from, out, cap, at);
  at = put("\x1b[K", out, cap, at);
  at = put(move, out, cap, at);
  if (cap > 0)
    out[at < cap ? at : cap - 1] = '\0';
  return at;
}
