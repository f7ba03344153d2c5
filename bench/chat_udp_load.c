/*
 * Load generator for a UDP chat relay (switchboard chat or the Python
 * reference): MEMBERS sockets join (one empty datagram each), then member 0
 * sends MESSAGES messages and the other members count what arrives.
 *
 *   chat_udp_load -p PORT -n MEMBERS -m MESSAGES [-r RATE] [-w WINDOW] [-b BASEPORT]
 *
 * -r 0 (default): "as fast as the relay accepts": at most WINDOW messages
 *    in flight (sent but not yet delivered to every member), so the relay's
 *    input queue never overflows and the figure is the relay's throughput.
 * -r N: open loop, N messages per second (loss shows what the relay cannot
 *    keep up with).
 * -b BASEPORT binds member i to BASEPORT+i (repeatable membership).
 *
 * Prints one line of key=value pairs: deliveries/s, loss, duplicates and
 * delivery latency percentiles (time from send to receipt).
 *
 * Build: gcc -O2 -o chat_udp_load chat_udp_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXMSG 2048

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

int main(int argc, char **argv) {
  int port = 0, members = 50, base = 0, opt;
  long messages = 20000, window = 64;
  double rate = 0;
  while ((opt = getopt(argc, argv, "p:n:m:r:w:b:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'n': members = atoi(optarg); break;
      case 'm': messages = atol(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 'w': window = atol(optarg); break;
      case 'b': base = atoi(optarg); break;
      default:
        fprintf(stderr, "usage: %s -p PORT [-n MEMBERS] [-m MESSAGES] [-r RATE] [-w WINDOW] [-b BASEPORT]\n", argv[0]);
        return 64;
    }
  }
  if (port <= 0 || members < 2 || messages < 1) {
    fprintf(stderr, "need -p PORT, -n >= 2, -m >= 1\n");
    return 64;
  }
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);

  int *fds = calloc(members, sizeof(int));
  int ep = epoll_create1(0);
  for (int i = 0; i < members; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int size = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(base ? base + i : 0)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) die("bind");
    fds[i] = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (i > 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }

  static char bufs[BATCH][MAXMSG];
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iovs[i].iov_base = bufs[i];
    iovs[i].iov_len = MAXMSG;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  /* Join, then drain the announcements until the room is quiet. */
  for (int i = 0; i < members; i++) {
    if (sendto(fds[i], "", 0, 0, (struct sockaddr *)&server, sizeof server) < 0) die("sendto join");
    usleep(200);
  }
  struct epoll_event events[256];
  uint64_t quiet_since = now_ns();
  long *joins_seen = calloc(members, sizeof(long));
  while (now_ns() - quiet_since < 300000000ull) {
    int n = epoll_wait(ep, events, 256, 50);
    for (int e = 0; e < n; e++) {
      int who = (int)events[e].data.u32, got;
      while ((got = recvmmsg(fds[who], msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) {
        joins_seen[who] += got;
        quiet_since = now_ns();
      }
    }
  }
  /* Member i hears of every later join: fewer means a join went missing. */
  int join_missing = 0;
  for (int i = 1; i < members - 1; i++)
    if (joins_seen[i] < members - 1 - i) join_missing++;
  /* Member 0 is not polled: drain what it got during the joins. */
  while (recvmmsg(fds[0], msgs, BATCH, MSG_DONTWAIT, NULL) > 0) {}

  long receivers = members - 1;
  uint64_t expected = (uint64_t)messages * receivers;
  uint32_t *latency = malloc(expected * sizeof(uint32_t));
  uint8_t *seen = calloc(expected, 1);
  if (!latency || !seen) die("malloc");
  uint64_t received = 0, duplicates = 0, stray = 0;
  int stalled = 0;
  long sent = 0;
  uint64_t start = now_ns(), last_rx = start, last_progress = start;
  char out[64];
  while (1) {
    uint64_t t = now_ns();
    /* Send what is due (open loop: at most 32 at once, so a generator that
       was descheduled does not flood the relay with its backlog). */
    int burst = 0;
    while (sent < messages) {
      if (rate > 0) {
        if ((double)(t - start) < (double)sent * 1e9 / rate || ++burst > 32) break;
      } else if ((uint64_t)sent * receivers - received >= (uint64_t)window * receivers) {
        break;
      }
      int len = snprintf(out, sizeof out, "M %ld %llu", sent, (unsigned long long)now_ns());
      if (sendto(fds[0], out, len, 0, (struct sockaddr *)&server, sizeof server) < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) break;
        die("sendto");
      }
      sent++;
    }
    int timeout = sent < messages ? 1 : 20;
    int n = epoll_wait(ep, events, 256, timeout);
    for (int e = 0; e < n; e++) {
      int who = (int)events[e].data.u32;
      int got;
      while ((got = recvmmsg(fds[who], msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) {
        uint64_t rx = now_ns();
        last_rx = rx;
        last_progress = rx;
        for (int k = 0; k < got; k++) {
          unsigned len = msgs[k].msg_len < MAXMSG ? msgs[k].msg_len : MAXMSG - 1;
          bufs[k][len] = 0;
          char *m = memmem(bufs[k], len, "M ", 2);
          long seq;
          unsigned long long ts;
          if (!m || sscanf(m, "M %ld %llu", &seq, &ts) != 2 || seq < 0 || seq >= messages) {
            stray++;
            continue;
          }
          uint64_t slot = (uint64_t)seq * receivers + (uint64_t)(who - 1);
          if (seen[slot]) {
            duplicates++;
            continue;
          }
          seen[slot] = 1;
          latency[received++] = (uint32_t)((rx - ts) / 1000);
        }
      }
    }
    t = now_ns();
    if (sent >= messages && (received >= expected || t - last_progress > 1000000000ull)) break;
    /* Windowed mode: lost deliveries shrink the window; give up when it closes. */
    if (rate <= 0 && sent < messages && t - last_progress > 1000000000ull) {
      fprintf(stderr, "chat_udp_load: stalled after %ld messages (deliveries lost)\n", sent);
      stalled = 1;
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
  printf("members=%d messages=%ld sent=%ld expected=%llu received=%llu lost=%llu loss_pct=%.3f "
         "duplicates=%llu stray=%llu elapsed_s=%.3f deliveries_per_s=%.0f messages_per_s=%.0f "
         "p50_us=%u p99_us=%u max_us=%u stalled=%d join_missing=%d\n",
         members, messages, sent, (unsigned long long)expected, (unsigned long long)received,
         (unsigned long long)lost, expected ? 100.0 * (double)lost / (double)expected : 0.0,
         (unsigned long long)duplicates, (unsigned long long)stray, elapsed,
         elapsed > 0 ? (double)received / elapsed : 0, elapsed > 0 ? (double)sent / elapsed : 0,
         p50, p99, pmax, stalled, join_missing);
  return 0;
}
