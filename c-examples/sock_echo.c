/* sock_echo: a checksummed TCP echo over plain BSD sockets (no vcl header), to run under
 * libvcl_ldpreload.so.
 *
 *   sock_echo server PORT MODE NCLIENTS     MODE: block | epoll | poll | select
 *   sock_echo client HOST PORT MODE N SIZE  MODE: block | nonblock
 *
 * The server echoes NCLIENTS connections (one at a time in block mode, all at once on
 * non-blocking sockets otherwise, with a kernel pipe in the same wait set) and exits 0.
 * The client sends N messages of SIZE bytes, reads each echo back and compares checksums. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXC 64
#define BUF (64 * 1024)

static void die(const char *what) {
    fprintf(stderr, "sock_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl");
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* A connection being echoed: bytes read but not yet written back. */
struct conn {
    int fd;
    size_t have, off;
    unsigned char buf[BUF];
};

static struct conn *conns[MAXC];
static int done_clients, pipe_seen;
static long long echoed;

/* Echo what can be echoed without blocking; returns 1 when the connection ended. */
static int serve(struct conn *c) {
    for (;;) {
        if (c->off < c->have) {
            ssize_t w = write(c->fd, c->buf + c->off, c->have - c->off);
            if (w < 0)
                return errno == EAGAIN ? 0 : (perror("write"), 1);
            c->off += (size_t)w;
            echoed += w;
            continue;
        }
        c->have = c->off = 0;
        ssize_t r = read(c->fd, c->buf, sizeof c->buf);
        if (r == 0)
            return 1;
        if (r < 0)
            return errno == EAGAIN ? 0 : (perror("read"), 1);
        c->have = (size_t)r;
    }
}

static int wants_out(int i) { return conns[i] && conns[i]->off < conns[i]->have; }

static void drop(int i) {
    close(conns[i]->fd);
    free(conns[i]);
    conns[i] = NULL;
    done_clients++;
}

static void accept_all(int lfd) {
    for (;;) {
        struct sockaddr_storage a;
        socklen_t al = sizeof a;
        int fd = accept4(lfd, (struct sockaddr *)&a, &al, SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN)
                return;
            die("accept4");
        }
        int i = 0;
        while (i < MAXC && conns[i])
            i++;
        if (i == MAXC) {
            close(fd);
            continue;
        }
        conns[i] = calloc(1, sizeof(struct conn));
        conns[i]->fd = fd;
    }
}

static void drain_pipe(int pfd) {
    char b[16];
    if (read(pfd, b, sizeof b) > 0)
        pipe_seen = 1;
}

static void run_epoll(int lfd, int pfd, int n) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1000};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll lfd");
    ev.data.u64 = 1001;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev) < 0)
        die("epoll pipe");
    int added[MAXC] = {0};
    while (done_clients < n) {
        for (int i = 0; i < MAXC; i++)
            if (conns[i]) {
                struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP | (wants_out(i) ? EPOLLOUT : 0),
                                         .data.u64 = (uint64_t)i};
                if (epoll_ctl(ep, added[i] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, conns[i]->fd, &ce) < 0)
                    die("epoll_ctl conn");
                added[i] = 1;
            }
        struct epoll_event out[16];
        int k = epoll_wait(ep, out, 16, 10000);
        if (k < 0)
            die("epoll_wait");
        if (k == 0) {
            fprintf(stderr, "sock_echo: idle 10 s\n");
            exit(1);
        }
        for (int j = 0; j < k; j++) {
            uint64_t d = out[j].data.u64;
            if (d == 1000)
                accept_all(lfd);
            else if (d == 1001)
                drain_pipe(pfd);
            else if (d < MAXC && conns[d] && serve(conns[d])) {
                added[d] = 0;
                drop((int)d);
            }
        }
    }
    close(ep);
}

static void run_poll(int lfd, int pfd, int n, int use_select) {
    while (done_clients < n) {
        struct pollfd p[MAXC + 2];
        int idx[MAXC + 2], np = 0;
        p[np] = (struct pollfd){.fd = lfd, .events = POLLIN};
        idx[np++] = -1;
        p[np] = (struct pollfd){.fd = pfd, .events = POLLIN};
        idx[np++] = -2;
        for (int i = 0; i < MAXC; i++)
            if (conns[i]) {
                p[np] = (struct pollfd){.fd = conns[i]->fd, .events = POLLIN | (wants_out(i) ? POLLOUT : 0)};
                idx[np++] = i;
            }
        int k;
        if (use_select) {
            fd_set r, w;
            FD_ZERO(&r);
            FD_ZERO(&w);
            int maxfd = 0;
            for (int j = 0; j < np; j++) {
                if (p[j].fd >= FD_SETSIZE) {
                    fprintf(stderr, "sock_echo: fd %d too high for select\n", p[j].fd);
                    exit(1);
                }
                FD_SET(p[j].fd, &r);
                if (p[j].events & POLLOUT)
                    FD_SET(p[j].fd, &w);
                if (p[j].fd > maxfd)
                    maxfd = p[j].fd;
            }
            struct timeval tv = {.tv_sec = 10};
            k = select(maxfd + 1, &r, &w, NULL, &tv);
            for (int j = 0; j < np; j++)
                p[j].revents = (short)((FD_ISSET(p[j].fd, &r) ? POLLIN : 0) | (FD_ISSET(p[j].fd, &w) ? POLLOUT : 0));
        } else {
            k = poll(p, (nfds_t)np, 10000);
        }
        if (k < 0)
            die(use_select ? "select" : "poll");
        if (k == 0) {
            fprintf(stderr, "sock_echo: idle 10 s\n");
            exit(1);
        }
        for (int j = 0; j < np; j++) {
            if (!p[j].revents)
                continue;
            if (idx[j] == -1)
                accept_all(lfd);
            else if (idx[j] == -2)
                drain_pipe(pfd);
            else if (conns[idx[j]] && serve(conns[idx[j]]))
                drop(idx[j]);
        }
    }
}

static void run_block(int lfd, int n) {
    static struct conn c;
    while (done_clients < n) {
        c.fd = accept(lfd, NULL, NULL);
        if (c.fd < 0)
            die("accept");
        int one = 1;
        if (setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            die("TCP_NODELAY");
        c.have = c.off = 0;
        while (!serve(&c))
            ;
        close(c.fd);
        done_clients++;
    }
    pipe_seen = 1;
}

static int server(int port, const char *mode, int n) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("SO_REUSEADDR");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind");
    if (listen(lfd, 128) < 0)
        die("listen");
    int acc = 0;
    socklen_t al = sizeof acc;
    if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 || !acc)
        die("SO_ACCEPTCONN");
    printf("listening on port %d (%s)\n", port, mode);
    fflush(stdout);
    int pfds[2];
    if (pipe(pfds) < 0 || write(pfds[1], "x", 1) != 1)
        die("pipe");
    if (!strcmp(mode, "block")) {
        run_block(lfd, n);
    } else {
        set_nonblock(lfd);
        if (!strcmp(mode, "epoll"))
            run_epoll(lfd, pfds[0], n);
        else
            run_poll(lfd, pfds[0], n, !strcmp(mode, "select"));
    }
    close(lfd);
    if (!pipe_seen) {
        fprintf(stderr, "sock_echo: the kernel pipe in the wait set was never reported\n");
        return 1;
    }
    printf("server: %d clients, %lld bytes echoed (%s)\n", done_clients, echoed, mode);
    return 0;
}

/* Wait until fd is ready for events (non-blocking client). */
static void await(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    int k = poll(&p, 1, 10000);
    if (k < 0)
        die("poll");
    if (k == 0) {
        fprintf(stderr, "sock_echo: client waited 10 s\n");
        exit(1);
    }
}

static int client(const char *host, int port, const char *mode, int n, size_t size) {
    int nb = !strcmp(mode, "nonblock");
    int fd = socket(AF_INET, SOCK_STREAM | (nb ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("address");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (!nb || errno != EINPROGRESS)
            die("connect");
        await(fd, POLLOUT);
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
            errno = err;
            die("connect (SO_ERROR)");
        }
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 || peer.sin_port != a.sin_port)
        die("getpeername");
    unsigned char *out = malloc(size), *in = malloc(size);
    uint64_t sent_sum = 14695981039346656037ULL, got_sum = sent_sum;
    for (int m = 0; m < n; m++) {
        for (size_t i = 0; i < size; i++)
            out[i] = (unsigned char)(m * 31 + i * 7 + (i >> 8));
        sent_sum = fnv(sent_sum, out, size);
        size_t w = 0, r = 0;
        while (r < size) {
            if (w < size) {
                ssize_t k = send(fd, out + w, size - w, MSG_NOSIGNAL);
                if (k > 0)
                    w += (size_t)k;
                else if (!(k < 0 && errno == EAGAIN))
                    die("send");
            }
            ssize_t k = recv(fd, in + r, size - r, 0);
            if (k > 0)
                r += (size_t)k;
            else if (k == 0) {
                fprintf(stderr, "sock_echo: server closed early\n");
                return 1;
            } else if (errno != EAGAIN)
                die("recv");
            else
                await(fd, (short)(POLLIN | (w < size ? POLLOUT : 0)));
        }
        got_sum = fnv(got_sum, in, size);
    }
    /* close, not shutdown(SHUT_WR): VPP's cut-through sessions have no half-close */
    if (close(fd) < 0)
        die("close");
    if (got_sum != sent_sum) {
        fprintf(stderr, "sock_echo: checksum mismatch\n");
        return 1;
    }
    printf("client: %d x %zu bytes echoed, checksum %016llx ok (%s)\n", n, size,
           (unsigned long long)got_sum, mode);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "server"))
        return server(atoi(argv[2]), argv[3], atoi(argv[4]));
    if (argc == 7 && !strcmp(argv[1], "client"))
        return client(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]), (size_t)atol(argv[6]));
    fprintf(stderr, "usage: sock_echo server PORT block|epoll|poll|select NCLIENTS\n"
                    "       sock_echo client HOST PORT block|nonblock N SIZE\n");
    return 2;
}
