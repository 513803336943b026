/* forkstorm: a fork/thread deadlock test in the style of socket_wrapper's
 * tests/test_fork_thread_deadlock.c, for the end-to-end tests of the loader
 * (integration-tests/tests/loader). Compiled by the test (gcc -O2 -pthread).
 *
 *   forkstorm WHEN FORKS ADDR PORT NAME EXPECT_UPSTREAM EXPECT_ADDR
 *
 * Six threads hammer the shim until the main thread is done: two make TCP connects to
 * ADDR:PORT (the testbed server writes "upstream=NAME peer=..." and closes), two send
 * UDP datagrams to ADDR:PORT and read the answer, two call getaddrinfo(NAME) (the
 * family of ADDR) and look for EXPECT_ADDR among the answers. Meanwhile the main
 * thread forks FORKS times, at most 8 children at once; each child makes one connect
 * (even children) or one sendto + recv (odd children) and exits 0 when the answer
 * named EXPECT_UPSTREAM, 1 when another upstream answered, 2 when the call failed;
 * each child has a 10 s alarm, so a child that deadlocks dies of SIGALRM.
 *
 * WHEN is "before": the main thread starts the threads and forks at once, nothing
 * having loaded the shim's engine yet (the first fork's prepare handler and the
 * threads' first calls race to load it); or "after": the main thread makes one connect
 * first, so every fork happens with the engine loaded.
 *
 * Prints one summary line per kind of work and the main thread's own last answer;
 * exits 0 when every child exited 0 and every thread call succeeded with the expected
 * answer, 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sockaddr_storage dest;
static socklen_t dest_len;
static const char *name, *expect_up, *expect_addr;
static volatile int stop;

struct counts {
    int ok, bad;
};
static struct counts c_connect, c_sendto, c_gai;

static void add(int *p) { __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST); }

/* 0: the answer named the expected upstream; 1: another; 2: the call failed. */
static int check_line(const char *buf) {
    char want[64];
    snprintf(want, sizeof want, "upstream=%s ", expect_up);
    return strncmp(buf, want, strlen(want)) == 0 ? 0 : 1;
}

static int tcp_once(char *out, size_t cap) {
    int s = socket(dest.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 2;
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&dest, dest_len) != 0) {
        snprintf(out, cap, "connect errno=%d", errno);
        close(s);
        return 2;
    }
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(s, out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(s);
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
    return n ? check_line(out) : 2;
}

static int udp_once(char *out, size_t cap) {
    int s = socket(dest.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 2;
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (sendto(s, "f", 1, 0, (struct sockaddr *)&dest, dest_len) != 1) {
        snprintf(out, cap, "sendto errno=%d", errno);
        close(s);
        return 2;
    }
    ssize_t n = recv(s, out, cap - 1, 0);
    close(s);
    if (n <= 0) {
        snprintf(out, cap, "recv errno=%d", errno);
        return 2;
    }
    out[n] = 0;
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
    return check_line(out);
}

static int gai_once(void) {
    struct addrinfo hints = {.ai_family = dest.ss_family, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return 2;
    int found = 1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        char buf[INET6_ADDRSTRLEN];
        const void *p = a->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if (inet_ntop(a->ai_family, p, buf, sizeof buf) && strcmp(buf, expect_addr) == 0)
            found = 0;
    }
    freeaddrinfo(res);
    return found;
}

static void *worker(void *arg) {
    long kind = (long)arg;
    char buf[256];
    while (!stop) {
        int r;
        struct counts *c;
        switch (kind) {
        case 0:
            r = tcp_once(buf, sizeof buf);
            c = &c_connect;
            break;
        case 1:
            r = udp_once(buf, sizeof buf);
            c = &c_sendto;
            break;
        default:
            r = gai_once();
            c = &c_gai;
            break;
        }
        if (r == 0) {
            add(&c->ok);
        } else {
            add(&c->bad);
            if (r == 2 && kind < 2)
                fprintf(stderr, "thread %ld: %s\n", kind, buf);
        }
    }
    return NULL;
}

static int child(int i) {
    char buf[256];
    alarm(10);
    int r = (i % 2 == 0) ? tcp_once(buf, sizeof buf) : udp_once(buf, sizeof buf);
    if (r != 0) {
        char msg[320];
        int n = snprintf(msg, sizeof msg, "child %d: %s (%d)\n", i, buf, r);
        (void)!write(2, msg, (size_t)n);
    }
    return r;
}

static void parse_dest(const char *addr, const char *port) {
    struct sockaddr_in *a4 = (struct sockaddr_in *)&dest;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&dest;
    memset(&dest, 0, sizeof dest);
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)atoi(port));
        dest_len = sizeof *a4;
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)atoi(port));
        dest_len = sizeof *a6;
    } else {
        fprintf(stderr, "bad address %s\n", addr);
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: forkstorm before|after FORKS ADDR PORT NAME EXPECT_UPSTREAM "
                        "EXPECT_ADDR\n");
        return 2;
    }
    int after = strcmp(argv[1], "after") == 0;
    if (!after && strcmp(argv[1], "before") != 0)
        return 2;
    int forks = atoi(argv[2]);
    parse_dest(argv[3], argv[4]);
    name = argv[5];
    expect_up = argv[6];
    expect_addr = argv[7];
    setvbuf(stdout, NULL, _IONBF, 0);
    char buf[256];
    if (after && tcp_once(buf, sizeof buf) != 0) {
        fprintf(stderr, "first connect: %s\n", buf);
        return 1;
    }
    pthread_t t[6];
    for (long i = 0; i < 6; i++)
        pthread_create(&t[i], NULL, worker, (void *)(i / 2));
    int exited_ok = 0, exited_bad = 0, signaled = 0, fork_failed = 0, running = 0;
    for (int i = 0; i < forks || running > 0;) {
        if (i < forks && running < 8) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(child(i));
            if (pid < 0)
                fork_failed++;
            else
                running++;
            i++;
            continue;
        }
        int st;
        pid_t w = wait(&st);
        if (w < 0)
            break;
        running--;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            exited_ok++;
        else if (WIFEXITED(st))
            exited_bad++;
        else
            signaled++;
    }
    stop = 1;
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    printf("children forks=%d ok=%d bad=%d signaled=%d fork_failed=%d\n", forks, exited_ok,
           exited_bad, signaled, fork_failed);
    printf("threads connect ok=%d bad=%d sendto ok=%d bad=%d getaddrinfo ok=%d bad=%d\n",
           c_connect.ok, c_connect.bad, c_sendto.ok, c_sendto.bad, c_gai.ok, c_gai.bad);
    int r = tcp_once(buf, sizeof buf);
    printf("%s\n", buf);
    int good = exited_ok == forks && c_connect.bad + c_sendto.bad + c_gai.bad == 0 &&
               c_connect.ok > 0 && c_sendto.ok > 0 && c_gai.ok > 0 && r == 0;
    printf("forkstorm %s\n", good ? "ok" : "FAILED");
    return good ? 0 : 1;
}
