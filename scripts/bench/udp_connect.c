/* UDP socket()+connect()+close() loop to one destination.
 *
 * Isolates the shim's per-socket work: the routing decision and the one
 * setsockopt(SO_BINDTOIFINDEX) it issues at connect time. No datagram is sent.
 *
 * With IFNAME the program itself does what the shim does at connect, a
 * setsockopt(SO_BINDTOIFINDEX) to IFNAME's index, without any shim: that is
 * the kernel floor of the design, against which the shim's own overhead shows.
 *
 * With the word null-syscall instead, it issues one system call that does no
 * work (getppid) per socket: the floor of *any* design that adds one system
 * call per socket, whatever that call is.
 *
 * usage: udp_connect ITERATIONS ADDRESS PORT [IFNAME | null-syscall]
 * prints: ns_per_op=<median of 20 timed slices> mean_ns_per_op=<float> iterations=<n> ops_total=<n, warm-up included>
 */
#include "common.h"
#include <net/if.h>
#include <sys/syscall.h>

static int bind_ifindex; /* 0: plain; else emulate the shim's one setsockopt */
static int null_syscall; /* 1: one getppid() per socket instead */

static void one(const struct sockaddr_storage *dst, socklen_t len)
{
    int fd = socket(dst->ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    if (bind_ifindex &&
        setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &bind_ifindex, sizeof(bind_ifindex)) != 0)
        die("setsockopt(SO_BINDTOIFINDEX)");
    if (null_syscall)
        (void)syscall(SYS_getppid);
    if (connect(fd, (const struct sockaddr *)dst, len) != 0)
        die("connect");
    if (close(fd) != 0)
        die("close");
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s ITERATIONS ADDRESS PORT [IFNAME]\n", argv[0]);
        return 2;
    }
    if (argc == 5 && strcmp(argv[4], "null-syscall") == 0)
        null_syscall = 1;
    else if (argc == 5 && (bind_ifindex = (int)if_nametoindex(argv[4])) == 0)
        die("if_nametoindex(%s)", argv[4]);
    long n = parse_count(argv[1], 100000000L);
    struct sockaddr_storage dst;
    socklen_t len = parse_addr(argv[2], argv[3], &dst);

    /* Warm-up: first decision, page faults, lazy symbol binding. */
    struct slices t;
    TIME_SLICES(t, n, one(&dst, len), one(&dst, len));
    report_slices(&t);
    return 0;
}
