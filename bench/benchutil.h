/* Helpers shared by fsbench and redis_fanout: fatal errors, HOST:PORT
 * parsing, medians and the open-file limit. */
#ifndef BENCH_BENCHUTIL_H
#define BENCH_BENCHUTIL_H

#include <stdint.h>
#include <sys/socket.h>

/* Sets the program name that bench_fatal() prints first. Static storage. */
void bench_set_prog(const char *prog);

/* Prints "PROG: message" on stderr and exits 1. */
void bench_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Parses HOST:PORT (IPv6 as [ADDR]:PORT) into *out, or calls bench_fatal(). */
void bench_parse_addr(const char *s, struct sockaddr_storage *out);

/* Sorts v[0..n) (n >= 1) and returns its median. */
double bench_median(double *v, int n);

/* Raises the soft open-file limit to the hard one; warns on stderr when the
 * result is still below want + 16 descriptors. */
void bench_raise_nofile(uint32_t want);

#endif
