/* Static reproducers for review_1203.rs under `mifrun --supervise` (a dynamic program
   there keeps the preload, which would answer first). Each mode prints one line per
   call: `sent` or the errno's name.
     unspec  AF_UNSPEC msg_name on a connected AF_INET6 socket, eth0's PKTINFO source
             (sendmsg, sendmmsg)
     long    a 4096-byte filler message (level IPPROTO_TCP) then eth0's PKTINFO source
             (sendmsg IPv6, sendmmsg IPv6, sendmsg IPv4 IP_PKTINFO)
     scm     the connected socket passed by SCM_RIGHTS, then eth0's source on it
     mapped  AF_INET6 connected to ::ffff:203.0.113.10, IPV6_PKTINFO ::ffff:eth0 and
             IP_PKTINFO eth0 (sendmsg, sendmmsg)
     odd     overlong cmsg_len, unpadded, IPV6_2292PKTINFO, a 17-byte filler, trailing
             bytes: each with eth0's source, sendmsg and sendmmsg on one line */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned char ctl[8192];

static void say(long r) {
    if (r >= 0) printf("sent"); else printf("%s", strerrorname_np(errno));
}
static int udp6(const char *peer) {
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(9000)};
    inet_pton(AF_INET6, peer, &a.sin6_addr);
    if (connect(s, (void *)&a, sizeof a)) perror("connect");
    return s;
}
static int udp4(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9000)};
    inet_pton(AF_INET, "203.0.113.10", &a.sin_addr);
    if (connect(s, (void *)&a, sizeof a)) perror("connect");
    return s;
}
/* A cmsg at ctl+off: len, level, type, payload; returns the next aligned offset. */
static size_t put(size_t off, size_t len, int level, int type, const void *p, size_t n) {
    struct cmsghdr *c = (void *)(ctl + off);
    c->cmsg_len = len; c->cmsg_level = level; c->cmsg_type = type;
    if (p) memcpy(CMSG_DATA(c), p, n);
    return off + CMSG_ALIGN(len);
}
static size_t pk6(size_t off, const char *a) {
    struct in6_pktinfo pi = {0};
    inet_pton(AF_INET6, a, &pi.ipi6_addr);
    return put(off, CMSG_LEN(sizeof pi), IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
}
static size_t pk4(size_t off, const char *a) {
    struct in_pktinfo pi = {0};
    inet_pton(AF_INET, a, &pi.ipi_spec_dst);
    return put(off, CMSG_LEN(sizeof pi), IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
}
static long send1(int s, void *name, socklen_t nl, size_t clen, int mm) {
    struct iovec iov = {"x", 1};
    struct msghdr h = {.msg_name = name, .msg_namelen = nl, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = ctl, .msg_controllen = clen};
    if (!mm) return sendmsg(s, &h, 0);
    struct mmsghdr v = {.msg_hdr = h};
    return sendmmsg(s, &v, 1, 0);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *m = argv[1];
    const char *E6 = "2001:db8:10::2";
    if (!strcmp(m, "unspec")) {
        int s = udp6("2001:db8:ff::10");
        struct sockaddr_in6 u = {0}; /* sin6_family = AF_UNSPEC */
        size_t n = pk6(0, E6);
        say(send1(s, &u, sizeof u, n, 0)); printf("\n");
        say(send1(s, &u, sizeof u, n, 1)); printf("\n");
    } else if (!strcmp(m, "long")) {
        int s = udp6("2001:db8:ff::10");
        size_t n = put(0, 4096, IPPROTO_TCP, 1, 0, 0);
        n = pk6(n, E6);
        say(send1(s, 0, 0, n, 0)); printf("\n");
        say(send1(s, 0, 0, n, 1)); printf("\n");
        int t = udp4();
        memset(ctl, 0, sizeof ctl);
        n = put(0, 4096, IPPROTO_TCP, 1, 0, 0);
        n = pk4(n, "198.51.100.2");
        say(send1(t, 0, 0, n, 0)); printf("\n");
    } else if (!strcmp(m, "scm")) {
        int s = udp6("2001:db8:ff::10");
        int sp[2]; socketpair(AF_UNIX, SOCK_DGRAM, 0, sp);
        union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } u;
        struct iovec iov = {"f", 1};
        struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
        struct cmsghdr *c = CMSG_FIRSTHDR(&h);
        c->cmsg_len = CMSG_LEN(sizeof(int)); c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS;
        memcpy(CMSG_DATA(c), &s, sizeof s);
        sendmsg(sp[0], &h, 0);
        char d; struct iovec riov = {&d, 1};
        struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
        recvmsg(sp[1], &r, 0);
        int got; memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&r)), sizeof got);
        size_t n = pk6(0, E6);
        printf("own "); say(send1(s, 0, 0, n, 0)); printf("\n");
        printf("scm "); say(send1(got, 0, 0, n, 0)); printf("\n");
    } else if (!strcmp(m, "mapped")) {
        int s = udp6("::ffff:203.0.113.10");
        size_t n = pk6(0, "::ffff:198.51.100.2");
        say(send1(s, 0, 0, n, 0)); printf(" "); say(send1(s, 0, 0, n, 1)); printf("\n");
        n = pk4(0, "198.51.100.2");
        say(send1(s, 0, 0, n, 0)); printf(" "); say(send1(s, 0, 0, n, 1)); printf("\n");
    } else if (!strcmp(m, "odd")) {
        int s = udp6("2001:db8:ff::10");
        struct in6_pktinfo pi = {0};
        inet_pton(AF_INET6, E6, &pi.ipi6_addr);
        size_t lens[5];
        memset(ctl, 0, sizeof ctl); put(0, 40, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi); lens[0] = 40;
        for (int k = 0; k < 5; k++) {
            memset(ctl, 0, sizeof ctl);
            size_t n;
            switch (k) {
            case 0: put(0, 40, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi); n = 40; break;
            case 1: put(0, 36, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi); n = 36; break;
            case 2: n = put(0, CMSG_LEN(sizeof pi), IPPROTO_IPV6, 2 /* IPV6_2292PKTINFO */, &pi, sizeof pi); break;
            case 3: n = put(0, 17, IPPROTO_TCP, 1, "z", 1); n = pk6(n, E6); break;
            default: n = pk6(0, E6) + 8; break;
            }
            lens[k] = n;
            say(send1(s, 0, 0, n, 0)); printf(" ");
            /* the same bytes again (sendmsg may not change them, but be sure) */
            say(send1(s, 0, 0, lens[k], 1)); printf("\n");
        }
    } else return 2;
    fflush(stdout);
    return 0;
}
