/* fork while other threads are inside the shim (ldpreload/tests/fork.rs):
 *   forkstorm NFORK
 * Four threads hammer VPP sockets (socket, options, epoll_ctl on a shared epoll fd, bind,
 * listen, close) and the options of one shared listener, while the main thread forks NFORK
 * times. Each child makes socket calls (a new socket, an option of the inherited listener,
 * an epoll set) and exits; a child that has not exited within 10 s counts as hung (a lock
 * another thread held at fork; the run stops there). Prints "forks N hung H failed F". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int listener, shared_ep;
static atomic_int stop;

static void die(const char *what) {
    fprintf(stderr, "forkstorm %d: %s: %s\n", getpid(), what, strerror(errno));
    exit(1);
}

static void *hammer(void *arg) {
    (void)arg;
    int one = 1, v;
    socklen_t len = sizeof v;
    while (!atomic_load(&stop)) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            die("thread socket");
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(listener, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        getsockopt(listener, SOL_SOCKET, SO_KEEPALIVE, &v, &len);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
        if (epoll_ctl(shared_ep, EPOLL_CTL_ADD, s, &ev) < 0)
            die("thread epoll_ctl");
        epoll_wait(shared_ep, &ev, 1, 0);
        epoll_ctl(shared_ep, EPOLL_CTL_DEL, s, NULL);
        close(s);
    }
    return NULL;
}

/* the child: socket calls, then exit (1 if one failed) */
static void child(void) {
    int one = 1, v;
    socklen_t len = sizeof v;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    int ok = s >= 0 && ep >= 0 &&
             setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
             getsockopt(listener, SOL_SOCKET, SO_KEEPALIVE, &v, &len) == 0 &&
             epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0 && close(s) == 0;
    _exit(ok ? 0 : 1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: forkstorm NFORK\n");
        return 2;
    }
    int n = atoi(argv[1]);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(listener, 16) < 0)
        die("listen");
    shared_ep = epoll_create1(EPOLL_CLOEXEC);
    if (shared_ep < 0)
        die("epoll_create1");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, hammer, NULL) != 0)
            die("pthread_create");
    int hung = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0)
            die("fork");
        if (p == 0)
            child();
        int status = 0;
        double deadline = now() + 10;
        pid_t r;
        while ((r = waitpid(p, &status, WNOHANG)) == 0 && now() < deadline)
            usleep(2000); /* polling a child's exit */
        if (r == 0) {
            kill(p, SIGKILL);
            waitpid(p, &status, 0);
            hung++;
            fprintf(stderr, "forkstorm: child %d of %d hung\n", i, n);
            break; /* one is enough (and keeps the run within the test's deadline) */
        } else if (r != p || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed++;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    printf("forks %d hung %d failed %d\n", n, hung, failed);
    return hung || failed ? 1 : 0;
}
