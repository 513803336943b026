/* Bad arguments to the socket calls the shim decodes (issue 9, items 13 and 14).
 *
 *   badargs 4|6 CASE...
 *
 * Runs each CASE in order on a fresh UDP socket to the testbed's service address
 * (203.0.113.10:9 or [2001:db8:ff::10]:9; nobody answers on port 9) and prints one
 * line per case, "CASE rc ERRNO" (ERRNO "-" when rc >= 0), so that a run with the
 * shim can be compared with a run without it: the kernel's answer is the reference.
 * A crash or a hang shows as missing lines. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int v6;
static void *unmapped;        /* a page that is not mapped */
static char name[300];        /* the destination, then zeros (room for namelen 200) */
static socklen_t namelen;
static char data[1] = {'x'};
static struct iovec iov = {data, 1};
static union {
    struct cmsghdr h;
    char b[256];
} cb;

static int sock(void) { return socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0); }

static void msg(struct msghdr *m) {
    memset(m, 0, sizeof *m);
    m->msg_name = name;
    m->msg_namelen = namelen;
    m->msg_iov = &iov;
    m->msg_iovlen = 1;
}

/* One control message of the given cmsg_len; the pktinfo of the socket's family. */
static void cmsg(size_t len) {
    memset(&cb, 0, sizeof cb);
    cb.h.cmsg_len = len;
    cb.h.cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
    cb.h.cmsg_type = v6 ? IPV6_PKTINFO : IP_PKTINFO;
}

static size_t pkt(void) { return v6 ? sizeof(struct in6_pktinfo) : sizeof(struct in_pktinfo); }

static long run(const char *c) {
    int s = sock();
    struct msghdr m;
    msg(&m);
    if (!strcmp(c, "connect_unmapped")) return connect(s, unmapped, namelen);
    if (!strcmp(c, "connect_unmapped_len200")) return connect(s, unmapped, 200);
    if (!strcmp(c, "connect_null_len16")) return connect(s, NULL, 16);
    if (!strcmp(c, "connect_len128")) return connect(s, (void *)name, 128);
    if (!strcmp(c, "connect_len129")) return connect(s, (void *)name, 129);
    if (!strcmp(c, "bind_unmapped")) return bind(s, unmapped, namelen);
    if (!strcmp(c, "bind_len200")) return bind(s, (void *)name, 200);
    if (!strcmp(c, "setsockopt_join_unmapped"))
        return v6 ? setsockopt(s, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, unmapped, sizeof(struct ipv6_mreq))
                  : setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, unmapped, sizeof(struct ip_mreqn));
    if (!strcmp(c, "setsockopt_mcast_if_unmapped"))
        return v6 ? setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, unmapped, sizeof(int))
                  : setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, unmapped, sizeof(struct ip_mreqn));
    if (!strcmp(c, "setsockopt_len_negative"))
        return setsockopt(s, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MULTICAST_IF : IP_MULTICAST_IF,
                          name, (socklen_t)-1);
    if (!strcmp(c, "sendto_unmapped")) return sendto(s, data, 1, 0, unmapped, namelen);
    if (!strcmp(c, "sendto_addrlen200")) return sendto(s, data, 1, 0, (void *)name, 200);
    if (!strcmp(c, "sendto_addrlen_negative")) return sendto(s, data, 1, 0, (void *)name, 0x80000000u);
    if (!strcmp(c, "sendmsg_name_unmapped")) { m.msg_name = unmapped; return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_namelen_negative")) { m.msg_namelen = 0x80000000u; return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_namelen200")) { m.msg_namelen = 200; return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_control_null_len16")) { m.msg_control = NULL; m.msg_controllen = 16; return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_control_unmapped")) { m.msg_control = unmapped; m.msg_controllen = CMSG_SPACE(pkt()); return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_cmsg_len_size_max")) { cmsg(SIZE_MAX); m.msg_control = &cb; m.msg_controllen = CMSG_SPACE(pkt()); return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_cmsg_len_size_max_minus_7")) { cmsg(SIZE_MAX - 7); m.msg_control = &cb; m.msg_controllen = CMSG_SPACE(pkt()); return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_cmsg_len15")) { cmsg(15); m.msg_control = &cb; m.msg_controllen = CMSG_SPACE(pkt()); return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_cmsg_len15_oob")) { cmsg(15); m.msg_control = &cb; m.msg_controllen = CMSG_SPACE(pkt()); return sendmsg(s, &m, MSG_OOB); }
    if (!strcmp(c, "sendmsg_cmsg_len15_iovlen1025")) { cmsg(15); m.msg_control = &cb; m.msg_controllen = CMSG_SPACE(pkt()); m.msg_iovlen = 1025; return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_pktinfo_wrong_len")) { cmsg(CMSG_LEN(pkt() - 4)); m.msg_control = &cb; m.msg_controllen = CMSG_SPACE(pkt()); return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_controllen_size_max")) { cmsg(CMSG_LEN(pkt())); m.msg_control = &cb; m.msg_controllen = SIZE_MAX; return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmsg_controllen_int_max_plus_1")) { cmsg(CMSG_LEN(pkt())); m.msg_control = &cb; m.msg_controllen = 0x80000000u; return sendmsg(s, &m, 0); }
    if (!strcmp(c, "sendmmsg_second_name_unmapped") || !strcmp(c, "sendmmsg_first_control_null")) {
        struct mmsghdr mm[3];
        memset(mm, 0, sizeof mm);
        for (int i = 0; i < 3; i++) msg(&mm[i].msg_hdr);
        if (c[9] == 's') mm[1].msg_hdr.msg_name = unmapped;
        else mm[0].msg_hdr.msg_controllen = 16;
        long r = sendmmsg(s, mm, 3, 0);
        if (r > 0) printf("# msg_len[0]=%u\n", mm[0].msg_len);
        return r;
    }
    if (!strcmp(c, "sendmsg_msghdr_unmapped")) return sendmsg(s, unmapped, 0);
    if (!strcmp(c, "sendmmsg_array_unmapped")) return sendmmsg(s, unmapped, 2, 0);
    fprintf(stderr, "unknown case %s\n", c);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    v6 = argv[1][0] == '6';
    unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped, 4096);
    if (v6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
        inet_pton(AF_INET6, "2001:db8:ff::10", &a.sin6_addr);
        memcpy(name, &a, sizeof a);
        namelen = sizeof a;
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
        inet_pton(AF_INET, "203.0.113.10", &a.sin_addr);
        memcpy(name, &a, sizeof a);
        namelen = sizeof a;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 2; i < argc; i++) {
        errno = 0;
        long r = run(argv[i]);
        printf("%s %ld %s\n", argv[i], r, r < 0 ? strerrorname_np(errno) : "-");
    }
    return 0;
}
