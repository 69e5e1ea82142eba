// udsload: token-broker's load generator for `token-broker-bench serve` and `oneshot`
// (README "Performance"). HTTP/1.1 GET requests over a Unix domain socket: each of -c
// threads holds one keep-alive connection and sends requests back to back for -d seconds;
// with -1 each request opens a connection of its own (as `curl --unix-socket` does) and its
// latency includes the connect. Prints one line the bench parses:
//   requests=N rps=N p50_us=N p99_us=N p999_us=N max_us=N errors=N non200=N conns=N
// Exits 1 when a request failed or was not answered 200.
//
// Not compiled by SwiftPM (Package.swift excludes it): the bench compiles it at run time with
//   cc -O2 -pthread -o udsload udsload.c
// into a temporary directory.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path, *req_path = "/";
static double duration = 5;
static int conns = 8, oneshot = 0;

typedef struct {
  long n, errors, non200, cap;
  double *lat;
} stats;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int dial(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, sock_path, sizeof a.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads one response (head, then Content-Length bytes of body); its status, or -1.
static int read_response(int fd, char *buf, size_t cap) {
  size_t have = 0;
  char *head_end = NULL;
  while (!head_end) {
    ssize_t r = read(fd, buf + have, cap - have - 1);
    if (r <= 0) return -1;
    have += (size_t)r;
    buf[have] = 0;
    head_end = strstr(buf, "\r\n\r\n");
    if (have >= cap - 1 && !head_end) return -1;
  }
  int status = atoi(buf + 9);
  long length = 0;
  char *p = strcasestr(buf, "\r\ncontent-length:");
  if (p) length = atol(p + 17);
  long body = (long)(have - (size_t)(head_end + 4 - buf));
  while (body < length) {
    ssize_t r = read(fd, buf, cap - 1);
    if (r <= 0) return -1;
    body += r;
  }
  return status;
}

static void *worker(void *arg) {
  stats *s = arg;
  char req[1024], buf[65536];
  int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", req_path,
                     oneshot ? "Connection: close\r\n" : "");
  int fd = oneshot ? -1 : dial();
  double end = now() + duration;
  while (now() < end) {
    double t0 = now();
    if (oneshot) {
      fd = dial();
      if (fd < 0) { s->errors++; usleep(1000); continue; }
    } else if (fd < 0) {
      s->errors++;
      fd = dial();
      if (fd < 0) { usleep(1000); continue; }
      t0 = now();
    }
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) { s->errors++; close(fd); fd = -1; continue; }
    int status = read_response(fd, buf, sizeof buf);
    if (status < 0) { s->errors++; close(fd); fd = -1; continue; }
    if (status != 200) s->non200++;
    if (s->n == s->cap) {
      s->cap *= 2;
      s->lat = realloc(s->lat, (size_t)s->cap * sizeof(double));
    }
    s->lat[s->n++] = now() - t0;
    if (oneshot) { close(fd); fd = -1; }
  }
  if (fd >= 0) close(fd);
  return NULL;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int o;
  signal(SIGPIPE, SIG_IGN);
  while ((o = getopt(argc, argv, "s:p:c:d:1")) != -1) switch (o) {
      case 's': sock_path = optarg; break;
      case 'p': req_path = optarg; break;
      case 'c': conns = atoi(optarg); break;
      case 'd': duration = atof(optarg); break;
      case '1': oneshot = 1; break;
      default: fprintf(stderr, "usage: udsload -s SOCKET [-p PATH] [-c CONNS] [-d SECONDS] [-1]\n"); return 2;
    }
  if (!sock_path || conns < 1) {
    fprintf(stderr, "udsload: -s SOCKET is required, and -c at least 1\n");
    return 2;
  }
  pthread_t *threads = calloc((size_t)conns, sizeof *threads);
  stats *st = calloc((size_t)conns, sizeof *st);
  double t0 = now();
  for (int i = 0; i < conns; i++) {
    st[i].cap = 1 << 16;
    st[i].lat = malloc((size_t)st[i].cap * sizeof(double));
    pthread_create(&threads[i], NULL, worker, &st[i]);
  }
  long n = 0, errors = 0, non200 = 0;
  for (int i = 0; i < conns; i++) {
    pthread_join(threads[i], NULL);
    n += st[i].n;
    errors += st[i].errors;
    non200 += st[i].non200;
  }
  double wall = now() - t0;
  double *all = malloc((size_t)(n ? n : 1) * sizeof(double));
  long k = 0;
  for (int i = 0; i < conns; i++) {
    memcpy(all + k, st[i].lat, (size_t)st[i].n * sizeof(double));
    k += st[i].n;
  }
  qsort(all, (size_t)n, sizeof(double), compare);
#define PCT(q) (n ? all[(long)((q) * (n - 1))] * 1e6 : 0)
  printf("requests=%ld rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%ld non200=%ld conns=%d\n",
         n, n / wall, PCT(0.5), PCT(0.99), PCT(0.999), PCT(1.0), errors, non200, conns);
  return errors || non200 ? 1 : 0;
}
