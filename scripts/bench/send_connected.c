/* Datagrams on one connected UDP socket: the per-datagram cost once `connect` has
 * decided the socket (for the supervisor: what a connected socket costs per datagram).
 *
 * send    : send(fd, buf, 64, 0)  -- the seccomp filter allows it (no address)
 * sendmsg : sendmsg(fd, {msg_name = NULL}, 0) -- the filter cannot read the msghdr, so
 *           under the supervisor every one is a notification (answered at once: no
 *           address, settled at connect)
 * Send to a port nobody listens on: the datagrams leave the host and are dropped
 * upstream; an ICMP port unreachable may fail a later send (ECONNREFUSED), counted
 * as an error, not a stop.
 *
 * usage: send_connected ITERATIONS ADDRESS PORT send|sendmsg
 * prints: ns_per_op=<median of 20 timed slices> mean_ns_per_op=<float> iterations=<n> ops_total=<n, warm-up included> errors=<n>
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[4], "send") != 0 && strcmp(argv[4], "sendmsg") != 0)) {
        fprintf(stderr, "usage: %s ITERATIONS ADDRESS PORT send|sendmsg\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], 1000000000L);
    struct sockaddr_storage dst;
    socklen_t len = parse_addr(argv[2], argv[3], &dst);
    char buf[64];
    memset(buf, 'm', sizeof(buf));
    int use_msg = strcmp(argv[4], "sendmsg") == 0;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    int fd = socket(dst.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (const struct sockaddr *)&dst, len) != 0)
        die("connect");
    long errors = 0;
#define SEND_ONE (errors += (use_msg ? sendmsg(fd, &msg, 0) : send(fd, buf, sizeof(buf), 0)) < 0)
    struct slices t;
    TIME_SLICES(t, n, SEND_ONE, SEND_ONE);
#undef SEND_ONE
    if (errors > n / 2 + 1) {
        errno = 0;
        die("%ld of %ld sends failed", errors, n + n / 10 + 1);
    }
    close(fd);
    report_slices(&t);
    printf("errors=%ld\n", errors);
    return 0;
}
