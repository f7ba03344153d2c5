/* Single-threaded UDP echo server: the C reference of bench/run's UDP echo
 * scenario. A blocking recvfrom/sendto loop, the plainest fast server.
 * usage: c_udp_echo_server PORT   (binds 127.0.0.1) */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  static char buf[65536];
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 7),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("c_udp_echo_server");
    return 1;
  }
  for (;;) {
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n >= 0) sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
  }
}
