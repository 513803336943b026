/* loadprobe: calls made while libmifshim.so is loading its engine, or from signal
 * handlers, for the end-to-end tests of the loader (integration-tests/tests/loader).
 * Compiled by the test (gcc -O2 -pthread); every socket call goes through the normal
 * exported symbols, so the preloaded stub sees it.
 *
 *   loadprobe threads N ADDR PORT       N threads wait at a barrier, then each makes one
 *                                       TCP connect to ADDR:PORT at the same moment and
 *                                       prints the server's line (or "fail errno=E")
 *   loadprobe child KIND ADDR PORT      a thread connects (and so starts the engine's
 *                                       load); 100 ms later the main thread creates a
 *                                       child by KIND: _Fork, clone (glibc's wrapper,
 *                                       fork-like flags) or rawfork (syscall(SYS_clone),
 *                                       which no hook sees); the child connects once and
 *                                       prints "child: LINE ms=T" or "child: fail errno=E
 *                                       ms=T", exit 0 / 3
 *   loadprobe timer ADDR PORT           a SIGALRM handler installed with the C library's
 *                                       own sigaction (past the preload) sends a datagram
 *                                       to 127.0.0.1:9 every 200 us on a socket made by a
 *                                       raw system call, while the main thread connects
 *                                       (and so loads the engine); prints the line, then
 *                                       "handler ok=N fail=M"
 *   loadprobe sigheap ADDR PORT MS      the main thread mallocs and frees for MS ms under a
 *                                       1 kHz SIGALRM whose handler (installed with plain
 *                                       sigaction) makes a UDP socket, sends one datagram to
 *                                       ADDR:PORT and closes it; prints "handler ok=N
 *                                       fail=M", then one UDP exchange with ADDR:PORT from
 *                                       the main thread and the server's line
 *   loadprobe engine-after ACTION       does ACTION, then prints "engine=loaded" or
 *                                       "engine=absent" (whether libmifshim_engine.so is
 *                                       mapped): none, sigaction-handler, sigaction-ign,
 *                                       sigaction-dfl, signal-handler, bsd_signal-handler,
 *                                       sysv_signal-handler, sigset-handler, sigset-hold,
 *                                       socket-unix, socket-inet, socket-inet6
 *
 * Exit 0 when everything worked, 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_storage dest;
static socklen_t dest_len;

static void usage(void) {
    fprintf(stderr, "usage: loadprobe threads N ADDR PORT | child KIND ADDR PORT | "
                    "timer ADDR PORT | sigheap ADDR PORT MS | engine-after ACTION\n");
    exit(2);
}

static void parse_dest(const char *addr, const char *port) {
    /* inet_pton, not getaddrinfo: a name lookup would load the engine first. */
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

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One TCP connect to dest; the server's line (without its newline) into out, or
 * "fail errno=E". Returns 0 on success. Uses only write-safe calls after fork. */
static int tcp_line(char *out, size_t cap) {
    int s = socket(dest.ss_family, SOCK_STREAM, 0);
    if (s < 0) {
        snprintf(out, cap, "fail socket errno=%d", errno);
        return -1;
    }
    if (connect(s, (struct sockaddr *)&dest, dest_len) != 0) {
        snprintf(out, cap, "fail errno=%d", errno);
        close(s);
        return -1;
    }
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(s, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = 0;
    close(s);
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
    if (n == 0) {
        snprintf(out, cap, "fail empty");
        return -1;
    }
    return 0;
}

static void say(const char *line) {
    /* One write per line: threads and children never interleave within a line. */
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s\n", line);
    (void)!write(1, buf, (size_t)n);
}

/* ---- threads ---------------------------------------------------------------------- */

static pthread_barrier_t barrier;
static int failures;

static void *connect_thread(void *arg) {
    (void)arg;
    char line[256];
    pthread_barrier_wait(&barrier);
    if (tcp_line(line, sizeof line) != 0)
        __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    say(line);
    return NULL;
}

static int run_threads(int n) {
    pthread_t t[64];
    if (n < 1 || n > 64)
        usage();
    pthread_barrier_init(&barrier, NULL, (unsigned)n);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, connect_thread, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("threads=%d failures=%d\n", n, failures);
    return failures == 0 ? 0 : 1;
}

/* ---- child ------------------------------------------------------------------------ */

static int child_work(void *arg) {
    (void)arg;
    char line[256], msg[400];
    double t0 = now_ms();
    int r = tcp_line(line, sizeof line);
    snprintf(msg, sizeof msg, "child: %s ms=%.0f", line, now_ms() - t0);
    say(msg);
    return r == 0 ? 0 : 3;
}

static void *loader_thread(void *arg) {
    char *line = arg;
    if (tcp_line(line, 256) != 0)
        __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int run_child(const char *kind) {
    static char line[256];
    pthread_t t;
    fflush(stdout);
    pthread_create(&t, NULL, loader_thread, line);
    usleep(100 * 1000);
    pid_t pid;
    if (strcmp(kind, "_Fork") == 0) {
        pid = _Fork();
        if (pid == 0)
            _exit(child_work(NULL));
    } else if (strcmp(kind, "clone") == 0) {
        size_t sz = 256 * 1024;
        char *stack = malloc(sz);
        pid = clone(child_work, stack + sz, SIGCHLD, NULL);
    } else if (strcmp(kind, "rawfork") == 0) {
        pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        if (pid == 0)
            _exit(child_work(NULL));
    } else {
        usage();
    }
    if (pid < 0) {
        perror("child");
        return 1;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    pthread_join(t, NULL);
    printf("parent: %s\n", line);
    printf("child status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return (failures == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : 1;
}

/* ---- timer ------------------------------------------------------------------------ */

static volatile sig_atomic_t h_ok, h_fail;
static int h_sock = -1;
static struct sockaddr_in h_lo;

static void send_handler(int sig) {
    (void)sig;
    int saved = errno;
    if (sendto(h_sock, "x", 1, 0, (struct sockaddr *)&h_lo, sizeof h_lo) == 1)
        h_ok++;
    else
        h_fail++;
    errno = saved;
}

static int run_timer(void) {
    /* The socket and the handler come from paths the preload does not see, so that
     * nothing has loaded the engine when the timer starts. */
    h_sock = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
    h_lo.sin_family = AF_INET;
    h_lo.sin_port = htons(9);
    h_lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    int (*real_sigaction)(int, const struct sigaction *, struct sigaction *) =
        libc ? dlsym(libc, "sigaction") : NULL;
    if (h_sock < 0 || !real_sigaction) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    struct sigaction sa = {.sa_handler = send_handler, .sa_flags = SA_RESTART};
    real_sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    char line[256];
    int r = tcp_line(line, sizeof line);
    /* Let the handler run a while after the load. */
    double t0 = now_ms();
    while (now_ms() - t0 < 100)
        ;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    say(line);
    printf("handler ok=%d fail=%d\n", (int)h_ok, (int)h_fail);
    return (r == 0 && h_fail == 0 && h_ok > 0) ? 0 : 1;
}

/* ---- sigheap ---------------------------------------------------------------------- */

static void udp_handler(int sig) {
    (void)sig;
    int saved = errno;
    int s = socket(dest.ss_family, SOCK_DGRAM, 0);
    if (s >= 0 && sendto(s, "h", 1, 0, (struct sockaddr *)&dest, dest_len) == 1)
        h_ok++;
    else
        h_fail++;
    if (s >= 0)
        close(s);
    errno = saved;
}

static int udp_exchange(char *out, size_t cap) {
    int s = socket(dest.ss_family, SOCK_DGRAM, 0);
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (sendto(s, "m", 1, 0, (struct sockaddr *)&dest, dest_len) != 1) {
        snprintf(out, cap, "fail sendto errno=%d", errno);
        close(s);
        return -1;
    }
    ssize_t n = recv(s, out, cap - 1, 0);
    close(s);
    if (n <= 0) {
        snprintf(out, cap, "fail recv errno=%d", errno);
        return -1;
    }
    out[n] = 0;
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
    return 0;
}

static int run_sigheap(int ms) {
    struct sigaction sa = {.sa_handler = udp_handler, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    void *keep[64] = {0};
    unsigned seed = 1;
    double t0 = now_ms();
    while (now_ms() - t0 < ms) {
        for (int i = 0; i < 64; i++) {
            seed = seed * 1103515245 + 12345;
            free(keep[i]);
            keep[i] = malloc(1100 + (seed >> 16) % 7000); /* past the tcache: bins */
            if (keep[i])
                memset(keep[i], i, 16);
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    printf("handler ok=%d fail=%d\n", (int)h_ok, (int)h_fail);
    char line[256];
    int r = udp_exchange(line, sizeof line);
    printf("%s\n", line);
    return (r == 0 && h_fail == 0 && h_ok > 0) ? 0 : 1;
}

/* ---- engine-after ----------------------------------------------------------------- */

static void noop_handler(int sig) { (void)sig; }

/* sigset is obsolete, and still exported and used. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

extern __sighandler_t bsd_signal(int, __sighandler_t);
extern __sighandler_t sysv_signal(int, __sighandler_t);

static int engine_after(const char *action) {
    struct sigaction sa = {.sa_handler = noop_handler};
    if (strcmp(action, "none") == 0) {
    } else if (strcmp(action, "sigaction-handler") == 0) {
        sigaction(SIGUSR1, &sa, NULL);
    } else if (strcmp(action, "sigaction-ign") == 0) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGUSR1, &sa, NULL);
    } else if (strcmp(action, "sigaction-dfl") == 0) {
        sa.sa_handler = SIG_DFL;
        sigaction(SIGUSR1, &sa, NULL);
    } else if (strcmp(action, "signal-handler") == 0) {
        signal(SIGUSR1, noop_handler);
    } else if (strcmp(action, "bsd_signal-handler") == 0) {
        bsd_signal(SIGUSR1, noop_handler);
    } else if (strcmp(action, "sysv_signal-handler") == 0) {
        sysv_signal(SIGUSR1, noop_handler);
    } else if (strcmp(action, "sigset-handler") == 0) {
        sigset(SIGUSR1, noop_handler);
    } else if (strcmp(action, "sigset-hold") == 0) {
        sigset(SIGUSR1, SIG_HOLD);
    } else if (strcmp(action, "socket-unix") == 0) {
        close(socket(AF_UNIX, SOCK_DGRAM, 0));
    } else if (strcmp(action, "socket-inet") == 0) {
        close(socket(AF_INET, SOCK_DGRAM, 0));
    } else if (strcmp(action, "socket-inet6") == 0) {
        close(socket(AF_INET6, SOCK_DGRAM, 0));
    } else {
        usage();
    }
    FILE *f = fopen("/proc/self/maps", "r");
    char l[1024];
    int loaded = 0;
    while (f && fgets(l, sizeof l, f))
        if (strstr(l, "libmifshim_engine.so"))
            loaded = 1;
    if (f)
        fclose(f);
    printf("engine=%s\n", loaded ? "loaded" : "absent");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "threads") == 0 && argc == 5) {
        parse_dest(argv[3], argv[4]);
        return run_threads(atoi(argv[2]));
    }
    if (strcmp(argv[1], "child") == 0 && argc == 5) {
        parse_dest(argv[3], argv[4]);
        return run_child(argv[2]);
    }
    if (strcmp(argv[1], "timer") == 0 && argc == 4) {
        parse_dest(argv[2], argv[3]);
        return run_timer();
    }
    if (strcmp(argv[1], "engine-after") == 0 && argc == 3)
        return engine_after(argv[2]);
    if (strcmp(argv[1], "sigheap") == 0 && argc == 5) {
        parse_dest(argv[2], argv[3]);
        return run_sigheap(atoi(argv[4]));
    }
    usage();
}
