/* leak.c: the patterns of issue 9 that made traffic leave by the default route, as a
 * real program makes them. Built by the end-to-end tests (tests/e2e_leak.rs) with gcc.
 *
 *   leak MODE ADDR PORT [ARGS]
 *
 * Every reply of the testbed's UDP/TCP servers ("upstream=NAME peer=...") is printed
 * on its own line; the test checks which upstream answered and counts packets on the
 * other uplinks. Exit 0 when every step worked, 1 otherwise (with a line saying why). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <resolv.h>
#include <arpa/nameser.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <linux/filter.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/time.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sockaddr_storage dst;
static const char *dst_addr, *dst_port; /* as given on the command line */
static socklen_t dstlen;
static int fam;

static void die(const char *what) {
    printf("FAILED %s: %s\n", what, strerror(errno));
    fflush(stdout);
    exit(1);
}

static void parse(const char *addr, const char *port) {
    memset(&dst, 0, sizeof dst);
    struct sockaddr_in *a4 = (void *)&dst;
    struct sockaddr_in6 *a6 = (void *)&dst;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(atoi(port));
        dstlen = sizeof *a4;
        fam = AF_INET;
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(atoi(port));
        dstlen = sizeof *a6;
        fam = AF_INET6;
    } else {
        fprintf(stderr, "bad address %s\n", addr);
        exit(2);
    }
}

static int udp(void) {
    int s = socket(fam, SOCK_DGRAM, 0);
    if (s < 0) die("socket");
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
}

/* One datagram to the destination and its reply, printed. */
static void ask(int s, const char *tag) {
    if (sendto(s, tag, strlen(tag), 0, (void *)&dst, dstlen) < 0) die("sendto");
    char buf[512];
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    if (n < 0) die("recv");
    buf[n] = 0;
    printf("%s", buf);
    if (n == 0 || buf[n - 1] != '\n') printf("\n");
    fflush(stdout);
}

/* The loopback address of the destination's family, port 8125 (nobody listens). */
static socklen_t loopback(struct sockaddr_storage *lo) {
    memset(lo, 0, sizeof *lo);
    if (fam == AF_INET) {
        struct sockaddr_in *a = (void *)lo;
        a->sin_family = AF_INET;
        a->sin_port = htons(8125);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof *a;
    }
    struct sockaddr_in6 *a = (void *)lo;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(8125);
    a->sin6_addr = in6addr_loopback;
    return sizeof *a;
}

/* One datagram to that loopback address (only that it is sent, and by which path). */
static void to_loopback(int s) {
    struct sockaddr_storage lo;
    socklen_t len = loopback(&lo);
    if (sendto(s, "stat:1|c", 8, 0, (void *)&lo, len) < 0) die("sendto loopback");
}

static void tcp_ask(int s) {
    if (connect(s, (void *)&dst, dstlen) < 0) die("connect");
    char buf[512];
    ssize_t n = read(s, buf, sizeof buf - 1);
    if (n <= 0) die("read");
    buf[n] = 0;
    printf("%s", buf);
    if (buf[n - 1] != '\n') printf("\n");
    fflush(stdout);
}

/* --- modes ------------------------------------------------------------------------ */

/* Promote (two datagrams), share by dup, the other fd sends to loopback, then more
 * datagrams on the first fd. */
static int dup_exempt(void) {
    int s = udp();
    ask(s, "one");
    ask(s, "two");
    int d = dup(s);
    if (d < 0) die("dup");
    to_loopback(d);
    for (int i = 0; i < 3; i++) ask(s, "after");
    return 0;
}

/* Promote, fork; the child sends to loopback (a statsd client) and exits; then the
 * parent sends more. */
static int fork_exempt(void) {
    int s = udp();
    ask(s, "one");
    ask(s, "two");
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        to_loopback(s);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    for (int i = 0; i < 3; i++) ask(s, "after");
    return 0;
}

/* connect, then connect(AF_UNSPEC) (a UDP "disconnect"), then unconnected sends. */
static int disconnect_mode(void) {
    int s = udp();
    if (connect(s, (void *)&dst, dstlen) < 0) die("connect");
    if (send(s, "c", 1, 0) < 0) die("send");
    char buf[512];
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    if (n < 0) die("recv");
    buf[n] = 0;
    printf("%s", buf);
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    if (connect(s, &unspec, sizeof unspec) < 0) die("connect AF_UNSPEC");
    for (int i = 0; i < 3; i++) ask(s, "after-disconnect");
    return 0;
}

/* An fd closed where no hook sees it (fclose(fdopen()) or close_range), its number
 * reused by fcntl(F_DUPFD) for a new socket, which then connects. */
static int reuse_mode(const char *how) {
    int a = socket(fam, SOCK_STREAM, 0);
    if (a < 0) die("socket");
    tcp_ask(a); /* bound to the chosen interface by the shim */
    int b = socket(fam, SOCK_STREAM, 0);
    if (b < 0) die("socket");
    if (!strcmp(how, "fdopen")) {
        FILE *f = fdopen(a, "r");
        if (!f) die("fdopen");
        fclose(f);
    } else {
        if (close_range(a, a, 0) != 0) die("close_range");
    }
    int c = fcntl(b, F_DUPFD, a);
    if (c != a) die("F_DUPFD did not reuse the number");
    close(b);
    tcp_ask(c);
    return 0;
}

/* A dual-stack socket whose IPV6_UNICAST_IF the program set (to IFNAME): IPv4-mapped
 * datagrams go by IP_UNICAST_IF and must still be steered. */
static int app_uc6(const char *ifname) {
    if (fam != AF_INET) {
        fprintf(stderr, "app-uc6 takes an IPv4 destination\n");
        return 2;
    }
    struct sockaddr_in a4 = *(struct sockaddr_in *)&dst;
    struct sockaddr_in6 m = {.sin6_family = AF_INET6, .sin6_port = a4.sin_port};
    m.sin6_addr.s6_addr[10] = 0xff;
    m.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&m.sin6_addr.s6_addr[12], &a4.sin_addr, 4);
    memcpy(&dst, &m, sizeof m);
    dstlen = sizeof m;
    fam = AF_INET6;
    int s = udp();
    int off = 0;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    int idx = htonl(if_nametoindex(ifname)); /* network byte order, as IP_UNICAST_IF */
    if (idx == 0) die("if_nametoindex");
    if (setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_IF, &idx, sizeof idx) < 0) die("IPV6_UNICAST_IF");
    for (int i = 0; i < 3; i++) ask(s, "mapped");
    return 0;
}

/* A signal handler sends while its thread is inside a hook (getaddrinfo of a name
 * whose server never answers). */
static int sig_sock = -1;
static volatile sig_atomic_t sig_sent;
static void on_alarm(int sig) {
    (void)sig;
    if (sendto(sig_sock, "from-handler", 12, 0, (void *)&dst, dstlen) >= 0) sig_sent = 1;
}
static int signal_send(const char *name) {
    sig_sock = udp();
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {0, 300000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct addrinfo *r = NULL;
    int e = getaddrinfo(name, "80", NULL, &r);
    printf("getaddrinfo=%d sent=%d\n", e, (int)sig_sent);
    if (!sig_sent) {
        printf("FAILED the handler did not send\n");
        return 1;
    }
    char buf[512];
    ssize_t n = recv(sig_sock, buf, sizeof buf - 1, 0);
    if (n < 0) die("recv");
    buf[n] = 0;
    printf("%s", buf);
    return 0;
}

/* alarm() + siglongjmp() out of getaddrinfo, then a TCP connect on the same thread. */
static sigjmp_buf jb;
static void on_alarm_jump(int sig) {
    (void)sig;
    siglongjmp(jb, 1);
}
static int longjmp_gai(const char *name) {
    struct sigaction sa = {.sa_handler = on_alarm_jump};
    sigaction(SIGALRM, &sa, NULL);
    if (sigsetjmp(jb, 1) == 0) {
        alarm(1);
        struct addrinfo *r = NULL;
        getaddrinfo(name, "80", NULL, &r);
        alarm(0);
        printf("FAILED getaddrinfo returned before the alarm\n");
        return 1;
    }
    printf("jumped out of getaddrinfo\n");
    int old = -1;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    printf("cancel_state_after=%s\n", old == PTHREAD_CANCEL_ENABLE ? "enabled" : "disabled");
    int s = socket(fam, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    tcp_ask(s);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    printf("cancel_state_after_connect=%s\n", old == PTHREAD_CANCEL_ENABLE ? "enabled" : "disabled");
    return 0;
}

/* A thread jumps out of getaddrinfo from a signal handler, then only sleeps (no hook
 * call that could repair anything): pthread_cancel must still end it. */
static sigjmp_buf jc_env;
static const char *jc_name;
static void on_usr1_jump(int sig) {
    (void)sig;
    siglongjmp(jc_env, 1);
}
static void *jc_thread(void *a) {
    (void)a;
    if (sigsetjmp(jc_env, 1) == 0) {
        struct addrinfo *r = NULL;
        getaddrinfo(jc_name, "80", NULL, &r);
        return (void *)1; /* the lookup returned before the signal */
    }
    for (int i = 0; i < 50; i++) usleep(100000); /* cancellation points */
    return (void *)2;
}
static int jmp_cancel(const char *name) {
    jc_name = name;
    struct sigaction sa = {.sa_handler = on_usr1_jump};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, jc_thread, NULL);
    usleep(400000);
    pthread_kill(t, SIGUSR1);
    usleep(200000);
    pthread_cancel(t);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    void *res = NULL;
    int e = pthread_timedjoin_np(t, &res, &until);
    printf("joined=%s\n", e ? "timeout" : res == PTHREAD_CANCELED ? "canceled" : "returned");
    if (e) return 1;
    int s = udp();
    ask(s, "after-jump-cancel");
    return 0;
}

/* pthread_cancel of a thread waiting inside getaddrinfo. */
static void *gai_thread(void *name) {
    struct addrinfo *r = NULL;
    getaddrinfo(name, "80", NULL, &r);
    return NULL;
}
/* A thread waiting inside getaddrinfo, sent SIGNAL first if non-zero, then cancelled;
 * then a steered datagram from the main thread. */
static int cancel_lookup(const char *name, int signal) {
    pthread_t t;
    pthread_create(&t, NULL, gai_thread, (void *)name);
    usleep(300000);
    if (signal) {
        pthread_kill(t, signal);
        usleep(100000);
    }
    pthread_cancel(t);
    void *res;
    pthread_join(t, &res);
    printf("joined=%s\n", res == PTHREAD_CANCELED ? "canceled" : "returned");
    /* And the process still steers. */
    int s = udp();
    ask(s, "after-cancel");
    return 0;
}

static int cancel_gai(const char *name) {
    return cancel_lookup(name, 0);
}

/* pthread_cancel of a thread waiting inside the name lookup CALL (getnameinfo,
 * gethostbyaddr, res_query, res_search, res_nquery, gethostbyname2): one line
 * CALL=canceled|returned each, then a steered datagram from the main thread. */
static void *lookup_thread(void *call) {
    unsigned char buf[512];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "203.0.113.10", &sa.sin_addr);
    if (!strcmp(call, "getnameinfo")) {
        char h[256];
        getnameinfo((void *)&sa, sizeof sa, h, sizeof h, NULL, 0, NI_NAMEREQD);
    } else if (!strcmp(call, "gethostbyaddr")) {
        gethostbyaddr(&sa.sin_addr, 4, AF_INET);
    } else if (!strcmp(call, "res_query")) {
        res_query("slow.mif.test", C_IN, T_A, buf, sizeof buf);
    } else if (!strcmp(call, "res_search")) {
        res_search("slow.mif.test", C_IN, T_A, buf, sizeof buf);
    } else if (!strcmp(call, "res_nquery")) {
        struct __res_state st;
        memset(&st, 0, sizeof st);
        res_ninit(&st);
        res_nquery(&st, "slow.mif.test", C_IN, T_A, buf, sizeof buf);
    } else if (!strcmp(call, "gethostbyname2")) {
        gethostbyname2("slow.mif.test", AF_INET6);
    }
    return NULL;
}
static int cancel_in(const char *calls) {
    char list[256];
    snprintf(list, sizeof list, "%s", calls);
    for (char *call = strtok(list, ","); call; call = strtok(NULL, ",")) {
        pthread_t t;
        pthread_create(&t, NULL, lookup_thread, call);
        usleep(300000);
        pthread_cancel(t);
        void *res;
        pthread_join(t, &res);
        printf("%s=%s\n", call, res == PTHREAD_CANCELED ? "canceled" : "returned");
    }
    int s = udp();
    ask(s, "after-cancel");
    return 0;
}

/* Promote, connect the same UDP socket to loopback, then sendto the destination again:
 * prints the errno that send gets (the kernel: EINVAL, a loopback source off the host). */
static int relo(void) {
    int s = udp();
    ask(s, "one");
    ask(s, "two");
    struct sockaddr_storage lo;
    socklen_t len = loopback(&lo);
    if (connect(s, (void *)&lo, len) < 0) die("connect loopback");
    ssize_t n = sendto(s, "x", 1, 0, (void *)&dst, dstlen);
    printf("sendto_after_loopback_connect=%s\n", n < 0 ? strerrorname_np(errno) : "sent");
    return 0;
}

/* The child's side of spawn-share: OP on the inherited socket FD. */
static int child_op(const char *op, int fd) {
    if (!strcmp(op, "ucclr")) {
        int zero = 0;
        /* The option of the destination's path (IPv6 only for a native IPv6 one). */
        if (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_IF, &zero, sizeof zero) < 0)
            die("IPV6_UNICAST_IF");
        if (fam == AF_INET && setsockopt(fd, IPPROTO_IP, IP_UNICAST_IF, &zero, sizeof zero) < 0)
            die("IP_UNICAST_IF");
    } else {
        struct sockaddr unspec = {.sa_family = AF_UNSPEC};
        if (connect(fd, &unspec, sizeof unspec) < 0) die("connect AF_UNSPEC");
    }
    return 0;
}

/* A socket shared with a child the program makes by HOW (posix_spawn, vfork, system,
 * _Fork); the child (this program again, or the _Fork child itself) clears the
 * unicast interface (OP ucclr, after the parent promoted the socket) or disconnects
 * it (OP disc, after the parent connected it); then the parent sends again. */
extern pid_t _Fork(void);
static int clone_exec(void *argv) {
    char **a = argv;
    execv(a[0], a);
    _exit(127);
}
extern char **environ;
static int spawn_share(const char *how_op) {
    char how[32];
    const char *op = strchr(how_op, ':');
    if (!op || (size_t)(op - how_op) >= sizeof how) {
        fprintf(stderr, "spawn-share HOW:OP\n");
        return 2;
    }
    memcpy(how, how_op, op - how_op);
    how[op - how_op] = 0;
    op++;
    int s = udp();
    if (!strcmp(how, "posix_spawn_fa")) {
        /* close-on-exec, handed to the child by a file action all the same */
        if (fcntl(s, F_SETFD, FD_CLOEXEC) < 0) die("FD_CLOEXEC");
    }
    if (!strcmp(op, "disc")) {
        if (connect(s, (void *)&dst, dstlen) < 0) die("connect");
        if (send(s, "c", 1, 0) < 0) die("send");
        char buf[512];
        ssize_t n = recv(s, buf, sizeof buf - 1, 0);
        if (n < 0) die("recv");
        buf[n] = 0;
        printf("%s", buf);
    } else {
        ask(s, "one");
        ask(s, "two");
    }
    char self[4096], fdarg[16];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl < 0) die("readlink");
    self[sl] = 0;
    snprintf(fdarg, sizeof fdarg, "%d", s);
    char *argv[] = {self, "child-op", (char *)dst_addr, (char *)dst_port, (char *)op, fdarg, NULL};
    pid_t pid = -1;
    if (!strcmp(how, "posix_spawn")) {
        if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0) die("posix_spawn");
    } else if (!strcmp(how, "posix_spawn_fa")) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, s, s); /* glibc: clears close-on-exec */
        if (posix_spawn(&pid, self, &fa, NULL, argv, environ) != 0) die("posix_spawn");
        posix_spawn_file_actions_destroy(&fa);
    } else if (!strcmp(how, "vfork")) {
        pid = vfork();
        if (pid == 0) {
            execv(self, argv);
            _exit(127);
        }
    } else if (!strcmp(how, "__vfork")) {
        extern pid_t __vfork(void);
        pid = __vfork();
        if (pid == 0) {
            execv(self, argv);
            _exit(127);
        }
    } else if (!strcmp(how, "clone_vfork")) {
        /* a process sharing memory until it execs, with a copy of the fd table */
        static char stack[64 * 1024];
        pid = clone(clone_exec, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, argv);
        if (pid < 0) die("clone");
    } else if (!strcmp(how, "system")) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "'%s' child-op %s %s %s %d", self, dst_addr, dst_port, op, s);
        int st = system(cmd);
        if (st != 0) {
            printf("FAILED the child (system) exited with status %d\n", st);
            return 1;
        }
    } else if (!strcmp(how, "_Fork")) {
        pid = _Fork();
        if (pid == 0) {
            child_op(op, s);
            _exit(0);
        }
    } else {
        fprintf(stderr, "unknown HOW %s\n", how);
        return 2;
    }
    if (pid > 0) {
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("FAILED the child exited with status %d\n", st);
            return 1;
        }
    }
    printf("child-did=%s\n", op);
    for (int i = 0; i < 3; i++) ask(s, "after");
    return 0;
}

/* A promoted socket passed by SCM_RIGHTS in a send that names its destination (an
 * unconnected AF_UNIX datagram socket) to a receiver made before the socket existed
 * (no fork after it), which clears the option; then the sender sends again. */
static int scm_named(void) {
    struct sockaddr_un ra = {.sun_family = AF_UNIX};
    snprintf(ra.sun_path + 1, sizeof ra.sun_path - 1, "mifshim-leak-%d", getpid());
    socklen_t ral = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(ra.sun_path + 1);
    int ack[2];
    if (pipe(ack) < 0) die("pipe");
    int rx = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (rx < 0 || bind(rx, (void *)&ra, ral) < 0) die("bind unix");
    pid_t pid = fork();
    if (pid == 0) {
        char b[8];
        struct iovec iov = {b, sizeof b};
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
        if (recvmsg(rx, &m, 0) < 0) _exit(3);
        int fd;
        memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
        child_op("ucclr", fd);
        (void)!write(ack[1], "k", 1);
        _exit(0);
    }
    close(rx);
    int s = udp();
    ask(s, "one");
    ask(s, "two");
    int tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    char b[1] = {'f'};
    struct iovec iov = {b, 1};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
    memset(&c, 0, sizeof c);
    struct msghdr m = {.msg_name = &ra, .msg_namelen = ral, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &s, sizeof s);
    if (sendmsg(tx, &m, 0) < 0) die("sendmsg SCM_RIGHTS");
    char k;
    if (read(ack[0], &k, 1) != 1) die("ack");
    int st;
    waitpid(pid, &st, 0);
    printf("receiver-cleared=1\n");
    for (int i = 0; i < 3; i++) ask(s, "after");
    return 0;
}

/* Promote, connect the socket to this host's own address OWN (the shim binds it to
 * that address's interface), then exec: the new program sends to the destination on
 * the inherited socket. */
static int direct_exec(const char *own) {
    int s = udp();
    ask(s, "one");
    ask(s, "two");
    struct sockaddr_storage o;
    memset(&o, 0, sizeof o);
    socklen_t ol;
    if (fam == AF_INET) {
        struct sockaddr_in *a = (void *)&o;
        a->sin_family = AF_INET;
        a->sin_port = htons(8125);
        if (inet_pton(AF_INET, own, &a->sin_addr) != 1) die("own address");
        ol = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (void *)&o;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(8125);
        if (inet_pton(AF_INET6, own, &a->sin6_addr) != 1) die("own address");
        ol = sizeof *a;
    }
    if (connect(s, (void *)&o, ol) < 0) die("connect own address");
    char self[4096], fdarg[16];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl < 0) die("readlink");
    self[sl] = 0;
    snprintf(fdarg, sizeof fdarg, "%d", s);
    char *argv[] = {self, "after-exec", (char *)dst_addr, (char *)dst_port, fdarg, NULL};
    execv(self, argv);
    die("execv");
    return 1;
}

static int after_exec(int fd) {
    ssize_t n = sendto(fd, "exec-child", 10, 0, (void *)&dst, dstlen);
    printf("after_exec_sendto=%s\n", n < 0 ? strerrorname_np(errno) : "sent");
    return 0;
}

/* glibc's public __connect, which some programs and libraries call directly. */
extern int __connect(int, const struct sockaddr *, socklen_t);
static int dunder_connect(void) {
    int s = socket(fam, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (__connect(s, (void *)&dst, dstlen) < 0) die("__connect");
    char buf[512];
    ssize_t n = read(s, buf, sizeof buf - 1);
    if (n <= 0) die("read");
    buf[n] = 0;
    printf("%s", buf);
    return 0;
}

/* A signal handler that jumps within itself (setjmp/longjmp inside the handler) while
 * its thread waits inside getaddrinfo, then pthread_cancel: a plain cancellation. */
static void on_usr1_local_jump(int sig) {
    (void)sig;
    sigjmp_buf local;
    if (sigsetjmp(local, 0) == 0) siglongjmp(local, 1);
}
static int jmp_inside(const char *name) {
    struct sigaction sa = {.sa_handler = on_usr1_local_jump};
    sigaction(SIGUSR1, &sa, NULL);
    return cancel_lookup(name, SIGUSR1);
}

/* Two threads share one unconnected socket: one keeps sending to the destination,
 * the other to loopback; repeated on ROUNDS fresh sockets. */
static int race_sock;
static volatile int race_go;
static void *race_exempt(void *arg) {
    (void)arg;
    while (!race_go) {}
    for (int i = 0; i < 20; i++) to_loopback(race_sock);
    return NULL;
}
static int race(int rounds) {
    int replies = 0;
    for (int r = 0; r < rounds; r++) {
        race_sock = udp();
        ask(race_sock, "one");
        ask(race_sock, "two");
        race_go = 0;
        pthread_t t;
        pthread_create(&t, NULL, race_exempt, NULL);
        race_go = 1;
        for (int i = 0; i < 20; i++)
            if (sendto(race_sock, "race", 4, 0, (void *)&dst, dstlen) < 0) die("sendto");
        pthread_join(t, NULL);
        close(race_sock);
        replies++;
    }
    printf("rounds=%d\n", replies);
    return 0;
}

/* A cancellation requested before a call (deferred: pending) is acted upon by the C
 * library at the call's cancellation point, if it has one, and never inside the shim's
 * own work: a cancellation point the shim reached there started glibc's forced unwind
 * inside the shim, where it met catch_unwind and aborted the process. Each step runs in
 * a thread of its own with its cancellation pending; the first step is the process's
 * first INET socket, so the engine loads (the policy is read, the log opened) with the
 * cancellation pending. ARG: an address of the system's DNS server (port 53: a connect
 * there is redirected under `[dns] redirect`). Prints STEP=returned|canceled. */
enum { CP_SOCKET, CP_SETSOCKOPT, CP_BIND, CP_DUP, CP_FCNTL, CP_LISTEN, CP_FILTER, CP_GETSOCKOPT,
       CP_CONNECT, CP_CONNECT_DNS, CP_SENDTO, CP_SENDMSG, CP_CLOSE, CP_GAI, CP_GHBN,
       CP_GAI_A, CP_STEPS };
static const char *cp_names[CP_STEPS] = {"socket", "setsockopt", "bind", "dup", "fcntl",
    "listen", "attach-filter", "getsockopt", "connect", "connect-dns", "sendto", "sendmsg", "close",
    "getaddrinfo", "gethostbyname", "getaddrinfo_a"};
static int cp_udp = -1, cp_tcp = -1;
static struct sockaddr_storage cp_dns;
static socklen_t cp_dnslen;
static const char *cp_name;
static void *cp_thread(void *arg) {
    int step = (int)(long)arg, r = 0, one = 1;
    int olds;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &olds);
    pthread_cancel(pthread_self());
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &olds);
    switch (step) {
    case CP_SOCKET:
        cp_udp = socket(fam, SOCK_DGRAM, 0);
        r = cp_udp;
        break;
    case CP_SETSOCKOPT:
        r = setsockopt(cp_udp, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
        break;
    case CP_BIND: {
        struct sockaddr_storage any;
        memset(&any, 0, sizeof any);
        any.ss_family = fam;
        r = bind(cp_udp, (void *)&any, fam == AF_INET ? sizeof(struct sockaddr_in)
                                                     : sizeof(struct sockaddr_in6));
        break;
    }
    case CP_DUP:
        r = dup(cp_udp);
        break;
    case CP_FCNTL:
        r = fcntl(cp_udp, F_DUPFD_CLOEXEC, 100);
        break;
    case CP_LISTEN:
        r = listen(cp_tcp, 4);
        break;
    case CP_FILTER: {
        /* The program's own filter on the confined listener (accept everything): the
         * shim validates it on a scratch socket and composes it with its own. */
        struct sock_filter all[1] = {{BPF_RET | BPF_K, 0, 0, 0xffff}};
        struct sock_fprog prog = {1, all};
        r = setsockopt(cp_tcp, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
        break;
    }
    case CP_GETSOCKOPT: {
        socklen_t l = sizeof one;
        r = getsockopt(cp_udp, SOL_SOCKET, SO_TYPE, &one, &l);
        break;
    }
    case CP_CONNECT:
        r = connect(cp_udp, (void *)&dst, dstlen);
        break;
    case CP_CONNECT_DNS:
        r = connect(cp_udp, (void *)&cp_dns, cp_dnslen);
        break;
    case CP_SENDTO:
        r = sendto(cp_udp, "x", 1, 0, (void *)&dst, dstlen);
        break;
    case CP_SENDMSG: {
        struct iovec iov = {"x", 1};
        struct msghdr m = {.msg_name = &dst, .msg_namelen = dstlen, .msg_iov = &iov,
                           .msg_iovlen = 1};
        r = sendmsg(cp_udp, &m, 0);
        break;
    }
    case CP_CLOSE:
        r = close(cp_udp);
        break;
    case CP_GAI: {
        struct addrinfo *res = NULL;
        r = getaddrinfo(cp_name, "80", NULL, &res);
        break;
    }
    case CP_GHBN: /* the shim's gethostbyname runs its gethostbyname2_r inside */
        r = gethostbyname(cp_name) ? 0 : -1;
        break;
    case CP_GAI_A: { /* and getaddrinfo_a its getaddrinfo */
        struct gaicb req = {.ar_name = cp_name};
        struct gaicb *list[1] = {&req};
        r = getaddrinfo_a(GAI_WAIT, list, 1, NULL);
        break;
    }
    }
    return (void *)(long)(r < 0 ? -errno : r);
}
static int cancel_pending(const char *dns) {
    struct sockaddr_in *d4 = (void *)&cp_dns;
    memset(&cp_dns, 0, sizeof cp_dns);
    d4->sin_family = AF_INET;
    d4->sin_port = htons(53);
    if (inet_pton(AF_INET, dns, &d4->sin_addr) != 1) die("dns address");
    cp_dnslen = sizeof *d4;
    cp_name = "svc.mif.test";
    int failed = 0;
    for (int step = 0; step < CP_STEPS; step++) {
        if (step == CP_LISTEN) {
            cp_tcp = socket(fam, SOCK_STREAM, 0);
            if (cp_tcp < 0) die("tcp socket");
        }
        if (step == CP_CONNECT_DNS && fam != AF_INET) continue;
        pthread_t t;
        if (pthread_create(&t, NULL, cp_thread, (void *)(long)step)) die("pthread_create");
        void *res;
        pthread_join(t, &res);
        if (res == PTHREAD_CANCELED) {
            printf("%s=canceled\n", cp_names[step]);
        } else {
            long v = (long)res;
            printf("%s=returned %ld\n", cp_names[step], v);
            if (v < 0) failed = 1;
        }
    }
    /* The process still steers: a datagram and a TCP exchange from the main thread. */
    int s = udp();
    ask(s, "after-pending-cancels");
    int t = socket(fam, SOCK_STREAM, 0);
    if (t < 0) die("socket");
    tcp_ask(t);
    return failed;
}

/* SIGALRM every 50 us, its handler siglongjmp()s out of connect() to the system's DNS
 * server (port 53: under `[dns] redirect` the shim reads resolv.conf there, allocating):
 * a jump out of malloc corrupted the heap, and one landing between the section's
 * cancellation change and its record left cancellation disabled for good. ARG: that
 * server's address. Prints the counts. */
static sigjmp_buf jr_env;
static volatile sig_atomic_t jr_armed;
static void jr_alarm(int sig) {
    (void)sig;
    if (jr_armed) {
        jr_armed = 0;
        siglongjmp(jr_env, 1);
    }
}
static int jmp_redirect(const char *dns) {
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(53)};
    if (inet_pton(AF_INET, dns, &d.sin_addr) != 1) die("dns address");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = jr_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) die("socket");
    long jumps = 0, disabled = 0, done = 0;
    for (volatile int i = 0; i < 3000; i++) {
        if (sigsetjmp(jr_env, 1)) {
            jumps++;
            int old;
            pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
            if (old == PTHREAD_CANCEL_DISABLE) disabled++;
            continue;
        }
        jr_armed = 1;
        connect(s, (void *)&d, sizeof d);
        jr_armed = 0;
        done++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("completed=%ld jumps=%ld left_cancellation_disabled=%ld\n", done, jumps, disabled);
    /* The heap is still sound and the process still steers. */
    char *p = malloc(1 << 16);
    free(p);
    int u = udp();
    ask(u, "after-jumps");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: leak MODE ADDR PORT [ARG]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dst_addr = argv[2];
    dst_port = argv[3];
    parse(argv[2], argv[3]);
    const char *m = argv[1], *arg = argc > 4 ? argv[4] : "";
    if (!strcmp(m, "dup-exempt")) return dup_exempt();
    if (!strcmp(m, "fork-exempt")) return fork_exempt();
    if (!strcmp(m, "disconnect")) return disconnect_mode();
    if (!strcmp(m, "reuse")) return reuse_mode(arg);
    if (!strcmp(m, "app-uc6")) return app_uc6(arg);
    if (!strcmp(m, "signal-send")) return signal_send(arg);
    if (!strcmp(m, "longjmp-gai")) return longjmp_gai(arg);
    if (!strcmp(m, "cancel-gai")) return cancel_gai(arg);
    if (!strcmp(m, "cancel-in")) return cancel_in(arg);
    if (!strcmp(m, "cancel-pending")) return cancel_pending(arg);
    if (!strcmp(m, "jmp-redirect")) return jmp_redirect(arg);
    if (!strcmp(m, "jmp-cancel")) return jmp_cancel(arg);
    if (!strcmp(m, "jmp-inside")) return jmp_inside(arg);
    if (!strcmp(m, "race")) return race(atoi(arg));
    if (!strcmp(m, "dunder-connect")) return dunder_connect();
    if (!strcmp(m, "relo")) return relo();
    if (!strcmp(m, "scm-named")) return scm_named();
    if (!strcmp(m, "direct-exec")) return direct_exec(arg);
    if (!strcmp(m, "after-exec")) return after_exec(atoi(arg));
    if (!strcmp(m, "spawn-share")) return spawn_share(arg);
    if (!strcmp(m, "child-op")) return argc > 5 ? child_op(argv[4], atoi(argv[5])) : 2;
    fprintf(stderr, "unknown mode %s\n", m);
    return 2;
}
