/* Single-threaded epoll TCP echo server: the baseline of bench/run.
 * usage: c_echo_server PORT   (binds 127.0.0.1; TCP_NODELAY like switchboard)
 * A short write (rare: the load generator is closed-loop) finishes with poll(). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

int main(int argc, char **argv) {
  static char buf[65536];
  struct epoll_event ev = {.events = EPOLLIN}, evs[256];
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 7),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), ep = epoll_create1(0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) return perror("bind"), 1;
  ev.data.fd = ls;
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        close(fd); /* also removes it from the epoll set */
        continue;
      }
      for (ssize_t off = 0, w; off < r; off += w > 0 ? w : 0) {
        w = write(fd, buf + off, r - off);
        if (w < 0 && errno != EAGAIN) { close(fd); break; }
        if (w < 0) poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, -1);
      }
    }
  }
}
