/*
 * Closed-loop UDP load for the time service: CLIENTS sockets, each with one
 * request in flight; a reply triggers the next request at once. One thread
 * and epoll, so the load generator costs the server little CPU. A request
 * unanswered for 200 ms is sent again (counted as a timeout). Replies are
 * checked: 1..1024 bytes and not starting with "error".
 *
 * With SERVER_PID, the server's CPU time (utime + stime from /proc/PID/stat)
 * is read at the start and end of the measured window.
 *
 * FORMAT may list several formats separated by "||": client i sends format
 * i mod count, so consecutive datagrams at the server carry different formats.
 *
 * usage: time_udp_load PORT CLIENTS SECONDS WARMUP_SECONDS [FORMAT] [SERVER_PID]
 * prints one line: requests=… seconds=… rate=… timeouts=… bad=… server_cpu_s=… cpu_us_per_req=…
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1024
#define RESEND_NS 200000000LL

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* utime + stime of a process, in clock ticks; -1 when unreadable. */
static long long cpu_ticks(int pid) {
  if (pid <= 0) return -1;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may contain spaces */
  if (!p) return -1;
  unsigned long long utime = 0, stime = 0;
  /* After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return (long long)(utime + stime);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s PORT CLIENTS SECONDS WARMUP_SECONDS [FORMAT] [SERVER_PID]\n", argv[0]);
    return 64;
  }
  int port = atoi(argv[1]);
  int clients = atoi(argv[2]);
  double seconds = atof(argv[3]);
  double warmup = atof(argv[4]);
  const char *format = argc > 5 ? argv[5] : "%Y-%m-%d %H:%M:%S";
  int server_pid = argc > 6 ? atoi(argv[6]) : 0;
  if (clients < 1 || clients > MAX_CLIENTS || seconds <= 0) {
    fprintf(stderr, "bad arguments\n");
    return 64;
  }
  /* Split FORMAT on "||". */
  static const char *formats[MAX_CLIENTS];
  static size_t format_lens[MAX_CLIENTS];
  int format_count = 0;
  char *all = strdup(format);
  for (char *part = all; part && format_count < MAX_CLIENTS;) {
    char *sep = strstr(part, "||");
    if (sep) *sep = 0;
    formats[format_count] = part;
    format_lens[format_count] = strlen(part);
    format_count++;
    part = sep ? sep + 2 : NULL;
  }

  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  int ep = epoll_create1(0);
  int fds[MAX_CLIENTS];
  long long sent_at[MAX_CLIENTS];
  for (int i = 0; i < clients; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr, sizeof addr) < 0) {
      perror("socket/connect");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    send(fds[i], formats[i % format_count], format_lens[i % format_count], 0);
    sent_at[i] = now_ns();
  }

  long long start = now_ns();
  long long measure_from = start + (long long)(warmup * 1e9);
  long long measure_to = measure_from + (long long)(seconds * 1e9);
  long long requests = 0, timeouts = 0, bad = 0;
  long long cpu_start = -1, cpu_end = -1;
  int measuring = 0;
  long long last_scan = start;
  char buf[2048];
  struct epoll_event events[64];

  for (;;) {
    long long t = now_ns();
    if (!measuring && t >= measure_from) {
      measuring = 1;
      requests = timeouts = bad = 0;
      cpu_start = cpu_ticks(server_pid);
    }
    if (t >= measure_to) break;
    int n = epoll_wait(ep, events, 64, 10);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      return 1;
    }
    t = now_ns();
    for (int e = 0; e < n; e++) {
      int i = (int)events[e].data.u32;
      for (;;) {
        ssize_t got = recv(fds[i], buf, sizeof buf, 0);
        if (got < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == ECONNREFUSED) break; /* server not there (yet): resend on timeout */
          perror("recv");
          return 1;
        }
        requests++;
        if (got < 1 || got > 1024 || (got >= 5 && memcmp(buf, "error", 5) == 0)) bad++;
        send(fds[i], formats[i % format_count], format_lens[i % format_count], 0);
        sent_at[i] = t;
      }
    }
    if (t - last_scan > 50000000LL) { /* every 50 ms: resend what looks lost */
      last_scan = t;
      for (int i = 0; i < clients; i++) {
        if (t - sent_at[i] > RESEND_NS) {
          timeouts++;
          send(fds[i], formats[i % format_count], format_lens[i % format_count], 0);
          sent_at[i] = t;
        }
      }
    }
  }
  cpu_end = cpu_ticks(server_pid);
  double elapsed = (double)(now_ns() - measure_from) / 1e9;
  double cpu_s = -1, cpu_us_per_req = -1;
  if (cpu_start >= 0 && cpu_end >= 0) {
    cpu_s = (double)(cpu_end - cpu_start) / (double)sysconf(_SC_CLK_TCK);
    if (requests > 0) cpu_us_per_req = cpu_s * 1e6 / (double)requests;
  }
  printf("requests=%lld seconds=%.3f rate=%.0f timeouts=%lld bad=%lld server_cpu_s=%.2f cpu_us_per_req=%.2f\n",
         requests, elapsed, (double)requests / elapsed, timeouts, bad, cpu_s, cpu_us_per_req);
  for (int i = 0; i < clients; i++) close(fds[i]);
  close(ep);
  free(all);
  return bad > 0 ? 2 : 0;
}
