/* fsc output formatting: sizes, times, terminal-safe and JSON strings, the
 * lines of ls/size/watch, and the progress bar. Pure functions writing into
 * caller buffers (snprintf style: they return the length the full text needs,
 * and the output is always NUL-terminated when cap > 0). */
#ifndef FSC_FMT_H
#define FSC_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "fsproto/fsproto.h"

/* Human-readable size with binary units as `ls -h` prints them: "0", "999",
 * "1.0K", "1.5K", "10K", "1.0M", ... One decimal below 10, none above. */
size_t fsc_fmt_human(char *buf, size_t cap, uint64_t bytes);

/* A size as ls -l/size print it: plain bytes or human. */
size_t fsc_fmt_size(char *buf, size_t cap, uint64_t bytes, int human);

/* mtime_ns as "YYYY-MM-DD HH:MM" in local time (set TZ for UTC). */
size_t fsc_fmt_time(char *buf, size_t cap, int64_t mtime_ns);

/* Copies s[0..len) for display on a terminal: C0 controls, DEL and C1
 * controls become \xNN (C1 as \u0080..\u009f), and bytes that are not
 * well-formed UTF-8 become \xNN too, so no server text can move the cursor,
 * change colours or retitle the terminal. Printable UTF-8 is kept. */
size_t fsc_fmt_escape(char *buf, size_t cap, const char *s, size_t len);

/* Writes s[0..len) as a JSON string literal, quotes included: ", \ and
 * control characters escaped; bytes that are not UTF-8 become U+FFFD. */
size_t fsc_fmt_json_str(char *buf, size_t cap, const char *s, size_t len);

/* One `ls` line (no newline): the escaped name (a path in version 3), a
 * folder's with a trailing '/'; with long_fmt "SIZE  YYYY-MM-DD HH:MM  NAME"
 * with SIZE right-aligned to size_width ("-" for a folder). */
size_t fsc_fmt_ls_line(char *buf, size_t cap, const struct fsp_entry *e,
                       int long_fmt, int human, int size_width);

/* Lays out n strings (already escaped; NULL entries are skipped) in columns
 * for a terminal term columns wide, filled top to bottom like ls, two
 * spaces apart, no trailing blanks. Calls emit once per output line (the
 * line is valid during the call). */
void fsc_fmt_columns(const char *const *items, size_t n, size_t term,
                     void (*emit)(void *arg, const char *line), void *arg);

/* Terminal columns taken by UTF-8 text s: one per character. */
size_t fsc_fmt_width(const char *s);

/* One `ls --json` line: {"name":..,"size":..,"mtime_ns":..}, with
 * "type":"file"|"folder" after the name in version 3. */
size_t fsc_fmt_ls_json(char *buf, size_t cap, const struct fsp_entry *e);

/* The name of an event kind: "added", "replaced", "removed", "renamed" or
 * "unknown". */
const char *fsc_event_kind_name(uint8_t kind);

/* A pushed frame (EVENT, NOTIFY or RESYNC) as one line for `watch` and the
 * shell, without newline: "added NAME (SIZE bytes)", "removed NAME",
 * "notice: TEXT", "resync: some events were missed; list again". Paths
 * are full; a folder's ends with '/'; a rename is "renamed OLD -> NEW".
 * json selects one JSON object instead. Returns 0 for other opcodes (and
 * writes an empty string). */
size_t fsc_fmt_push(char *buf, size_t cap, const struct fsp_msg *m, int json);

/* Progress bar line (no newline) of at most width columns:
 * "LABEL  42% [=====>    ] 420M/1.0G  105M/s  ETA 0:06". total 0 means
 * unknown. rate is bytes per second (0: not known yet). */
size_t fsc_fmt_progress(char *buf, size_t cap, int width, const char *label,
                        uint64_t done, uint64_t total, double rate);

#endif /* FSC_FMT_H */
