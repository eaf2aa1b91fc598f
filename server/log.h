/* fsd logging: one line per event to stderr, filtered by level. */
#ifndef FSD_LOG_H
#define FSD_LOG_H

enum fsd_log_level {
  FSD_LOG_ERROR = 0,
  FSD_LOG_WARN = 1,
  FSD_LOG_INFO = 2,
  FSD_LOG_DEBUG = 3
};

/* The current threshold; messages above it are dropped. Default INFO. */
extern int fsd_log_threshold;

/* Parses "error", "warn", "info" or "debug". Returns the level or -1. */
int fsd_log_parse_level(const char *s);

/* Writes one line "fsd: <level>: <message>" to stderr when level passes the
 * threshold. The message must not end with a newline. */
void fsd_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define fsd_error(...) fsd_log(FSD_LOG_ERROR, __VA_ARGS__)
#define fsd_warn(...) fsd_log(FSD_LOG_WARN, __VA_ARGS__)
#define fsd_info(...) fsd_log(FSD_LOG_INFO, __VA_ARGS__)
#define fsd_debug(...) fsd_log(FSD_LOG_DEBUG, __VA_ARGS__)

#endif /* FSD_LOG_H */
