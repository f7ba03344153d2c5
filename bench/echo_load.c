/* echo_load: closed-loop TCP echo load generator (one thread, epoll), and an
 * idle-connection memory probe. Built by bench/run; nothing compiled is committed.
 *
 * Load:   echo_load [-c CONNS] [-s SIZE] [-w WARMUP_S] [-d DURATION_S] [-p PID] [HOST:]PORT
 *   Each connection writes SIZE bytes, reads exactly SIZE bytes back (checked
 *   against what it sent), records the round trip's latency, and starts again.
 *   Only round trips that end inside the measured window (after the warm-up)
 *   count. MB/s is echoed payload per second (one direction, 10^6 bytes).
 *   With -p, also the CPU time the server process PID (all its threads, not
 *   its children) used in the measured window: server_cpu_pct (100 = one
 *   core) and server_us_per_rt; client_cpu_pct is this program's own.
 *
 * Memory: echo_load -m PID [-c CONNS] [-s SIZE] [-t SETTLE_S] [HOST:]PORT
 *   Reads VmRSS of PID, opens CONNS connections that each do one round trip
 *   and then sit idle, waits SETTLE_S, reads VmRSS again, closes them, waits
 *   SETTLE_S, reads VmRSS a third time.
 *
 * Output: one line of key=value pairs on stdout; exit 1 on any error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  size_t sent, got;
  uint64_t start;
  int want_out;
};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "echo_load: %s: %s\n", what, errno ? strerror(errno) : "failed");
  exit(1);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return (double)v[i] / 1000.0;
}

static long vm_rss_kib(int pid) {
  char path[64], line[256];
  long kib = -1;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) die(path);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* utime + stime of a whole process, in seconds (fields 14 and 15 of /proc/PID/stat). */
static double cpu_seconds(int pid) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) die(path);
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  char *p = strrchr(text, ')'); /* the command name may contain spaces */
  unsigned long utime = 0, stime = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
    errno = 0;
    die("cannot parse /proc/PID/stat");
  }
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
         (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static int connect_to(struct sockaddr_in *addr) {
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)addr, sizeof *addr)) die("connect");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void fill(unsigned char *msg, size_t size) {
  for (size_t i = 0; i < size; i++) msg[i] = (unsigned char)('a' + i % 26);
}

/* One blocking round trip (memory mode). */
static void round_trip(int fd, const unsigned char *msg, unsigned char *scratch, size_t size) {
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (size_t off = 0; off < size;) {
    ssize_t w = write(fd, msg + off, size - off);
    if (w <= 0) die("write");
    off += (size_t)w;
  }
  for (size_t got = 0; got < size;) {
    ssize_t r = read(fd, scratch, size - got);
    if (r <= 0) { if (r == 0) errno = 0; die(r == 0 ? "server closed the connection" : "read"); }
    if (memcmp(scratch, msg + got, (size_t)r)) { errno = 0; die("echoed bytes differ"); }
    got += (size_t)r;
  }
}

static void sleep_s(double s) {
  struct timespec t = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&t, NULL);
}

static int memory_probe(struct sockaddr_in *addr, int pid, int conns, size_t size, double settle) {
  unsigned char *msg = malloc(size), *scratch = malloc(size);
  int *fds = calloc((size_t)conns, sizeof *fds);
  if (!msg || !scratch || !fds) die("malloc");
  fill(msg, size);
  long before = vm_rss_kib(pid);
  for (int i = 0; i < conns; i++) {
    fds[i] = connect_to(addr);
    round_trip(fds[i], msg, scratch, size);
  }
  sleep_s(settle);
  long idle = vm_rss_kib(pid);
  /* Every connection must still be open and echoing. */
  round_trip(fds[0], msg, scratch, size);
  round_trip(fds[conns - 1], msg, scratch, size);
  for (int i = 0; i < conns; i++) close(fds[i]);
  sleep_s(settle);
  long closed = vm_rss_kib(pid);
  printf("conns=%d size=%zu rss_before_kib=%ld rss_idle_kib=%ld rss_closed_kib=%ld "
         "added_kib=%ld added_per_conn_b=%.0f\n",
         conns, size, before, idle, closed, idle - before,
         (double)(idle - before) * 1024.0 / conns);
  return 0;
}

static void start_round_trip(int ep, struct conn *c, const unsigned char *msg, size_t size) {
  c->sent = c->got = 0;
  c->start = now_ns();
  ssize_t w = write(c->fd, msg, size);
  if (w < 0 && errno != EAGAIN) die("write");
  c->sent = w > 0 ? (size_t)w : 0;
  int want_out = c->sent < size;
  if (want_out != c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev)) die("epoll_ctl");
    c->want_out = want_out;
  }
}

int main(int argc, char **argv) {
  int conns = 50, pid = 0, memory = 0, opt;
  size_t size = 64;
  double warmup = 1, duration = 5, settle = 2;
  while ((opt = getopt(argc, argv, "c:s:w:d:m:p:t:")) != -1) {
    switch (opt) {
      case 'c': conns = atoi(optarg); break;
      case 's': size = (size_t)atol(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 'd': duration = atof(optarg); break;
      case 'm': pid = atoi(optarg); memory = 1; break;
      case 'p': pid = atoi(optarg); break;
      case 't': settle = atof(optarg); break;
      default: fprintf(stderr, "usage: see the comment at the top of echo_load.c\n"); return 64;
    }
  }
  if (optind != argc - 1 || conns < 1 || size < 1 || duration <= 0) {
    fprintf(stderr, "usage: echo_load [-c CONNS] [-s SIZE] [-w S] [-d S] [-p PID] [-m PID -t S] [HOST:]PORT\n");
    return 64;
  }
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  char *target = argv[optind], *colon = strrchr(target, ':');
  if (colon) {
    *colon = 0;
    if (inet_pton(AF_INET, target, &addr.sin_addr) != 1) { errno = 0; die("bad IPv4 address"); }
    target = colon + 1;
  }
  addr.sin_port = htons((uint16_t)atoi(target));
  if (pid && memory) return memory_probe(&addr, pid, conns, size, settle);

  unsigned char *msg = malloc(size), *scratch = malloc(size < 65536 ? size : 65536);
  struct conn *cs = calloc((size_t)conns, sizeof *cs);
  size_t cap = 1 << 20, n = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  if (!msg || !scratch || !cs || !lat) die("malloc");
  fill(msg, size);
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (int i = 0; i < conns; i++) {
    cs[i].fd = connect_to(&addr);
    if (fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK)) die("fcntl");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev)) die("epoll_ctl");
  }
  size_t chunk = size < 65536 ? size : 65536;
  uint64_t t0 = now_ns(), measure_from = t0 + (uint64_t)(warmup * 1e9),
           end = measure_from + (uint64_t)(duration * 1e9);
  for (int i = 0; i < conns; i++) start_round_trip(ep, &cs[i], msg, size);
  struct epoll_event evs[256];
  uint64_t now = t0;
  int measuring = 0;
  double server_cpu0 = 0, client_cpu0 = 0;
  while (now < end) {
    int k = epoll_wait(ep, evs, 256, 100);
    if (k < 0 && errno != EINTR) die("epoll_wait");
    now = now_ns();
    if (!measuring && now >= measure_from) {
      measuring = 1;
      server_cpu0 = pid ? cpu_seconds(pid) : 0;
      client_cpu0 = self_cpu_seconds();
    }
    for (int i = 0; i < k; i++) {
      struct conn *c = evs[i].data.ptr;
      if ((evs[i].events & EPOLLOUT) && c->sent < size) {
        ssize_t w = write(c->fd, msg + c->sent, size - c->sent);
        if (w < 0 && errno != EAGAIN) die("write");
        if (w > 0) c->sent += (size_t)w;
        if (c->sent == size) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev)) die("epoll_ctl");
          c->want_out = 0;
        }
      }
      if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      size_t want = size - c->got;
      ssize_t r = read(c->fd, scratch, want < chunk ? want : chunk);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) { if (r == 0) errno = 0; die(r == 0 ? "server closed the connection" : "read"); }
      if (c->got + (size_t)r > c->sent || memcmp(scratch, msg + c->got, (size_t)r)) {
        errno = 0;
        die("echoed bytes differ from those sent");
      }
      c->got += (size_t)r;
      if (c->got < size) continue;
      now = now_ns();
      if (now >= measure_from && now < end) {
        if (n == cap) {
          cap *= 2;
          lat = realloc(lat, cap * sizeof *lat);
          if (!lat) die("realloc");
        }
        lat[n++] = now - c->start;
      }
      if (now < end) start_round_trip(ep, c, msg, size);
    }
  }
  double secs = duration;
  double server_cpu = pid ? cpu_seconds(pid) - server_cpu0 : 0, client_cpu = self_cpu_seconds() - client_cpu0;
  qsort(lat, n, sizeof *lat, cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)lat[i];
  printf("conns=%d size=%zu secs=%.1f round_trips=%zu rt_per_s=%.0f mb_per_s=%.2f "
         "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f client_cpu_pct=%.0f",
         conns, size, secs, n, (double)n / secs, (double)n * (double)size / secs / 1e6,
         pct_us(lat, n, 0.50), pct_us(lat, n, 0.99), pct_us(lat, n, 0.999),
         n ? (double)lat[n - 1] / 1000.0 : 0, n ? sum / (double)n / 1000.0 : 0,
         client_cpu / secs * 100);
  if (pid)
    printf(" server_cpu_pct=%.0f server_us_per_rt=%.2f", server_cpu / secs * 100,
           n ? server_cpu * 1e6 / (double)n : 0);
  printf("\n");
  for (int i = 0; i < conns; i++) close(cs[i].fd);
  return 0;
}
