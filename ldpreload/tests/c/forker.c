/* nginx's model under libvcl_ldpreload.so (ldpreload/tests/fork.rs):
 *   forker PORT NCHILD
 * The parent listens, then forks NCHILD children and only waits (it never accepts). Each child
 * waits on the inherited listener with epoll, accepts, echoes the connection with blocking
 * calls and says "child PID served N". Children die with the parent. Before that, system()
 * and a child that exits at once must leave the listener alone: connects to it keep
 * succeeding for a while after that child is gone (they land in the parent's queue).
 * The parent says "listening" once every child has added the listener to its epoll set: VPP
 * queues accepts per worker, so a connection made before any child took the listener over
 * would be the parent's, which never accepts (as with upstream's shim). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "forker %d: %s: %s\n", getpid(), what, strerror(errno));
    exit(1);
}

static void child(int l, int ready) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
        die("prctl");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
        die("epoll");
    if (write(ready, "r", 1) != 1)
        die("ready");
    close(ready);
    int served = 0;
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) < 0)
            die("epoll_wait");
        int fd = accept(l, NULL, NULL);
        if (fd < 0) {
            if (errno == EAGAIN)
                continue;
            die("accept");
        }
        char buf[16384];
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0)
            for (ssize_t off = 0; off < r;) {
                ssize_t w = write(fd, buf + off, (size_t)(r - off));
                if (w <= 0)
                    die("write");
                off += w;
            }
        if (r < 0)
            die("read");
        close(fd);
        printf("child %d served %d\n", getpid(), ++served);
        fflush(stdout);
    }
}

/* forker probe PORT: a non-blocking connect every 20 ms for 1 s (observing a window over
 * time: nothing to wait for). Each must not fail; whether it completes within its 20 ms does
 * not matter (over cut-through VPP connects once the parent, busy in system(), answers). */
static int probe(int port) {
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 50; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c < 0)
            die("probe socket");
        if (connect(c, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)
            die("probe connect");
        struct pollfd p = {.fd = c, .events = POLLOUT};
        int e = 0;
        socklen_t len = sizeof e;
        if (poll(&p, 1, 20) < 0 || getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
            die("probe poll");
        if (e != 0) {
            errno = e;
            die("probe connect");
        }
        close(c);
        if (p.revents == 0)
            continue;
        usleep(20000);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "probe") == 0)
        return probe(atoi(argv[2]));
    if (argc != 3) {
        fprintf(stderr, "usage: forker PORT NCHILD\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 128) < 0)
        die("listen");
    if (fcntl(l, F_SETFL, O_NONBLOCK) < 0)
        die("fcntl");
    /* a child that only runs a command costs nothing and breaks nothing */
    if (system("exit 0") != 0)
        die("system");
    pid_t k = fork();
    if (k == 0)
        _exit(0);
    if (k < 0 || waitpid(k, NULL, 0) != k)
        die("fork and exit");
    /* the listener still takes connections once VPP has seen that child go (another
     * process probes: VPP's cut-through does not connect an app to itself) */
    char probe[64];
    snprintf(probe, sizeof probe, "/proc/%d/exe probe %d", getpid(), port);
    if (system(probe) != 0)
        die("the listener refused connects after a child exited");
    int ready[2];
    if (pipe(ready) < 0)
        die("pipe");
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0)
            die("fork");
        if (p == 0) {
            close(ready[0]);
            child(l, ready[1]);
        }
    }
    close(ready[1]);
    for (int i = 0; i < n; i++) {
        char c;
        if (read(ready[0], &c, 1) != 1)
            die("a child never got ready");
    }
    printf("listening on port %d with %d children\n", port, n);
    fflush(stdout);
    while (wait(NULL) > 0)
        ;
    return 0;
}
