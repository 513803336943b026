/* The reproducers of integration-tests/tests/e2e/supervise_review.rs: one static program,
   one mode per defect found in the review of `mifrun --supervise` (wt-review4). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *SVC4 = "203.0.113.10", *SVC6 = "2001:db8:ff::10";
static int v6;

static socklen_t addr(const char *ip, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (void *)ss;
        a->sin6_family = AF_INET6; a->sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        return sizeof *a;
    }
    struct sockaddr_in *a = (void *)ss;
    a->sin_family = AF_INET; a->sin_port = htons(port);
    inet_pton(AF_INET, ip, &a->sin_addr);
    return sizeof *a;
}
static int udp(void) {
    int u = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {2, 0};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return u;
}
/* Prints "TAG sent=N" and the reply (an upstream=NAME line) or "TAG no reply". */
static void reply(int u, const char *tag, long sent) {
    char b[512];
    printf("%s sent=%ld%s%s\n", tag, sent, sent < 0 ? " " : "", sent < 0 ? strerror(errno) : "");
    int n = sent < 0 ? -1 : recv(u, b, sizeof b - 1, 0);
    if (n > 0) { b[n] = 0; printf("%s %s", tag, b); if (b[n - 1] != '\n') printf("\n"); }
    else printf("%s no reply\n", tag);
    fflush(stdout);
}
/* A plain unconnected datagram on a fresh socket: the control flow, steered today. */
static void control(void) {
    struct sockaddr_storage ss; socklen_t l = addr(v6 ? SVC6 : SVC4, 9000, &ss);
    int u = udp();
    reply(u, "control", sendto(u, "c", 1, 0, (void *)&ss, l));
}

/* sendto / sendmsg / sendmmsg to a sockaddr_in whose family is AF_UNSPEC on an AF_INET
   UDP socket: udp_sendmsg takes AF_UNSPEC as AF_INET (BSD compatibility). */
static int unspec(const char *call) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_UNSPEC; a.sin_port = htons(9000);
    inet_pton(AF_INET, SVC4, &a.sin_addr);
    int u = udp(); long r;
    struct iovec iv = {"u", 1};
    struct msghdr mh = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iv, .msg_iovlen = 1};
    if (!strcmp(call, "sendto")) r = sendto(u, "u", 1, 0, (void *)&a, sizeof a);
    else if (!strcmp(call, "sendmsg")) r = sendmsg(u, &mh, 0);
    else { struct mmsghdr mm = {.msg_hdr = mh}; r = sendmmsg(u, &mm, 1, 0); }
    reply(u, call, r);
    control();
    return 0;
}

/* sendmsg with a PKTINFO of LEVEL that names no interface (ifindex 0, no source), or,
   with "wrong-level", an IP_PKTINFO naming wlan0 on a native IPv6 datagram (the kernel's
   IPv6 path ignores SOL_IP control messages). */
static int pktinfo(const char *kind) {
    struct sockaddr_storage ss; socklen_t l = addr(v6 ? SVC6 : SVC4, 9000, &ss);
    int u = udp();
    union { char b[CMSG_SPACE(sizeof(struct in6_pktinfo))]; struct cmsghdr c; } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iv = {"p", 1};
    struct msghdr mh = {.msg_name = &ss, .msg_namelen = l, .msg_iov = &iv, .msg_iovlen = 1,
                        .msg_control = cb.b, .msg_controllen = sizeof cb.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (v6 && strcmp(kind, "wrong-level")) {
        c->cmsg_level = IPPROTO_IPV6; c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
        mh.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
    } else {
        c->cmsg_level = IPPROTO_IP; c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        mh.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
        if (!strcmp(kind, "wrong-level"))
            ((struct in_pktinfo *)CMSG_DATA(c))->ipi_ifindex = if_nametoindex("wlan0");
    }
    reply(u, "pktinfo", sendmsg(u, &mh, 0));
    control();
    return 0;
}

/* Thread A connects fd NUM while thread B dup2()s a fresh, unsteered socket onto NUM:
   the supervisor binds the socket it fetched with pidfd_getfd, the kernel then connects
   whatever NUM names when the call continues. */
#define NUM 100
static atomic_int go, done;
static int fresh; static volatile int spin;
static void *swapper(void *x) {
    (void)x;
    for (;;) {
        while (!atomic_load(&go)) if (atomic_load(&done)) return 0;
        for (volatile int i = 0; i < spin; i++) ;
        dup2(fresh, NUM);
        atomic_store(&go, 0);
    }
}
static int bound(int s) {
    int b = 0; socklen_t bl = sizeof b;
    getsockopt(s, SOL_SOCKET, SO_BINDTOIFINDEX, &b, &bl);
    return b;
}
/* A connected socket that is not bound to a device: say so, and send on it (send(2) is
   not trapped), so the sniffers see where it goes. */
static int leaked(int s, int i, const char *what) {
    struct sockaddr_storage p; socklen_t pl = sizeof p;
    if (getpeername(s, (void *)&p, &pl) != 0 || bound(s) != 0) return 0;
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char tag[64]; snprintf(tag, sizeof tag, "LEAK iteration %d (%s)", i, what);
    reply(s, tag, send(s, "l", 1, 0));
    return 1;
}
static int fdswap(int iters) {
    struct sockaddr_storage ss; socklen_t l = addr(v6 ? SVC6 : SVC4, 9001, &ss);
    pthread_t t; pthread_create(&t, 0, swapper, 0); srand(1);
    int i, leaks = 0;
    for (i = 0; i < iters && !leaks; i++) {
        int s1 = socket(ss.ss_family, SOCK_DGRAM, 0);
        fresh = socket(ss.ss_family, SOCK_DGRAM, 0);
        dup2(s1, NUM);
        spin = rand() % 20000;
        atomic_store(&go, 1);
        connect(NUM, (void *)&ss, l);
        while (atomic_load(&go)) ;
        leaks += leaked(s1, i, "the socket the supervisor saw");
        leaks += leaked(fresh, i, "the socket swapped in");
        close(s1); close(fresh); close(NUM);
    }
    atomic_store(&done, 1); pthread_join(t, 0);
    printf("fdswap iterations=%d leaks=%d\n", i, leaks);
    control();
    return 0;
}

/* Thread A sends a datagram to the service on fd NUM (its socket steered, by PKTINFO
   or by the unicast interface the first datagram set) while thread B dup2()s a fresh,
   unsteered socket onto NUM: a CONTINUE lets the kernel send on whatever NUM names by
   then. A fresh socket that sent (it has a local port now) gets the answer: one from
   another upstream than wlan0's is a leak (a datagram of the swapped-in socket the
   preload's PKTINFO steered is not). WHAT: sendto, sendmsg or sendmmsg (named), or tcp:
   a sendto with the service's address on a connected TCP socket (which ignores it). */
static int sendswap(const char *what, int iters) {
    struct sockaddr_storage ss; socklen_t l = addr(v6 ? SVC6 : SVC4, 9000, &ss);
    pthread_t t; pthread_create(&t, 0, swapper, 0); srand(5);
    int i, leaks = 0, sent = 0;
    for (i = 0; i < iters && !leaks; i++) {
        int tcp = !strcmp(what, "tcp"), s1;
        if (tcp) {
            s1 = socket(ss.ss_family, SOCK_STREAM, 0);
            struct timeval tv = {10, 0};
            setsockopt(s1, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            if (connect(s1, (void *)&ss, l) != 0) { printf("connect: %s\n", strerror(errno)); break; }
        } else {
            s1 = udp();
            /* The first datagram steers s1 (and lets the next one take the quick way). */
            sendto(s1, "w", 1, 0, (void *)&ss, l);
        }
        fresh = udp();
        dup2(s1, NUM);
        spin = rand() % 20000;
        atomic_store(&go, 1);
        struct iovec iv = {"s", 1};
        struct msghdr mh = {.msg_name = &ss, .msg_namelen = l, .msg_iov = &iv, .msg_iovlen = 1};
        struct mmsghdr mm = {.msg_hdr = mh};
        long r;
        if (!strcmp(what, "sendmsg")) r = sendmsg(NUM, &mh, 0);
        else if (!strcmp(what, "sendmmsg")) r = sendmmsg(NUM, &mm, 1, 0);
        else r = sendto(NUM, "s", 1, tcp ? MSG_NOSIGNAL : 0, (void *)&ss, l);
        if (r > 0) sent++;
        while (atomic_load(&go)) ;
        if (tcp) {
            /* The server's line to its end before the close: a close with data unread
               resets, and the kernel's RSTs to what is still in flight belong to no
               socket (README, Limits: out by the main route). */
            char b[256];
            while (recv(s1, b, sizeof b, 0) > 0) ;
        }
        struct sockaddr_storage me; socklen_t ml = sizeof me;
        getsockname(fresh, (void *)&me, &ml);
        int port = ntohs(me.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&me)->sin6_port
                                                  : ((struct sockaddr_in *)&me)->sin_port);
        if (port != 0) {
            char b[512];
            int n = recv(fresh, b, sizeof b - 1, 0);
            if (n > 0) {
                b[n] = 0;
                if (!strstr(b, "upstream=wlan0")) {
                    printf("LEAK iteration %d (swapped in) %s", i, b);
                    leaks++;
                }
            }
        }
        close(s1); close(fresh); close(NUM);
    }
    atomic_store(&done, 1); pthread_join(t, 0);
    printf("sendswap %s iterations=%d leaks=%d sent=%d\n", what, i, leaks, sent);
    control();
    return 0;
}

/* A blocking UDP socket whose send buffer fills (SO_SNDBUF at its minimum, the link
   shaped to 100 kbit/s by the test): COUNT datagrams of 1200 bytes to the sink on the
   service address. Each sendto must wait for room and then succeed, as without the
   supervisor (whose own send finds the buffer full and waits in a worker). Prints
   "fullbuf sent=N errors=E ms=T". */
static int fullbuf(int count) {
    struct sockaddr_storage ss; socklen_t l = addr(v6 ? SVC6 : SVC4, 9, &ss);
    int u = udp(), one = 1;
    setsockopt(u, SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
    static char b[1200];
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    int sent = 0, errors = 0;
    for (int i = 0; i < count; i++) {
        long r = sendto(u, b, sizeof b, 0, (void *)&ss, l);
        if (r == (long)sizeof b) sent++;
        else if (errors++ < 3) printf("fullbuf %d: %ld %s\n", i, r, strerror(errno));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("fullbuf sent=%d errors=%d ms=%ld\n", sent, errors, ms);
    close(u);
    control();
    return 0;
}

/* Thread B rewrites the sockaddr from loopback (exempt) to the service address after
   the notification: the kernel reads the rewritten address when the call continues. */
static struct sockaddr_storage shared; static struct sockaddr_storage remote;
static void *rewriter(void *x) {
    (void)x;
    for (;;) {
        while (!atomic_load(&go)) if (atomic_load(&done)) return 0;
        for (volatile int i = 0; i < spin; i++) ;
        memcpy(&shared, &remote, sizeof remote);
        atomic_store(&go, 0);
    }
}
static int memrace(int iters) {
    struct sockaddr_storage lo; socklen_t l = addr(v6 ? "::1" : "127.0.0.1", 9001, &lo);
    addr(v6 ? SVC6 : SVC4, 9001, &remote);
    pthread_t t; pthread_create(&t, 0, rewriter, 0); srand(2);
    int i, leaks = 0;
    for (i = 0; i < iters && !leaks; i++) {
        int u = socket(lo.ss_family, SOCK_DGRAM, 0);
        memcpy(&shared, &lo, sizeof lo);
        spin = rand() % 20000;
        atomic_store(&go, 1);
        connect(u, (void *)&shared, l);
        while (atomic_load(&go)) ;
        struct sockaddr_storage p; socklen_t pl = sizeof p;
        if (getpeername(u, (void *)&p, &pl) == 0 &&
            memcmp(&p, &remote, l) == 0)
            leaks += leaked(u, i, "connected to the rewritten address");
        close(u);
    }
    atomic_store(&done, 1); pthread_join(t, 0);
    printf("memrace iterations=%d leaks=%d\n", i, leaks);
    control();
    return 0;
}

/* Thread A connects fd NUM, an AF_UNIX datagram socket, to an abstract name: the
   supervisor lets a call on a non-INET socket continue (its credentials and names are
   the program's). Thread B, after a random spin, dup2()s a fresh INET UDP socket onto
   NUM and rewrites the address into the service's: when both land between the check
   and the kernel's continuation, the swapped-in socket is connected, unsteered. Stops
   at the first leak; prints how many connects the swapped-in socket got. */
static struct sockaddr_storage uname_or_svc;
static void *unixswapper(void *x) {
    (void)x;
    for (;;) {
        while (!atomic_load(&go)) if (atomic_load(&done)) return 0;
        for (volatile int i = 0; i < spin; i++) ;
        dup2(fresh, NUM);
        memcpy(&uname_or_svc, &remote, sizeof remote);
        atomic_store(&go, 0);
    }
}
static int unixswap(int iters) {
    addr(v6 ? SVC6 : SVC4, 9001, &remote);
    pthread_t t; pthread_create(&t, 0, unixswapper, 0); srand(3);
    int i, leaks = 0, inet_connects = 0;
    for (i = 0; i < iters && !leaks; i++) {
        int s1 = socket(AF_UNIX, SOCK_DGRAM, 0);
        fresh = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
        dup2(s1, NUM);
        struct sockaddr_un *u = (void *)&uname_or_svc;
        memset(&uname_or_svc, 0, sizeof uname_or_svc);
        u->sun_family = AF_UNIX;
        snprintf(u->sun_path + 1, sizeof u->sun_path - 1, "mif-unixswap-%d", getpid());
        spin = rand() % 20000;
        atomic_store(&go, 1);
        connect(NUM, (void *)&uname_or_svc, sizeof(struct sockaddr_un));
        while (atomic_load(&go)) ;
        struct sockaddr_storage p; socklen_t pl = sizeof p;
        if (getpeername(fresh, (void *)&p, &pl) == 0) inet_connects++;
        leaks += leaked(fresh, i, "the INET socket swapped onto an AF_UNIX connect");
        close(s1); close(fresh); close(NUM);
    }
    atomic_store(&done, 1); pthread_join(t, 0);
    printf("unixswap iterations=%d leaks=%d inet_connects=%d\n", i, leaks, inet_connects);
    control();
    return 0;
}

/* The same rewrite on a TCP Fast Open send (`sendto` with MSG_FASTOPEN connects as it
   sends): from loopback (exempt, so the socket is not bound) to the service's TCP port
   after the notification. A socket that ends up connected to the service without a
   device binding leaked; one the supervisor (or the preload) bound is steered. */
static int tforace(int iters) {
    struct sockaddr_storage lo; socklen_t l = addr(v6 ? "::1" : "127.0.0.1", 9, &lo);
    addr(v6 ? SVC6 : SVC4, 9000, &remote);
    pthread_t t; pthread_create(&t, 0, rewriter, 0); srand(4);
    int i, leaks = 0, remote_ok = 0, other = 0;
    for (i = 0; i < iters && !leaks; i++) {
        int s = socket(lo.ss_family, SOCK_STREAM, 0);
        /* Long enough that no connect is abandoned half-open: a SYN-ACK coming after
           its socket was closed draws an RST that belongs to no socket (README,
           Limits: routed by the main table, eth0), not this test's subject. */
        struct timeval tv = {10, 0};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        memcpy(&shared, &lo, sizeof lo);
        spin = rand() % 20000;
        atomic_store(&go, 1);
        long r = sendto(s, "t", 1, MSG_FASTOPEN, (void *)&shared, l);
        int e = errno;
        while (atomic_load(&go)) ;
        if (r < 0 && e != ECONNREFUSED) {
            if (other++ < 5) printf("tforace iteration %d: %s\n", i, strerror(e));
        }
        struct sockaddr_storage p; socklen_t pl = sizeof p;
        if (getpeername(s, (void *)&p, &pl) == 0 && memcmp(&p, &remote, l) == 0) {
            if (r > 0 && bound(s) != 0) remote_ok++;
            leaks += leaked(s, i, "Fast Open connected to the rewritten address");
            /* Read the server's answer to its end before closing: a close with data
               unread resets the connection, and the kernel answers the server's
               segments still in flight with RSTs that belong to no socket, routed by
               the main table (eth0; README, Limits) — not this test's subject. */
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char b[256];
            while (recv(s, b, sizeof b, 0) > 0) ;
        }
        close(s);
    }
    atomic_store(&done, 1); pthread_join(t, 0);
    printf("tforace iterations=%d leaks=%d steered=%d other=%d\n", i, leaks, remote_ok, other);
    control();
    return 0;
}

/* Thread B gives a name-less sendmsg's msghdr a name (the service address) after the
   notification: a fresh, unbound socket's datagram would go where the kernel reads when
   the call continues (wt-supfix). A send that succeeds went to the service: counted. */
static struct msghdr namehdr; static struct sockaddr_storage named; static socklen_t namedlen;
static void *namer(void *x) {
    (void)x;
    for (;;) {
        while (!atomic_load(&go)) if (atomic_load(&done)) return 0;
        for (volatile int i = 0; i < spin; i++) ;
        namehdr.msg_namelen = namedlen;
        namehdr.msg_name = &named;
        atomic_store(&go, 0);
    }
}
static int namerace(int iters) {
    namedlen = addr(v6 ? SVC6 : SVC4, 9000, &named);
    pthread_t t; pthread_create(&t, 0, namer, 0); srand(3);
    int i, sent = 0;
    for (i = 0; i < iters; i++) {
        int u = socket(named.ss_family, SOCK_DGRAM, 0);
        struct iovec iv = {"n", 1};
        memset(&namehdr, 0, sizeof namehdr);
        namehdr.msg_iov = &iv; namehdr.msg_iovlen = 1;
        spin = rand() % 20000;
        atomic_store(&go, 1);
        if (sendmsg(u, &namehdr, 0) > 0) sent++;
        while (atomic_load(&go)) ;
        close(u);
    }
    atomic_store(&done, 1); pthread_join(t, 0);
    printf("namerace iterations=%d sent=%d\n", i, sent);
    control();
    return 0;
}

/* A connected UDP socket (the supervisor bound it to wlan0), then the program clears
   the device binding (root may: CAP_NET_RAW) and sends again. */
static int unbind(const char *how) {
    struct sockaddr_storage ss; socklen_t l = addr(v6 ? SVC6 : SVC4, 9001, &ss);
    int u = udp();
    connect(u, (void *)&ss, l);
    reply(u, "before", send(u, "b", 1, 0));
    int zero = 0;
    int r = !strcmp(how, "name") ? setsockopt(u, SOL_SOCKET, SO_BINDTODEVICE, "", 0)
                                 : setsockopt(u, SOL_SOCKET, SO_BINDTOIFINDEX, &zero, sizeof zero);
    printf("unbind=%d %s\n", r, r ? strerror(errno) : "");
    reply(u, "after", send(u, "a", 1, 0));
    return 0;
}

/* The program's own child ptraces it; the program exits and stays a zombie held by
   its tracer for HOLD seconds; the tracer measures the supervisor's CPU meanwhile. */
static long cpu_ticks(pid_t p) {
    char path[64], b[1024]; snprintf(path, sizeof path, "/proc/%d/stat", p);
    FILE *f = fopen(path, "r"); if (!f) return -1;
    size_t n = fread(b, 1, sizeof b - 1, f); fclose(f); b[n] = 0;
    char *s = strrchr(b, ')'); long ut, st;
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2) return -1;
    return ut + st;
}
static int ptzombie(int hold) {
    pid_t me = getpid(), sup = getppid();
    int ready[2]; if (pipe(ready)) return 1;
    if (fork() == 0) {
        if (ptrace(PTRACE_SEIZE, me, 0, 0)) { perror("PTRACE_SEIZE"); _exit(1); }
        write(ready[1], "r", 1);
        usleep(300000); /* the tracee exits meanwhile */
        long a = cpu_ticks(sup);
        sleep(hold);
        long b = cpu_ticks(sup);
        printf("supervisor cpu ticks=%ld over %d s (clock ticks per second %ld)\n", b - a, hold, sysconf(_SC_CLK_TCK));
        fflush(stdout);
        int st; waitpid(me, &st, __WALL);
        _exit(0);
    }
    char c; read(ready[0], &c, 1);
    return 5;
}

/* Counts SIGTERMs for a bounded time (4 s), saying each as it comes. */
static volatile sig_atomic_t terms;
static void on_term(int s) { (void)s; terms++; }
static int sigcount(void) {
    signal(SIGTERM, on_term);
    printf("ready\n"); fflush(stdout);
    int seen = 0;
    for (int i = 0; i < 400; i++) {
        usleep(10000);
        if (terms != seen) { seen = terms; printf("term %d\n", seen); fflush(stdout); }
    }
    printf("got %d SIGTERM\n", (int)terms);
    return 0;
}

/* The supervisor (mifrun, the parent) holds the seccomp listener: take it with
   pidfd_getfd (same uid, no Yama here), stop the supervisor (SIGSTOP, same uid) and
   answer the program's own notifications with CONTINUE from a thread; then 20
   connected datagrams; then continue the supervisor. */
static int stolen = -1;
static void *answer(void *x) {
    (void)x;
    for (;;) {
        struct seccomp_notif n; struct seccomp_notif_resp r;
        memset(&n, 0, sizeof n);
        if (ioctl(stolen, SECCOMP_IOCTL_NOTIF_RECV, &n)) { if (errno == EBADF) return 0; continue; }
        memset(&r, 0, sizeof r);
        r.id = n.id; r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(stolen, SECCOMP_IOCTL_NOTIF_SEND, &r);
    }
}
static int steal(void) {
    int pf = syscall(SYS_pidfd_open, getppid(), 0);
    for (int fd = 0; pf >= 0 && fd < 64 && stolen < 0; fd++) {
        int x = syscall(SYS_pidfd_getfd, pf, fd, 0);
        if (x < 0) continue;
        char p[64], l[128] = {0};
        snprintf(p, sizeof p, "/proc/self/fd/%d", x);
        if (readlink(p, l, sizeof l - 1) > 0 && strstr(l, "seccomp")) stolen = x;
        else close(x);
    }
    printf("stolen listener=%d\n", stolen);
    fflush(stdout);
    pthread_t t;
    /* The supervisor stopped (same uid), the program's thread answers alone. */
    if (stolen >= 0) { kill(getppid(), SIGSTOP); pthread_create(&t, 0, answer, 0); }
    struct sockaddr_storage ss; socklen_t l = addr(v6 ? SVC6 : SVC4, 9001, &ss);
    for (int i = 0; i < 20; i++) {
        int u = udp();
        connect(u, (void *)&ss, l);
        if (bound(u) == 0) leaked(u, i, "listener taken");
        close(u);
    }
    if (stolen >= 0) kill(getppid(), SIGCONT);
    control();
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    v6 = argv[2][0] == '6';
    const char *m = argv[1], *x = argc > 3 ? argv[3] : "";
    if (!strcmp(m, "unspec")) return unspec(x);
    if (!strcmp(m, "pktinfo")) return pktinfo(x);
    if (!strcmp(m, "fdswap")) return fdswap(atoi(x));
    if (!strcmp(m, "memrace")) return memrace(atoi(x));
    if (!strcmp(m, "unixswap")) return unixswap(atoi(x));
    if (!strcmp(m, "unbind")) return unbind(x);
    if (!strcmp(m, "namerace")) return namerace(atoi(x));
    if (!strcmp(m, "tforace")) return tforace(atoi(x));
    if (!strcmp(m, "fullbuf")) return fullbuf(atoi(x));
    if (!strcmp(m, "sendswap")) return sendswap(x, argc > 4 ? atoi(argv[4]) : 0);
    if (!strcmp(m, "ptzombie")) return ptzombie(atoi(x));
    if (!strcmp(m, "sigcount")) return sigcount();
    if (!strcmp(m, "steal")) return steal();
    if (!strcmp(m, "plain")) { control(); return 0; }
    return 2;
}
