/* getaddrinfo_a probe: GAI_WAIT, GAI_NOWAIT with a signal and with a thread, gai_suspend,
 * gai_error, gai_cancel. Prints "MODE ADDR" per result, "MODE error N" per failure.
 * usage: gaia 4|6 NAME */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t sig_value, thread_value;

static void on_signal(int s, siginfo_t *si, void *u) {
    (void)s, (void)u;
    sig_value = si->si_value.sival_int;
}

static void on_thread(union sigval v) { thread_value = v.sival_int; }

static void show(const char *mode, struct gaicb *g) {
    int e = gai_error(g);
    if (e != 0) {
        printf("%s error %d\n", mode, e);
        return;
    }
    for (struct addrinfo *ai = g->ar_result; ai; ai = ai->ai_next) {
        char buf[64];
        const void *a = ai->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, a, buf, sizeof buf);
        printf("%s %s\n", mode, buf);
    }
    freeaddrinfo(g->ar_result);
    g->ar_result = NULL;
}

static void wait_all(struct gaicb **list, int n) {
    for (int round = 0; round < 100; round++) {
        /* gai_suspend returns as soon as one listed request is done: list the
         * pending ones only. */
        const struct gaicb *pending[8] = {0};
        int busy = 0;
        for (int i = 0; i < n && i < 8; i++)
            if (gai_error(list[i]) == EAI_INPROGRESS) {
                pending[i] = list[i];
                busy = 1;
            }
        if (!busy)
            return;
        struct timespec t = {0, 100 * 1000 * 1000};
        int r = gai_suspend(pending, n, &t);
        if (r != 0 && r != EAI_AGAIN && r != EAI_INTR && r != EAI_ALLDONE)
            printf("gai_suspend %d\n", r);
    }
    printf("timed out\n");
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = argv[1][0] == '6' ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    const char *name = argv[2];

    struct gaicb a = {.ar_name = name, .ar_service = "80", .ar_request = &hints};
    struct gaicb *list[2] = {&a, NULL};
    int r = getaddrinfo_a(GAI_WAIT, list, 1, NULL);
    printf("wait rc %d\n", r);
    show("wait", &a);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN, &sa, NULL);
    struct gaicb b = {.ar_name = name, .ar_service = "80", .ar_request = &hints};
    struct gaicb c = {.ar_name = "nope.mif.test", .ar_service = "80", .ar_request = &hints};
    struct gaicb *two[2] = {&b, &c};
    struct sigevent se;
    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_SIGNAL;
    se.sigev_signo = SIGRTMIN;
    se.sigev_value.sival_int = 7;
    r = getaddrinfo_a(GAI_NOWAIT, two, 2, &se);
    printf("nowait rc %d\n", r);
    wait_all(two, 2);
    for (int i = 0; i < 50 && !sig_value; i++)
        usleep(20 * 1000);
    show("signal", &b);
    show("signal-nope", &c);
    printf("signal value %d\n", (int)sig_value);
    printf("cancel done %d\n", gai_cancel(&b) == EAI_ALLDONE);

    struct gaicb d = {.ar_name = name, .ar_service = "80", .ar_request = &hints};
    struct gaicb *one[1] = {&d};
    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_THREAD;
    se.sigev_notify_function = on_thread;
    se.sigev_value.sival_int = 9;
    r = getaddrinfo_a(GAI_NOWAIT, one, 1, &se);
    printf("thread rc %d\n", r);
    wait_all(one, 1);
    for (int i = 0; i < 50 && !thread_value; i++)
        usleep(20 * 1000);
    show("thread", &d);
    printf("thread value %d\n", (int)thread_value);
    return 0;
}
