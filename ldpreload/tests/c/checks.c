/* Run under libvcl_ldpreload.so by ldpreload/tests/checks.rs:
 *   checks fds PORT FIFO   2,000 kernel fds and 2,000 VPP sockets at once; select on low fds
 *   checks errors PORT     errno of bad input and wrong-state calls; options; dup; timeouts
 *   checks nested PORT     an epoll fd with a VPP socket inside another epoll fd
 *   checks vppdies PORT    VPP goes away while waiting (the test stops it after "ready")
 * Prints "ok: ..." and exits 0, or names the first failed check and exits 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int checks;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL line %d: %s (errno %d %s): ", __LINE__, #cond, errno,        \
                    strerror(errno));                                                          \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* Expect `call` to fail with `err`. */
#define FAILS(call, err) CHECK((errno = 0, (call) < 0 && errno == (err)), "expected %s", #err)

static struct sockaddr_in addr(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int listener(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = addr(port);
    CHECK(l >= 0, "socket");
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0, "bind");
    CHECK(listen(l, 16) == 0, "listen");
    return l;
}

static int connected(int port) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = addr(port);
    CHECK(c >= 0, "socket");
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect");
    return c;
}

static int fds(int port, int fifo) {
    struct rlimit r;
    CHECK(getrlimit(RLIMIT_NOFILE, &r) == 0, "getrlimit");
    if (r.rlim_cur < 4200) {
        r.rlim_cur = r.rlim_max < 8192 ? r.rlim_max : 8192;
        CHECK(r.rlim_cur >= 4200 && setrlimit(RLIMIT_NOFILE, &r) == 0, "need 4200 fds");
    }
    /* a low VPP listener and a low pipe, for select */
    int l = listener(port), p[2];
    CHECK(pipe(p) == 0, "pipe");
    static int kfd[2000], vfd[2000];
    static char seen[8192];
    for (int i = 0; i < 2000; i += 2)
        CHECK(pipe(kfd + i) == 0, "pipe %d", i);
    for (int i = 0; i < 2000; i++) {
        vfd[i] = socket(i % 2 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(vfd[i] >= 0, "socket %d", i);
        int v = 0;
        socklen_t vl = sizeof v;
        CHECK(getsockopt(vfd[i], SOL_SOCKET, SO_RCVBUF, &v, &vl) == 0 && v == fifo,
              "socket %d: SO_RCVBUF %d is not the fifo size %d (not a VPP socket?)", i, v, fifo);
        CHECK(getsockopt(vfd[i], SOL_SOCKET, SO_DOMAIN, &v, &vl) == 0 &&
                  v == (i % 2 ? AF_INET6 : AF_INET), "SO_DOMAIN");
        CHECK(fcntl(vfd[i], F_GETFD) == FD_CLOEXEC, "FD_CLOEXEC on the reserved fd");
    }
    for (int i = 0; i < 2000; i++) {
        CHECK(kfd[i] < 8192 && vfd[i] < 8192 && !seen[kfd[i]] && !seen[vfd[i]], "fd shared");
        seen[kfd[i]] = seen[vfd[i]] = 1;
    }
    /* kernel fds still work around them */
    CHECK(write(kfd[1999], "k", 1) == 1, "pipe write");
    char b;
    CHECK(read(kfd[1998], &b, 1) == 1 && b == 'k', "pipe read");
    /* select on the low ones: a pending connection on the VPP listener, data in the pipe */
    int c = connected(port);
    CHECK(write(p[1], "x", 1) == 1, "pipe write");
    CHECK(l < FD_SETSIZE && p[0] < FD_SETSIZE, "low fds");
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(l, &rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {.tv_sec = 10};
    int n = select((l > p[0] ? l : p[0]) + 1, &rs, NULL, NULL, &tv);
    for (int i = 0; n < 2 && i < 100; i++) { /* the accept may land a moment later */
        FD_SET(l, &rs);
        FD_SET(p[0], &rs);
        tv.tv_sec = 10;
        n = select((l > p[0] ? l : p[0]) + 1, &rs, NULL, NULL, &tv);
    }
    CHECK(n == 2 && FD_ISSET(l, &rs) && FD_ISSET(p[0], &rs), "select said %d", n);
    for (int i = 0; i < 2000; i++)
        CHECK(close(kfd[i]) == 0 && close(vfd[i]) == 0, "close");
    close(c);
    close(l);
    printf("ok: %d checks (2000 kernel fds + 2000 VPP sockets, select on low fds)\n", checks);
    return 0;
}

static int errors(int port) {
    char buf[64];
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = addr(port);
    CHECK(s >= 0, "socket");
    /* wrong state */
    FAILS(read(s, buf, sizeof buf), ENOTCONN);
    FAILS(send(s, buf, 1, MSG_NOSIGNAL), EPIPE);
    FAILS(accept(s, NULL, NULL), EINVAL);
    struct sockaddr_in pa;
    socklen_t pl = sizeof pa;
    FAILS(getpeername(s, (struct sockaddr *)&pa, &pl), ENOTCONN);
    FAILS(shutdown(s, SHUT_RDWR), ENOTCONN);
    /* bad arguments */
    FAILS(bind(s, (struct sockaddr *)&a, 3), EINVAL);
    FAILS(connect(s, NULL, sizeof a), EFAULT);
    FAILS(accept4(s, NULL, NULL, 0x40000000), EINVAL);
    FAILS(send(s, NULL, 10, MSG_NOSIGNAL), EFAULT);
    int v = 1;
    FAILS(setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), ENOPROTOOPT);
    socklen_t vl = sizeof v;
    FAILS(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &v, &vl), ENOPROTOOPT);
    FAILS(setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "bbr", 3), ENOENT);
    /* nobody listens: refused, blocking and not */
    FAILS(connect(s, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    FAILS(connect(nb, (struct sockaddr *)&a, sizeof a), EINPROGRESS);
    struct pollfd pf = {.fd = nb, .events = POLLOUT};
    CHECK(poll(&pf, 1, 10000) == 1, "poll after refused connect");
    vl = sizeof v;
    CHECK(getsockopt(nb, SOL_SOCKET, SO_ERROR, &v, &vl) == 0 && v == ECONNREFUSED, "SO_ERROR %d", v);
    close(nb);
    close(s);
    /* a listener and a connection to it */
    int l = listener(port);
    /* an unbound listener gets a port, as in Linux */
    int ul = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ua;
    socklen_t ual = sizeof ua;
    CHECK(listen(ul, 1) == 0 && getsockname(ul, (struct sockaddr *)&ua, &ual) == 0 && ua.sin_port != 0,
          "listen without bind picks a port");
    close(ul);
    int c = connected(port);
    FAILS(connect(c, (struct sockaddr *)&a, sizeof a), EISCONN);
    int as = accept(l, NULL, NULL);
    CHECK(as >= 0, "accept");
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == 1, "TCP_INFO");
    tl = sizeof ti;
    CHECK(getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == 10, "TCP_INFO listen");
    v = 1;
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) == 0, "TCP_NODELAY");
    v = 0;
    vl = sizeof v;
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1, "TCP_NODELAY read back");
    /* SO_RCVTIMEO: a blocking read gives up with EAGAIN */
    struct timeval tv = {.tv_usec = 200000};
    CHECK(setsockopt(as, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO");
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    FAILS(read(as, buf, sizeof buf), EAGAIN);
    gettimeofday(&t1, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    CHECK(ms >= 150 && ms < 5000, "SO_RCVTIMEO waited %ld ms", ms);
    /* FIONREAD, MSG_PEEK, a dup'ed fd names the same socket */
    int d = dup(c);
    CHECK(d >= 0 && write(d, "hello", 5) == 5, "write on dup");
    pf = (struct pollfd){.fd = as, .events = POLLIN};
    CHECK(poll(&pf, 1, 10000) == 1, "poll");
    int avail = 0;
    CHECK(ioctl(as, FIONREAD, &avail) == 0 && avail == 5, "FIONREAD %d", avail);
    CHECK(recv(as, buf, 2, MSG_PEEK) == 2 && recv(as, buf, 5, MSG_WAITALL) == 5 &&
              !memcmp(buf, "hello", 5), "peek then read");
    CHECK(close(c) == 0, "close original");
    CHECK(write(d, "x", 1) == 1, "the dup keeps the socket");
    CHECK(read(as, buf, 1) == 1, "read after dup");
    /* epoll: a VPP socket on a non-epoll fd, unknown registrations, duplicates */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    FAILS(epoll_ctl(l, EPOLL_CTL_ADD, as, &ev), EINVAL);
    FAILS(epoll_ctl(ep, EPOLL_CTL_DEL, as, &ev), ENOENT);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, as, &ev) == 0, "epoll add");
    FAILS(epoll_ctl(ep, EPOLL_CTL_ADD, as, &ev), EEXIST);
    FAILS(epoll_wait(ep, &ev, 0, 0), EINVAL);
    /* the peer closes: EOF, and a write then fails with EPIPE (SIGPIPE ignored) */
    CHECK(close(d) == 0, "close dup");
    CHECK(epoll_wait(ep, &ev, 1, 10000) == 1 && (ev.events & EPOLLIN), "EOF wakes epoll");
    CHECK(read(as, buf, sizeof buf) == 0, "EOF");
    /* closed and unknown fds */
    CHECK(close(as) == 0, "close");
    FAILS(read(as, buf, 1), EBADF);
    FAILS(close(as), EBADF);
    FAILS(write(4000, "x", 1), EBADF);
    close(ep);
    close(l);
    printf("ok: %d checks (errnos, options, dup, timeouts)\n", checks);
    return 0;
}

/* An epoll fd holding a VPP socket, nested in another epoll fd with a kernel pipe. */
static int nested(int port) {
    int l = listener(port), c = connected(port), as = accept(l, NULL, NULL);
    CHECK(as >= 0, "accept");
    int inner = epoll_create1(0), outer = epoll_create1(0), p[2];
    CHECK(inner >= 0 && outer >= 0 && pipe(p) == 0, "setup");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    CHECK(epoll_ctl(inner, EPOLL_CTL_ADD, as, &ev) == 0, "inner add");
    ev.data.u64 = 8;
    CHECK(epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev) == 0, "outer add inner");
    ev.data.u64 = 9;
    CHECK(epoll_ctl(outer, EPOLL_CTL_ADD, p[0], &ev) == 0, "outer add pipe");
    struct epoll_event out[4];
    CHECK(epoll_wait(outer, out, 4, 0) == 0, "nothing ready yet");
    CHECK(write(c, "abcd", 4) == 4, "write");
    int n = epoll_wait(outer, out, 4, 10000);
    CHECK(n == 1 && out[0].data.u64 == 8, "the outer set reports the inner one (%d)", n);
    CHECK(epoll_wait(inner, out, 4, 0) == 1 && out[0].data.u64 == 7, "the inner set reports the socket");
    char b[2];
    CHECK(read(as, b, 2) == 2, "read half");
    /* level-triggered: what is left keeps both sets readable, with no new signal from VPP */
    n = epoll_wait(outer, out, 4, 10000);
    CHECK(n == 1 && out[0].data.u64 == 8, "still readable (%d)", n);
    CHECK(read(as, b, 2) == 2, "read the rest");
    CHECK(write(p[1], "x", 1) == 1, "pipe");
    n = epoll_wait(outer, out, 4, 10000);
    CHECK(n >= 1 && out[0].data.u64 == 9, "the kernel pipe next to it (%d, %llu)", n,
          (unsigned long long)out[0].data.u64);
    close(outer);
    close(inner);
    close(as);
    close(c);
    close(l);
    printf("ok: %d checks (nested epoll)\n", checks);
    return 0;
}

/* Waiting on a VPP socket and a kernel pipe when VPP goes away (the test stops it after
 * "ready"): the socket reports EPOLLHUP|EPOLLERR and fails, the pipe keeps working. */
static int vppdies(int port) {
    signal(SIGPIPE, SIG_IGN);
    int l = listener(port), c = connected(port), as = accept(l, NULL, NULL);
    int ep = epoll_create1(0), p[2];
    CHECK(as >= 0 && ep >= 0 && pipe(p) == 0, "setup");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, as, &ev) == 0, "add");
    ev.data.u64 = 2;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0, "add pipe");
    printf("ready\n");
    fflush(stdout);
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 20000);
    CHECK(n == 1 && out[0].data.u64 == 1 && (out[0].events & (EPOLLHUP | EPOLLERR)) ==
              (EPOLLHUP | EPOLLERR), "hang-up reported (%d, %#x)", n, n > 0 ? out[0].events : 0);
    char b[4];
    FAILS(read(as, b, sizeof b), ECONNRESET);
    CHECK((errno = 0, send(as, "x", 1, MSG_NOSIGNAL) < 0 && (errno == EPIPE || errno == ECONNRESET)),
          "send fails");
    /* the other end, of which VPP said nothing before it went: found out while waiting */
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, as, NULL) == 0, "del");
    ev.data.u64 = 3;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0, "add the other end");
    n = epoll_wait(ep, out, 4, 10000);
    CHECK(n == 1 && out[0].data.u64 == 3 && (out[0].events & (EPOLLHUP | EPOLLERR)),
          "the other end hangs up too (%d)", n);
    CHECK((errno = 0, send(c, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE), "send on the other end");
    CHECK(write(p[1], "k", 1) == 1 && epoll_wait(ep, out, 4, 10000) >= 1, "the pipe still wakes");
    CHECK(read(p[0], b, 1) == 1 && b[0] == 'k', "the pipe still works");
    printf("ok: %d checks (VPP went away)\n", checks);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "fds"))
        return fds(atoi(argv[2]), atoi(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "errors"))
        return errors(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "nested"))
        return nested(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "vppdies"))
        return vppdies(atoi(argv[2]));
    fprintf(stderr, "usage: checks fds PORT FIFO | checks errors PORT | checks nested PORT\n");
    return 2;
}
