/* fsd logging. Each line is formatted into one buffer and written with a
 * single fputs so that lines from different events never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fsd_log_threshold = FSD_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Parses a --log-level argument. Returns the level or -1 when unknown. */
int fsd_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0)
      return i;
  return -1;
}

/* Formats and writes one log line; see log.h. */
void fsd_log(int level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  int n;

  if (level > fsd_log_threshold || level < 0)
    return;
  n = snprintf(line, sizeof(line), "fsd: %s: ", level_names[level]);
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  strcat(line, "\n");
  fputs(line, stderr);
}
