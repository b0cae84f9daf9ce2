/* Threads and VPP sockets under libvcl_ldpreload.so (ldpreload/tests/threads.rs):
 *   threads server PORT N    the main thread accepts N connections; each is echoed by a new
 *                            thread (blocking calls), which then exits
 *   threads client PORT K M  K threads: half connect their own socket, half get one the main
 *                            thread created and connected; each echoes M messages
 * Sockets created by one thread are used by others; threads come and go. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "threads: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void *echo(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0)
            break;
        if (r < 0)
            die("server read");
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(fd, buf + off, (size_t)(r - off));
            if (w <= 0)
                die("server write");
            off += w;
        }
    }
    close(fd);
    return NULL;
}

static int server(int port, int n) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 64) < 0)
        die("listen");
    printf("listening on port %d\n", port);
    fflush(stdout);
    pthread_t t[256];
    for (int i = 0; i < n; i++) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0)
            die("accept");
        if (pthread_create(&t[i], NULL, echo, (void *)(intptr_t)fd))
            die("pthread_create");
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    close(l);
    printf("server: %d connections echoed by %d threads\n", n, n);
    return 0;
}

static int port_, msgs;

static int connect_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port_);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    return fd;
}

static void *client(void *arg) {
    int fd = (int)(intptr_t)arg;
    if (fd < 0)
        fd = connect_one();
    char out[3000], in[3000];
    for (int m = 0; m < msgs; m++) {
        for (size_t i = 0; i < sizeof out; i++)
            out[i] = (char)(m + i * 13 + fd);
        if (send(fd, out, sizeof out, MSG_NOSIGNAL) != (ssize_t)sizeof out)
            die("client send");
        if (recv(fd, in, sizeof in, MSG_WAITALL) != (ssize_t)sizeof in)
            die("client recv");
        if (memcmp(in, out, sizeof in)) {
            fprintf(stderr, "threads: echo mismatch\n");
            exit(1);
        }
    }
    close(fd);
    return NULL;
}

static int clients(int port, int k, int m) {
    port_ = port;
    msgs = m;
    pthread_t t[256];
    for (int i = 0; i < k; i++) {
        /* odd threads get a socket the main thread made */
        intptr_t fd = i % 2 ? connect_one() : -1;
        if (pthread_create(&t[i], NULL, client, (void *)fd))
            die("pthread_create");
    }
    for (int i = 0; i < k; i++)
        pthread_join(t[i], NULL);
    printf("client: %d threads x %d echoes ok\n", k, m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "server"))
        return server(atoi(argv[2]), atoi(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "client"))
        return clients(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: threads server PORT N | threads client PORT K M\n");
    return 2;
}
