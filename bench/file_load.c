/*
 * Load generator for the file service benchmark (bench/run).
 *
 *   file_load MODE PORT NAME_PATTERN [CLIENTS] [SECONDS] [FILES] [OPTIONS]
 *
 * MODE: framed   switchboard protocol, one connection per file
 *       framed-keep  switchboard protocol, one connection per client (requests in turn)
 *       raw      the course protocol (py_file_tcp.py, switchboard protocol = "raw"): name + "\n", read to EOF
 *       http     HTTP/1.0 GET (python3 -m http.server), read to EOF
 * NAME_PATTERN: a printf pattern taking the file index, e.g. "small/f%04d.bin" (or a plain name)
 * OPTIONS: "nosha" sends "sha256": false (framed modes)
 * Prints: files, seconds, files/s, bytes, GB/s, errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int mode_framed, mode_keep, mode_raw, mode_http, nosha;
static int port, files_count;
static const char *pattern;
static double seconds;
static atomic_long done_files, done_bytes, errors;
static atomic_int stop;
static char *buffer_template;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int dial(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(0x7f000001);
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    close(s);
    return -1;
  }
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static int write_all(int s, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(s, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= w;
  }
  return 0;
}

static int read_exact(int s, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(s, p, n);
    if (r <= 0) return -1;
    p += r;
    n -= r;
  }
  return 0;
}

/* Reads one frame header into hdr (NUL-terminated); returns its length or -1. */
static long read_header(int s, char *hdr, size_t cap) {
  unsigned char len[4];
  if (read_exact(s, (char *)len, 4)) return -1;
  size_t n = ((size_t)len[0] << 24) | (len[1] << 16) | (len[2] << 8) | len[3];
  if (n >= cap) return -1;
  if (read_exact(s, hdr, n)) return -1;
  hdr[n] = 0;
  return (long)n;
}

static long long skip(int s, long long n, char *buf, size_t cap) {
  long long got = 0;
  while (got < n) {
    size_t want = n - got < (long long)cap ? (size_t)(n - got) : cap;
    ssize_t r = read(s, buf, want);
    if (r <= 0) return -1;
    got += r;
  }
  return got;
}

/* One framed get on an open connection; returns body bytes or -1. */
static long long framed_get(int s, const char *name, char *buf, size_t cap) {
  char req[1024];
  int n = snprintf(req + 4, sizeof req - 4, "{\"op\":\"get\",\"path\":\"%s\"%s}", name,
                   nosha ? ",\"sha256\":false" : "");
  req[0] = 0; req[1] = 0; req[2] = (n >> 8) & 0xff; req[3] = n & 0xff;
  if (write_all(s, req, n + 4)) return -1;
  char hdr[70000];
  if (read_header(s, hdr, sizeof hdr) < 0) return -1;
  char *size = strstr(hdr, "\"size\":");
  if (!strstr(hdr, "\"op\":\"file\"") || !size) return -1;
  long long body = atoll(size + 7);
  if (skip(s, body, buf, cap) < 0) return -1;
  if (read_header(s, hdr, sizeof hdr) < 0 || !strstr(hdr, "\"op\":\"end\"")) return -1;
  return body;
}

static long long stream_get(int s, const char *name, char *buf, size_t cap) {
  char req[1200];
  int n = mode_http ? snprintf(req, sizeof req, "GET /%s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", name)
                    : snprintf(req, sizeof req, "%s\n", name);
  if (write_all(s, req, n)) return -1;
  long long total = 0;
  for (;;) {
    ssize_t r = read(s, buf, cap);
    if (r < 0) return -1;
    if (r == 0) break;
    total += r;
  }
  return total;
}

static void *client(void *arg) {
  long id = (long)arg;
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  char name[1024];
  long i = id;
  int keep = -1;
  while (!atomic_load(&stop)) {
    snprintf(name, sizeof name, pattern, (int)(i % files_count));
    i += 1;
    long long got;
    if (mode_keep) {
      if (keep < 0) keep = dial();
      got = keep < 0 ? -1 : framed_get(keep, name, buf, cap);
      if (got < 0 && keep >= 0) { close(keep); keep = -1; }
    } else {
      int s = dial();
      if (s < 0) { atomic_fetch_add(&errors, 1); continue; }
      got = mode_framed ? framed_get(s, name, buf, cap) : stream_get(s, name, buf, cap);
      close(s);
    }
    if (got < 0) { atomic_fetch_add(&errors, 1); continue; }
    atomic_fetch_add(&done_files, 1);
    atomic_fetch_add(&done_bytes, got);
    if (seconds <= 0) break; /* one file per client */
  }
  if (keep >= 0) close(keep);
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s framed|framed-keep|raw|http PORT NAME_PATTERN [CLIENTS] [SECONDS] [FILES] [nosha]\n", argv[0]);
    return 64;
  }
  const char *mode = argv[1];
  mode_keep = !strcmp(mode, "framed-keep");
  mode_framed = mode_keep || !strcmp(mode, "framed");
  mode_raw = !strcmp(mode, "raw");
  mode_http = !strcmp(mode, "http");
  if (!mode_framed && !mode_raw && !mode_http) { fprintf(stderr, "bad mode\n"); return 64; }
  port = atoi(argv[2]);
  pattern = argv[3];
  int clients = argc > 4 ? atoi(argv[4]) : 1;
  seconds = argc > 5 ? atof(argv[5]) : 0;
  files_count = argc > 6 ? atoi(argv[6]) : 1;
  nosha = argc > 7 && !strcmp(argv[7], "nosha");
  (void)buffer_template;
  pthread_t threads[256];
  if (clients > 256) clients = 256;
  double t0 = now();
  for (long c = 0; c < clients; c++) pthread_create(&threads[c], NULL, client, (void *)c);
  if (seconds > 0) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (long)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
  }
  for (int c = 0; c < clients; c++) pthread_join(threads[c], NULL);
  double elapsed = now() - t0;
  long files = atomic_load(&done_files);
  long long bytes = atomic_load(&done_bytes);
  printf("files=%ld seconds=%.3f files_per_s=%.0f bytes=%lld gb_per_s=%.3f errors=%ld\n", files, elapsed,
         files / elapsed, bytes, bytes / elapsed / 1e9, atomic_load(&errors));
  return atomic_load(&errors) > 0 && files == 0 ? 1 : 0;
}
