/* sendto() hot loop on one unconnected UDP socket.
 *
 * Isolates the shim's per-datagram cost once the first decision for the
 * socket has been made (for unconnected UDP the shim turns sendto into a
 * sendmsg carrying an IP_PKTINFO / IPV6_PKTINFO control message).
 * Send to a port nobody listens on: the datagrams leave the host and are
 * dropped upstream, nothing replies to this socket.
 *
 * With IFNAME the program itself does what the shim does, without any shim:
 * each datagram goes out with sendmsg() carrying an IP_PKTINFO / IPV6_PKTINFO
 * control message naming IFNAME's index. That is the kernel floor of the design.
 * With IFNAME unicast-if it instead sets IP_UNICAST_IF / IPV6_UNICAST_IF once on
 * the socket and sends with plain sendto(): the floor of that alternative design.
 * Datagrams carry 64 bytes.
 *
 * usage: sendto_loop ITERATIONS ADDRESS PORT [IFNAME [pktinfo|unicast-if]]
 * prints: ns_per_op=<median of 20 timed slices> mean_ns_per_op=<float> iterations=<n> ops_total=<n, warm-up included> errors=<n>
 */
#include "common.h"
#include <net/if.h>

static struct msghdr msg;
static struct iovec iov;
static union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
} cbuf;

/* Prepares msg so that the loops send with sendmsg(PKTINFO ifindex), as the shim does. */
static void setup_pktinfo(struct sockaddr_storage *dst, socklen_t len, unsigned ifindex, void *buf,
                          size_t n)
{
    iov.iov_base = buf;
    iov.iov_len = n;
    msg.msg_name = dst;
    msg.msg_namelen = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    struct cmsghdr *c = (struct cmsghdr *)cbuf.buf;
    if (dst->ss_family == AF_INET) {
        struct in_pktinfo pi = {.ipi_ifindex = (int)ifindex};
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        msg.msg_controllen = CMSG_SPACE(sizeof(pi));
    } else {
        struct in6_pktinfo pi = {.ipi6_ifindex = ifindex};
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        msg.msg_controllen = CMSG_SPACE(sizeof(pi));
    }
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6 ||
        (argc == 6 && strcmp(argv[5], "pktinfo") != 0 && strcmp(argv[5], "unicast-if") != 0)) {
        fprintf(stderr, "usage: %s ITERATIONS ADDRESS PORT [IFNAME [pktinfo|unicast-if]]\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], 1000000000L);
    struct sockaddr_storage dst;
    socklen_t len = parse_addr(argv[2], argv[3], &dst);
    const size_t payload = 64;
    char buf[64];
    memset(buf, 'm', sizeof(buf));
    int unicast_if = argc == 6 && strcmp(argv[5], "unicast-if") == 0;
    int pktinfo = argc >= 5 && !unicast_if;
    unsigned ifindex = 0;
    if (argc >= 5 && (ifindex = if_nametoindex(argv[4])) == 0)
        die("if_nametoindex(%s)", argv[4]);
    if (pktinfo)
        setup_pktinfo(&dst, len, ifindex, buf, payload);

    int fd = socket(dst.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    if (unicast_if) {
        /* Both options take the index in network byte order. */
        int v4 = dst.ss_family == AF_INET;
        int idx = (int)htonl(ifindex);
        if (setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_UNICAST_IF : IPV6_UNICAST_IF, &idx,
                       sizeof(idx)) != 0)
            die("setsockopt(UNICAST_IF)");
    }

    long errors = 0;
    /* Warm-up, including the shim's first decision for this socket. */
#define SEND_ONE                                                                            \
    (errors += (pktinfo ? sendmsg(fd, &msg, 0)                                              \
                        : sendto(fd, buf, payload, 0, (const struct sockaddr *)&dst, len)) < 0)
    struct slices t;
    TIME_SLICES(t, n, SEND_ONE, SEND_ONE);
#undef SEND_ONE

    if (errors > n / 100 + 1) {
        errno = 0;
        die("%ld of %ld sendto calls failed", errors, n + n / 10 + 1);
    }
    close(fd);
    report_slices(&t);
    printf("errors=%ld\n", errors);
    return 0;
}
