/* alarm() + siglongjmp() out of a getaddrinfo that waits on a silent server, then a
 * second getaddrinfo and a TCP connect in the same thread.
 * usage: jmp FIRST-NAME SECOND-NAME PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static sigjmp_buf env;

static void on_alarm(int s) {
    (void)s;
    siglongjmp(env, 1);
}

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    signal(SIGALRM, on_alarm);
    if (sigsetjmp(env, 1) == 0) {
        alarm(1);
        int r = getaddrinfo(argv[1], argv[3], &hints, &res);
        printf("first returned %d\n", r);
    } else {
        printf("first interrupted\n");
    }
    alarm(0);
    int r = getaddrinfo(argv[2], argv[3], &hints, &res);
    if (r != 0) {
        printf("second error %d\n", r);
        return 1;
    }
    char buf[256];
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf, sizeof buf);
    printf("second %s\n", buf);
    fflush(stdout);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9000)};
    inet_pton(AF_INET, "203.0.113.10", &to.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        perror("connect");
        return 1;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = 0;
        fputs(buf, stdout);
    }
    return 0;
}
