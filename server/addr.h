/* Socket addresses as fsd reads them from the command line and writes them
 * in its log. */
#ifndef FSD_ADDR_H
#define FSD_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Room for "[IPv6 literal]:port" with its NUL: INET6_ADDRSTRLEN (46) plus
 * the brackets, the colon and five digits. */
#define FSD_ADDR_STRLEN 56u

/* Parses "HOST:PORT" where HOST is an IPv4 literal, "[IPv6 literal]" or
 * "localhost", and PORT is 0..65535. Returns 0 or UV_EINVAL. */
int fsd_parse_listen(const char *s, struct sockaddr_storage *out);

/* Writes sa as "a.b.c.d:port" or "[v6]:port" (the form fsd_parse_listen
 * reads) to out, which has len bytes (FSD_ADDR_STRLEN is enough); "?:0"
 * for a family it does not know. Returns out. */
char *fsd_addr_format(const struct sockaddr_storage *sa, char *out, size_t len);

#endif /* FSD_ADDR_H */
