#ifndef TOKEN_BROKER_CSYSTEMD_PROTOCOL_H
#define TOKEN_BROKER_CSYSTEMD_PROTOCOL_H

#include <stddef.h>
#include <sys/uio.h>

/* The service manager's protocols, spoken directly (README "Architecture": no libsystemd):
   what sd_pid_notify_with_fds(3), sd_journal_sendv(3), sd_listen_fds(3) and
   sd_is_socket_unix(3) do, with the same results, for the daemon's few uses. Kept in C for the
   ancillary data (SCM_RIGHTS) that Swift cannot build with the CMSG macros. */

/* memfd_create(2) through syscall(2) (its libc declaration needs _GNU_SOURCE). */
int tb_memfd_create(const char *name, unsigned int flags);

/* Sends `state` (newline-separated KEY=VALUE) to $NOTIFY_SOCKET, with `n_fds` descriptors.
   >0 sent, 0 when $NOTIFY_SOCKET is not set, -errno on failure. */
int tb_notify(const char *state, const int *fds, unsigned n_fds);

/* One journal entry of `n` KEY=VALUE fields to /run/systemd/journal/socket (the native
   protocol; a value with a newline goes length-prefixed; an entry too large for a datagram
   goes in a sealed memfd). 0 sent, -errno on failure (-ENOENT when no journald listens). */
int tb_journal_sendv(const struct iovec *iov, int n);

/* $LISTEN_FDS when $LISTEN_PID is this process (FD_CLOEXEC set on each), 0 when not socket
   activated, -EINVAL when the variables are malformed. */
int tb_listen_fds(void);

/* 1 when fd is a listening AF_UNIX SOCK_STREAM socket, 0 when not, -errno on failure. */
int tb_is_listening_unix_stream(int fd);

#endif
