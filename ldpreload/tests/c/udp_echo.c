/* A checksummed UDP echo over plain BSD sockets, to run under libvcl_ldpreload.so
 * (ldpreload/tests/udp.rs).
 *
 *   udp_echo server PORT MODE          MODE: block | epoll    (runs until killed)
 *   udp_echo client HOST PORT MODE N   MODE: connected | unconnected
 *
 * The server echoes every datagram to its sender (recvfrom/sendto; epoll mode: non-blocking,
 * a kernel pipe in the same set). The client sends N datagrams of 1..8000 bytes one at a
 * time, each carrying its sequence number, length and checksum, and checks every echo (and,
 * unconnected, that it came from the server; that client binds to 127.0.0.1:0 first). Then
 * datagram semantics: MSG_PEEK, MSG_TRUNC
 * (recv and recvmsg), a short buffer dropping the rest, EMSGSIZE, EDESTADDRREQ, SO_TYPE,
 * sendmsg/recvmsg with split iovecs. Prints "udp client ok N". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define BIG 70000

static void die(const char *what) {
    fprintf(stderr, "udp_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(const char *what) {
    fprintf(stderr, "udp_echo: FAILED: %s\n", what);
    exit(1);
}

static uint32_t fnv(const uint8_t *p, size_t n) {
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x01000193u;
    return h;
}

static void serve(int port, int use_epoll) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("server bind");
    int ep = -1, pfd[2];
    if (use_epoll) {
        if (fcntl(s, F_SETFL, O_NONBLOCK) < 0 || pipe(pfd) < 0)
            die("server setup");
        ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
        struct epoll_event pev = {.events = EPOLLIN, .data.fd = pfd[0]};
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &pev) < 0)
            die("server epoll");
    }
    printf("udp server ready on %d\n", port);
    fflush(stdout);
    static uint8_t buf[65536];
    for (;;) {
        if (use_epoll) {
            struct epoll_event ev;
            if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR)
                die("epoll_wait");
        }
        for (;;) {
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (n < 0) {
                if (use_epoll && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                die("recvfrom");
            }
            if (sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) != n)
                die("sendto");
            if (!use_epoll)
                break;
        }
    }
}

/* one datagram out, its echo back (retried: loopback UDP under load may drop one) */
static void round_trip(int s, const struct sockaddr_in *srv, int connected, uint32_t seq) {
    static uint8_t out[8192], in[65536];
    size_t len = 1 + (seq * 2654435761u) % 8000;
    for (size_t i = 12; i < len; i++)
        out[i] = (uint8_t)(seq * 31 + i * 7);
    uint32_t hdr[3] = {seq, (uint32_t)len, 0};
    size_t hl = len < 12 ? len : 12;
    hdr[2] = len > 12 ? fnv(out + 12, len - 12) : 0;
    memcpy(out, hdr, hl);
    for (int attempt = 0; attempt < 5; attempt++) {
        ssize_t w = connected ? send(s, out, len, 0)
                              : sendto(s, out, len, 0, (const struct sockaddr *)srv, sizeof *srv);
        if (w != (ssize_t)len)
            die("send");
        for (;;) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t n = connected ? recv(s, in, sizeof in, 0)
                                  : recvfrom(s, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break; /* SO_RCVTIMEO: send again */
            if (n < 0)
                die("recv");
            if (!connected && (fl != sizeof from || from.sin_port != srv->sin_port ||
                               from.sin_addr.s_addr != srv->sin_addr.s_addr))
                fail("echo from another address");
            if ((size_t)n != len || memcmp(in, out, len) != 0) {
                uint32_t got = 0;
                if (n >= 4)
                    memcpy(&got, in, 4);
                if (n >= 4 && got < seq)
                    continue; /* an earlier attempt's late echo */
                fail("echo differs (length, order or checksum)");
            }
            return;
        }
    }
    fail("no echo after 5 tries");
}

static void semantics(int s, const struct sockaddr_in *srv, int connected) {
    static uint8_t big[BIG], buf[2000];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    int t = 0;
    socklen_t tl = sizeof t;
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, &t, &tl) < 0 || t != SOCK_DGRAM)
        fail("SO_TYPE is not SOCK_DGRAM");
    if (sendto(s, big, BIG, 0, (const struct sockaddr *)srv, sizeof *srv) >= 0 ||
        errno != EMSGSIZE)
        fail("a 70000-byte datagram is not EMSGSIZE");
    /* 1000 bytes echoed, then 10: peek, truncate, and the next datagram is whole */
    for (int i = 0; i < 1000; i++)
        big[i] = (uint8_t)i;
    if (sendto(s, big, 1000, 0, (const struct sockaddr *)srv, sizeof *srv) != 1000 ||
        sendto(s, "0123456789", 10, 0, (const struct sockaddr *)srv, sizeof *srv) != 10)
        die("sendto");
    ssize_t n = recv(s, buf, 100, MSG_PEEK);
    if (n != 100 || memcmp(buf, big, 100) != 0)
        fail("MSG_PEEK");
    n = recvfrom(s, buf, 100, MSG_TRUNC, (struct sockaddr *)&from, &fl);
    if (n != 1000 || memcmp(buf, big, 100) != 0 || from.sin_port != srv->sin_port)
        fail("MSG_TRUNC did not say the whole length");
    struct iovec iv[2] = {{buf, 4}, {buf + 4, 3}};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = iv,
                       .msg_iovlen = 2};
    n = recvmsg(s, &m, 0);
    if (n != 7 || memcmp(buf, "0123456", 7) != 0 || !(m.msg_flags & MSG_TRUNC) ||
        m.msg_namelen != sizeof from || from.sin_port != srv->sin_port)
        fail("recvmsg: a short buffer takes the start of the next datagram, MSG_TRUNC set");
    /* sendmsg from split buffers is one datagram */
    struct iovec ov[2] = {{"abc", 3}, {"defg", 4}};
    struct msghdr om = {.msg_name = connected ? NULL : (void *)srv,
                        .msg_namelen = connected ? 0 : sizeof *srv, .msg_iov = ov,
                        .msg_iovlen = 2};
    if (sendmsg(s, &om, 0) != 7)
        die("sendmsg");
    n = recv(s, buf, sizeof buf, 0);
    if (n != 7 || memcmp(buf, "abcdefg", 7) != 0)
        fail("sendmsg with two iovecs is not one datagram");
    if (!connected) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        if (u < 0 || send(u, "x", 1, 0) >= 0 || errno != EDESTADDRREQ)
            fail("send on an unconnected socket is not EDESTADDRREQ");
        close(u);
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "server") == 0) {
        serve(atoi(argv[2]), strcmp(argv[3], "epoll") == 0);
        return 0;
    }
    if (argc != 6 || strcmp(argv[1], "client") != 0) {
        fprintf(stderr, "usage: udp_echo server PORT MODE | client HOST PORT MODE N\n");
        return 2;
    }
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    if (inet_pton(AF_INET, argv[2], &srv.sin_addr) != 1)
        fail("bad address");
    int connected = strcmp(argv[4], "connected") == 0, n = atoi(argv[5]);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {.tv_sec = 2};
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        die("socket");
    if (connected && connect(s, (struct sockaddr *)&srv, sizeof srv) < 0)
        die("connect");
    /* unconnected: bound first (see the README on an unbound socket's first sendto) */
    struct sockaddr_in me = {.sin_family = AF_INET};
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!connected && bind(s, (struct sockaddr *)&me, sizeof me) < 0)
        die("bind");
    for (int i = 1; i <= n; i++)
        round_trip(s, &srv, connected, (uint32_t)i);
    semantics(s, &srv, connected);
    close(s);
    printf("udp client ok %d\n", n);
    return 0;
}
