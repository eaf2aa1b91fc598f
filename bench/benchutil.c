#include "benchutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

static const char *prog_name = "bench";

void bench_set_prog(const char *prog) {
  prog_name = prog;
}

void bench_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

void bench_parse_addr(const char *s, struct sockaddr_storage *out) {
  char host[256];
  const char *colon = strrchr(s, ':');
  size_t hl;
  long port;
  char *end;
  int r;

  if (colon == NULL)
    bench_fatal("-s wants HOST:PORT");
  hl = (size_t)(colon - s);
  if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
    s++;
    hl -= 2;
  }
  if (hl == 0 || hl >= sizeof(host))
    bench_fatal("bad host in %s", s);
  memcpy(host, s, hl);
  host[hl] = '\0';
  port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535)
    bench_fatal("bad port in %s", s);
  if (strchr(host, ':') != NULL)
    r = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out);
  else
    r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out);
  if (r < 0)
    bench_fatal("bad address %s: %s", host, uv_strerror(r));
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_raise_nofile(uint32_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + 16)
    fprintf(stderr,
            "%s: warning: open-file limit %llu is below %u connections\n",
            prog_name, (unsigned long long)rl.rlim_cur, want);
}
