/* The two parts of systemd's service protocol that fsd speaks, written from
 * sd_listen_fds(3) and sd_notify(3) without linking libsystemd:
 *  - socket activation: the service manager opens the listening socket and
 *    passes it as fd 3, with LISTEN_PID (the process meant) and LISTEN_FDS
 *    (how many) in the environment;
 *  - readiness: "READY=1" and friends, sent as one datagram to the AF_UNIX
 *    socket named by NOTIFY_SOCKET.
 * Everything here is usable without systemd and does nothing when the
 * variables are unset. */
#ifndef FSD_SD_H
#define FSD_SD_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The first passed socket; the others follow it without gaps. */
#define FSD_SD_LISTEN_FDS_START 3

/* More passed sockets than this is taken as a malformed LISTEN_FDS. */
#define FSD_SD_LISTEN_FDS_MAX 1024

/* Parses the values of LISTEN_PID and LISTEN_FDS (either may be NULL, as
 * getenv() returns them) for the process whose pid is self. Returns how many
 * sockets were passed to it, from FSD_SD_LISTEN_FDS_START on; 0 when none
 * were (a variable is unset, or LISTEN_PID names another process, which
 * happens when a parent forgot to unset them); or UV_EINVAL when a value is
 * not a plain decimal number in range. */
int fsd_sd_listen_fds(const char *listen_pid, const char *listen_fds,
                      long self);

/* Checks that fd is a listening TCP socket (IPv4 or IPv6), as a socket
 * unit with ListenStream= passes. Returns 0, UV_EBADF (fd is not open),
 * UV_ENOTSOCK, UV_EAFNOSUPPORT (not IPv4 or IPv6), UV_EPROTOTYPE (not a
 * stream socket) or UV_EINVAL (not listening). */
int fsd_sd_check_listener(int fd);

/* Takes the listening socket the service manager passed, if any: reads
 * LISTEN_PID and LISTEN_FDS, checks the socket (fsd_sd_check_listener) and
 * unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, so that nothing started
 * later takes them for its own. Sets *fd to the socket, or to -1 when none
 * was passed (fsd then binds --listen itself). Returns 0, or a negative UV_E*
 * code with a message for the log in err[0..errlen): malformed variables,
 * more than one socket (fsd serves one), or a socket that is not a
 * listening TCP socket. The socket is set close-on-exec. */
int fsd_sd_take_listener(int *fd, char *err, size_t errlen);

/* Turns the value of NOTIFY_SOCKET into an address: an absolute path, or
 * "@name" for a name in the abstract namespace. Fills *sa and *len. Returns
 * 0, or UV_EINVAL for an empty or relative value, UV_ENAMETOOLONG when it
 * does not fit in sun_path. */
int fsd_sd_notify_addr(const char *notify_socket, struct sockaddr_un *sa,
                       socklen_t *len);

/* Sends state (for example "READY=1\nSTATUS=serving 3 files") in one
 * datagram to notify_socket, the value of NOTIFY_SOCKET. Does nothing and
 * returns 0 when notify_socket is NULL (not run by systemd). Never blocks: a
 * full receive queue is an error (UV_EAGAIN), not a wait. Returns 0 or a
 * negative UV_E* code; the caller only logs it, as a service manager that
 * misses a message is no reason to stop serving. */
int fsd_sd_notify(const char *notify_socket, const char *state);

#endif /* FSD_SD_H */
