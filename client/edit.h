/* fsc line editor: the model behind the shell's prompt. It takes the bytes a
 * terminal in raw mode sends, one at a time, keeps the line, the cursor and
 * a history, and renders the prompt line as terminal output. No I/O: the
 * shell writes what fsc_edit_render() produces. */
#ifndef FSC_EDIT_H
#define FSC_EDIT_H

#include <stddef.h>

#define FSC_EDIT_MAX 4096 /* longest line, in bytes */
#define FSC_EDIT_HIST 100 /* lines of history kept */

/* What a key did. */
enum fsc_edit_result {
  FSC_EDIT_NONE = 0, /* nothing visible changed (or a partial sequence) */
  FSC_EDIT_REDRAW,   /* the line changed: render it again */
  FSC_EDIT_LINE,     /* Enter: fsc_edit_take() returns the line */
  FSC_EDIT_EOF,      /* Ctrl-D on an empty line */
  FSC_EDIT_INTR,     /* Ctrl-C: the line was cleared */
  FSC_EDIT_CLEAR,    /* Ctrl-L: clear the screen, then render */
};

struct fsc_edit {
  char buf[FSC_EDIT_MAX + 1];  /* the line being typed, NUL-terminated */
  size_t len;                  /* bytes in buf */
  size_t pos;                  /* cursor, a byte offset into buf */
  char line[FSC_EDIT_MAX + 1]; /* the last accepted line */
  char esc[8];                 /* an escape sequence being received */
  size_t esc_len;              /* bytes in esc; 0 when none */
  char *hist[FSC_EDIT_HIST];   /* accepted lines, oldest first (owned) */
  int nhist;                   /* entries in hist */
  int hist_pos;                /* entry shown while browsing; nhist: none */
};

/* Zero-fills e and prepares it. */
void fsc_edit_init(struct fsc_edit *e);

/* Frees the history. */
void fsc_edit_free(struct fsc_edit *e);

/* Feeds one byte typed at the terminal. */
enum fsc_edit_result fsc_edit_key(struct fsc_edit *e, unsigned char c);

/* After FSC_EDIT_LINE: the accepted line (NUL-terminated, valid until the
 * next call); the editor is empty again and the line is in the history when
 * it is not blank or a repeat of the last one. */
const char *fsc_edit_take(struct fsc_edit *e);

/* Renders the prompt line: carriage return, prompt, the line, erase to the
 * end of the screen line, and the cursor moved back to its place. Wide
 * characters count two columns, combining marks none, and bytes that are not
 * UTF-8 are drawn as '?'. With the terminal's width in columns (0: unknown),
 * a line too long for it scrolls sideways so that the cursor stays in view
 * and nothing wraps. Returns the length snprintf-style (out is
 * NUL-terminated when cap > 0). */
size_t fsc_edit_render(const struct fsc_edit *e, const char *prompt,
                       unsigned width, char *out, size_t cap);

#endif /* FSC_EDIT_H */
