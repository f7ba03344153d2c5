/*
 * Load generator for remote-command servers: N threads, each running one
 * command after another for a fixed time, timing each from connect to the
 * end of its reply. Prints one JSON line: commands/s, p50, p99, max (ms).
 *
 *   cmd_load MODE PORT CONCURRENCY SECONDS [TOKEN] [COMMAND]
 *
 * COMMAND (default "true") is the shell text sent in line, framed and keep
 * modes (eof-mode servers run what their own configuration says). It must
 * not need JSON escaping.
 *
 * MODE  eof      connect, read until the server closes (socat, ncat, xinetd)
 *       line     connect, send "true\n", read until close (Python reference)
 *       framed   connect, send {"op":"exec","cmd":"true"} frame, read frames
 *                until the exit frame, close (switchboard, one connection per
 *                command, as `switchboard cmd` does)
 *       keep     like framed but every thread keeps one connection open and
 *                sends its commands on it one after another
 *
 * Build: gcc -O2 -pthread -o cmd_load cmd_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { EOF_MODE, LINE_MODE, FRAMED_MODE, KEEP_MODE };

static enum mode mode;
static int port;
static double seconds;
static char request[512];
static size_t request_len;

struct worker {
  pthread_t thread;
  double *lat;
  size_t count, cap;
  long errors;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_exact(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int read_to_eof(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return 0;
  }
}

/* Reads frames until {"op":"exit",...}; skips bodies. 0 ok, -1 error. */
static int read_until_exit(int fd) {
  char header[65537];
  char body[65536];
  for (;;) {
    unsigned char prefix[4];
    if (read_exact(fd, (char *)prefix, 4) < 0) return -1;
    uint32_t len = (uint32_t)prefix[0] << 24 | prefix[1] << 16 | prefix[2] << 8 | prefix[3];
    if (len == 0 || len > 65536) return -1;
    if (read_exact(fd, header, len) < 0) return -1;
    header[len] = 0;
    if (strstr(header, "\"op\":\"error\"")) return -1;
    int is_exit = strstr(header, "\"op\":\"exit\"") != NULL;
    const char *size = strstr(header, "\"size\":");
    if (size) {
      unsigned long long left = strtoull(size + 7, NULL, 10);
      while (left > 0) {
        size_t chunk = left > sizeof body ? sizeof body : (size_t)left;
        if (read_exact(fd, body, chunk) < 0) return -1;
        left -= chunk;
      }
    }
    if (is_exit) return 0;
  }
}

static void record(struct worker *w, double ms) {
  if (w->count == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 4096;
    w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
  }
  w->lat[w->count++] = ms;
}

static void *run(void *arg) {
  struct worker *w = arg;
  double end = now_ms() + seconds * 1e3;
  int kept = -1;
  while (now_ms() < end) {
    double start = now_ms();
    int ok;
    if (mode == KEEP_MODE) {
      if (kept < 0) kept = dial();
      ok = kept >= 0 && write_all(kept, request, request_len) == 0 && read_until_exit(kept) == 0;
      if (!ok && kept >= 0) {
        close(kept);
        kept = -1;
      }
    } else {
      int fd = dial();
      ok = fd >= 0;
      if (ok && (mode == LINE_MODE || mode == FRAMED_MODE)) ok = write_all(fd, request, request_len) == 0;
      if (ok) ok = (mode == FRAMED_MODE ? read_until_exit(fd) : read_to_eof(fd)) == 0;
      if (fd >= 0) close(fd);
    }
    if (ok) record(w, now_ms() - start);
    else {
      w->errors++;
      usleep(1000);
    }
  }
  if (kept >= 0) close(kept);
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: cmd_load eof|line|framed|keep PORT CONCURRENCY SECONDS [TOKEN] [COMMAND]\n");
    return 64;
  }
  mode = !strcmp(argv[1], "eof") ? EOF_MODE
       : !strcmp(argv[1], "line") ? LINE_MODE
       : !strcmp(argv[1], "framed") ? FRAMED_MODE
       : !strcmp(argv[1], "keep") ? KEEP_MODE : -1;
  if ((int)mode < 0) return 64;
  port = atoi(argv[2]);
  int concurrency = atoi(argv[3]);
  seconds = atof(argv[4]);
  const char *token = argc > 5 ? argv[5] : "";
  const char *command = argc > 6 ? argv[6] : "true";
  if (mode == LINE_MODE) {
    request_len = (size_t)snprintf(request, sizeof request, "%s\n", command);
  } else if (mode == FRAMED_MODE || mode == KEEP_MODE) {
    char json[400];
    int n = snprintf(json, sizeof json, "{\"op\":\"exec\",\"cmd\":\"%s\",\"token\":\"%s\"}", command, token);
    request[0] = 0;
    request[1] = 0;
    request[2] = (char)(n >> 8);
    request[3] = (char)(n & 0xff);
    memcpy(request + 4, json, (size_t)n);
    request_len = 4 + (size_t)n;
  }
  struct worker *workers = calloc((size_t)concurrency, sizeof *workers);
  double start = now_ms();
  for (int i = 0; i < concurrency; i++) pthread_create(&workers[i].thread, NULL, run, &workers[i]);
  size_t total = 0;
  long errors = 0;
  for (int i = 0; i < concurrency; i++) {
    pthread_join(workers[i].thread, NULL);
    total += workers[i].count;
    errors += workers[i].errors;
  }
  double elapsed = (now_ms() - start) / 1e3;
  double *all = malloc((total ? total : 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; i < concurrency; i++) {
    memcpy(all + k, workers[i].lat, workers[i].count * sizeof *all);
    k += workers[i].count;
  }
  qsort(all, total, sizeof *all, cmp);
  double p50 = total ? all[total / 2] : 0;
  double p99 = total ? all[(size_t)(total * 0.99)] : 0;
  double max = total ? all[total - 1] : 0;
  printf("{\"commands\":%zu,\"errors\":%ld,\"seconds\":%.3f,\"per_second\":%.1f,"
         "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
         total, errors, elapsed, total / elapsed, p50, p99, max);
  return 0;
}
