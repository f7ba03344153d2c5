/*
 * Load generator for a TCP chat room (switchboard chat over TCP, or
 * `ncat --chat`): MEMBERS connections join, then member 0 sends MESSAGES
 * lines and the other members count the lines that arrive.
 *
 *   chat_tcp_load -p PORT -n MEMBERS -m MESSAGES [-w WINDOW]
 *
 * The sender keeps at most WINDOW messages in flight (sent but not yet
 * received by every member), so the figure is the room's throughput, not
 * the depth of its buffers. A line counts when it contains "M <seq> <t>"
 * (whatever prefix the relay adds: "[name] " or "<userN> ").
 *
 * Prints one line of key=value pairs: deliveries/s, loss, duplicates and
 * delivery latency percentiles.
 *
 * Build: gcc -O2 -o chat_tcp_load chat_tcp_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINEBUF 65536

struct member {
  int fd;
  char buf[LINEBUF];
  size_t len;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static long messages, receivers;
static uint64_t received, duplicates, closed_early;
static uint32_t *latency;
static uint8_t *seen;

/* Reads what is there; returns 0 when the peer closed. */
static int drain(struct member *m, int who, int counting) {
  for (;;) {
    ssize_t n = read(m->fd, m->buf + m->len, LINEBUF - m->len);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : 0;
    if (n == 0) return 0;
    uint64_t rx = now_ns();
    m->len += (size_t)n;
    size_t start = 0;
    for (;;) {
      char *nl = memchr(m->buf + start, '\n', m->len - start);
      if (!nl) break;
      *nl = 0;
      char *line = m->buf + start;
      start = (size_t)(nl - m->buf) + 1;
      if (!counting) continue;
      char *mark = strstr(line, "M ");
      long seq;
      unsigned long long ts;
      if (!mark || sscanf(mark, "M %ld %llu", &seq, &ts) != 2 || seq < 0 || seq >= messages) continue;
      uint64_t slot = (uint64_t)seq * receivers + (uint64_t)(who - 1);
      if (seen[slot]) {
        duplicates++;
        continue;
      }
      seen[slot] = 1;
      latency[received++] = (uint32_t)((rx - ts) / 1000);
    }
    memmove(m->buf, m->buf + start, m->len - start);
    m->len -= start;
    if (m->len == LINEBUF) m->len = 0; /* a line longer than the buffer: drop it */
  }
}

int main(int argc, char **argv) {
  int port = 0, members = 50, opt;
  long window = 64;
  messages = 20000;
  while ((opt = getopt(argc, argv, "p:n:m:w:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'n': members = atoi(optarg); break;
      case 'm': messages = atol(optarg); break;
      case 'w': window = atol(optarg); break;
      default:
        fprintf(stderr, "usage: %s -p PORT [-n MEMBERS] [-m MESSAGES] [-w WINDOW]\n", argv[0]);
        return 64;
    }
  }
  if (port <= 0 || members < 2 || messages < 1) {
    fprintf(stderr, "need -p PORT, -n >= 2, -m >= 1\n");
    return 64;
  }
  receivers = members - 1;
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
  struct member *ms = calloc(members, sizeof *ms);
  int ep = epoll_create1(0);
  for (int i = 0; i < members; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ms[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    usleep(500);
  }
  /* Let the join announcements arrive, and discard them. */
  struct epoll_event events[256];
  uint64_t quiet_since = now_ns();
  while (now_ns() - quiet_since < 300000000ull) {
    int n = epoll_wait(ep, events, 256, 50);
    for (int e = 0; e < n; e++) {
      drain(&ms[events[e].data.u32], (int)events[e].data.u32, 0);
      quiet_since = now_ns();
    }
  }

  uint64_t expected = (uint64_t)messages * receivers;
  latency = malloc(expected * sizeof(uint32_t));
  seen = calloc(expected, 1);
  if (!latency || !seen) die("malloc");
  static char out[1 << 20];
  size_t out_len = 0, out_off = 0;
  long sent = 0;
  uint64_t start = now_ns(), last_rx = start, last_progress = start;
  while (1) {
    /* Queue what the window allows, then write as much as the socket takes. */
    while (sent < messages && (uint64_t)sent * receivers - received < (uint64_t)window * receivers &&
           out_len + 64 < sizeof out) {
      out_len += (size_t)snprintf(out + out_len, 64, "M %ld %llu\n", sent, (unsigned long long)now_ns());
      sent++;
    }
    while (out_off < out_len) {
      ssize_t n = write(ms[0].fd, out + out_off, out_len - out_off);
      if (n < 0) {
        if (errno == EAGAIN) break;
        die("write");
      }
      out_off += (size_t)n;
    }
    if (out_off == out_len) out_off = out_len = 0;
    int n = epoll_wait(ep, events, 256, sent < messages ? 1 : 20);
    uint64_t before = received;
    for (int e = 0; e < n; e++) {
      int who = (int)events[e].data.u32;
      if (!drain(&ms[who], who, who != 0)) {
        closed_early++;
        epoll_ctl(ep, EPOLL_CTL_DEL, ms[who].fd, NULL);
      }
    }
    uint64_t t = now_ns();
    if (received != before) last_rx = last_progress = t;
    if (sent >= messages && (received >= expected || t - last_progress > 1000000000ull)) break;
    if (sent < messages && t - last_progress > 2000000000ull) {
      fprintf(stderr, "chat_tcp_load: stalled after %ld messages\n", sent);
      break;
    }
  }
  expected = (uint64_t)sent * receivers;
  double elapsed = (double)(last_rx - start) / 1e9;
  uint64_t lost = expected - received;
  qsort(latency, received, sizeof(uint32_t), cmp_u32);
  uint32_t p50 = received ? latency[received / 2] : 0;
  uint32_t p99 = received ? latency[(uint64_t)((double)received * 0.99)] : 0;
  uint32_t pmax = received ? latency[received - 1] : 0;
  printf("members=%d messages=%ld sent=%ld expected=%llu received=%llu lost=%llu loss_pct=%.3f duplicates=%llu "
         "closed=%llu elapsed_s=%.3f deliveries_per_s=%.0f messages_per_s=%.0f p50_us=%u p99_us=%u "
         "max_us=%u\n",
         members, messages, sent, (unsigned long long)expected, (unsigned long long)received,
         (unsigned long long)lost, expected ? 100.0 * (double)lost / (double)expected : 0.0,
         (unsigned long long)duplicates, (unsigned long long)closed_early,
         elapsed, elapsed > 0 ? (double)received / elapsed : 0, elapsed > 0 ? (double)sent / elapsed : 0,
         p50, p99, pmax);
  return 0;
}
