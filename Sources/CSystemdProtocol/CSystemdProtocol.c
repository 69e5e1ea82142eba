#define _GNU_SOURCE
#include "CSystemdProtocol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int tb_memfd_create(const char *name, unsigned int flags) {
  return (int)syscall(SYS_memfd_create, name, flags);
}

/* sockaddr_un of a path ("/run/...") or an abstract name ("@name"), as systemd writes them. */
static int unix_address(const char *text, struct sockaddr_un *sa, socklen_t *len) {
  size_t n = strlen(text);
  if (n < 2 || (text[0] != '/' && text[0] != '@')) return -EAFNOSUPPORT;
  if (n >= sizeof(sa->sun_path)) return -EINVAL;
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, text, n);
  if (text[0] == '@') sa->sun_path[0] = 0;
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (text[0] == '/' ? 1 : 0));
  return 0;
}

/* sendmsg of `iov` to `sa`, with `n_fds` descriptors as SCM_RIGHTS. */
static ssize_t send_with_fds(int sock, const struct sockaddr_un *sa, socklen_t sa_len, struct iovec *iov,
                             size_t n_iov, const int *fds, unsigned n_fds) {
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  mh.msg_name = (void *)sa;
  mh.msg_namelen = sa_len;
  mh.msg_iov = iov;
  mh.msg_iovlen = n_iov;
  char *control = NULL;
  if (n_fds > 0) {
    size_t size = CMSG_SPACE(sizeof(int) * n_fds);
    control = calloc(1, size);
    if (!control) return -ENOMEM;
    mh.msg_control = control;
    mh.msg_controllen = size;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
  }
  ssize_t k;
  do {
    k = sendmsg(sock, &mh, MSG_NOSIGNAL);
  } while (k < 0 && errno == EINTR);
  int saved = errno;
  free(control);
  return k < 0 ? -saved : k;
}

int tb_notify(const char *state, const int *fds, unsigned n_fds) {
  const char *address = getenv("NOTIFY_SOCKET");
  if (!address || !*address) return 0;
  struct sockaddr_un sa;
  socklen_t sa_len;
  int r = unix_address(address, &sa, &sa_len);
  if (r < 0) return r;
  int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -errno;
  struct iovec iov = {.iov_base = (void *)state, .iov_len = strlen(state)};
  ssize_t k = send_with_fds(sock, &sa, sa_len, &iov, 1, fds, n_fds);
  close(sock);
  return k < 0 ? (int)k : 1;
}

/* One socket for the process's journal entries, as libsystemd keeps one. */
static int journal_socket(void) {
  static int cached = -1;
  int fd = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
  if (fd >= 0) return fd;
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int size = 8 * 1024 * 1024;
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  int expected = -1;
  if (!__atomic_compare_exchange_n(&cached, &expected, fd, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    close(fd);
    return expected;
  }
  return fd;
}

int tb_journal_sendv(const struct iovec *iov, int n) {
  if (n <= 0) return -EINVAL;
  size_t parts = (size_t)n * 5;
  struct iovec *w = calloc(parts, sizeof(struct iovec));
  uint64_t *lengths = calloc((size_t)n, sizeof(uint64_t));
  if (!w || !lengths) {
    free(w);
    free(lengths);
    return -ENOMEM;
  }
  static char newline[] = "\n";
  size_t j = 0;
  int r = 0;
  for (int i = 0; i < n; i++) {
    const char *base = iov[i].iov_base;
    size_t len = iov[i].iov_len;
    const char *eq = memchr(base, '=', len);
    if (!eq || eq == base) {
      r = -EINVAL;
      goto done;
    }
    const char *nl = memchr(base, '\n', len);
    if (nl) {
      if (nl < eq) {
        r = -EINVAL;
        goto done;
      }
      /* KEY \n little-endian 64-bit length, the value, \n */
      size_t key = (size_t)(eq - base);
      uint64_t value = (uint64_t)(len - key - 1);
      uint8_t *le = (uint8_t *)&lengths[i];
      for (int b = 0; b < 8; b++) le[b] = (uint8_t)(value >> (8 * b));
      w[j++] = (struct iovec){.iov_base = (void *)base, .iov_len = key};
      w[j++] = (struct iovec){.iov_base = newline, .iov_len = 1};
      w[j++] = (struct iovec){.iov_base = &lengths[i], .iov_len = sizeof(uint64_t)};
      w[j++] = (struct iovec){.iov_base = (void *)(eq + 1), .iov_len = (size_t)value};
    } else {
      w[j++] = iov[i];
    }
    w[j++] = (struct iovec){.iov_base = newline, .iov_len = 1};
  }
  int sock = journal_socket();
  if (sock < 0) {
    r = sock;
    goto done;
  }
  struct sockaddr_un sa;
  socklen_t sa_len;
  unix_address("/run/systemd/journal/socket", &sa, &sa_len);
  ssize_t k = send_with_fds(sock, &sa, sa_len, w, j, NULL, 0);
  if (k >= 0) {
    r = 0;
    goto done;
  }
  if (k != -EMSGSIZE && k != -ENOBUFS && k != -EAGAIN) {
    r = (int)k;
    goto done;
  }
  /* Too large for a datagram: the entry goes in a sealed memfd, passed alone. */
  int memfd = tb_memfd_create("journal-entry", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0) {
    r = -errno;
    goto done;
  }
  ssize_t written = 0;
  for (size_t i = 0; i < j && written >= 0; i++) {
    const char *p = w[i].iov_base;
    size_t left = w[i].iov_len;
    while (left > 0) {
      ssize_t m = write(memfd, p, left);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) {
        written = -1;
        break;
      }
      p += m;
      left -= (size_t)m;
    }
  }
  if (written < 0 || fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    r = -errno;
    close(memfd);
    goto done;
  }
  k = send_with_fds(sock, &sa, sa_len, NULL, 0, &memfd, 1);
  close(memfd);
  r = k < 0 ? (int)k : 0;
done:
  free(w);
  free(lengths);
  return r;
}

static int parse_positive(const char *text, long *out) {
  if (!text || !*text) return -EINVAL;
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || *end != 0 || v < 0) return -EINVAL;
  *out = v;
  return 0;
}

int tb_listen_fds(void) {
  const char *pid_text = getenv("LISTEN_PID");
  if (!pid_text) return 0;
  long pid, n;
  if (parse_positive(pid_text, &pid) < 0) return -EINVAL;
  if (pid != (long)getpid()) return 0;
  const char *count = getenv("LISTEN_FDS");
  if (!count) return 0; /* as sd_listen_fds: no descriptors passed */
  if (parse_positive(count, &n) < 0) return -EINVAL;
  if (n > INT_MAX - 3) return -EINVAL;
  for (long fd = 3; fd < 3 + n; fd++) {
    int flags = fcntl((int)fd, F_GETFD);
    if (flags < 0) return -errno;
    if (!(flags & FD_CLOEXEC) && fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC) < 0) return -errno;
  }
  return (int)n;
}

int tb_is_listening_unix_stream(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if (!S_ISSOCK(st.st_mode)) return 0;
  int type = 0, listening = 0;
  socklen_t l = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0) return -errno;
  if (type != SOCK_STREAM) return 0;
  l = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) < 0) return -errno;
  if (!listening) return 0;
  struct sockaddr_storage ss;
  l = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0) return -errno;
  return ss.ss_family == AF_UNIX ? 1 : 0;
}
