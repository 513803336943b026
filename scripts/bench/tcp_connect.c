/* TCP connect to a server that answers one line and closes.
 *
 * One operation = socket + connect (a real three-way handshake) + read the
 * line until EOF + close. Measures the shim's per-connection cost against a
 * real round trip.
 *
 * usage: tcp_connect ITERATIONS ADDRESS PORT
 * prints: ns_per_op=<median of 20 timed slices> mean_ns_per_op=<float> iterations=<n> ops_total=<n, warm-up included> bytes=<total bytes read>
 */
#include "common.h"

static long one(const struct sockaddr_storage *dst, socklen_t len)
{
    int fd = socket(dst->ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (const struct sockaddr *)dst, len) != 0)
        die("connect");
    char buf[512];
    long total = 0;
    for (int reads = 0; reads < 64; reads++) { /* bounded: the server sends one line */
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("read");
        if (r == 0)
            break;
        total += r;
    }
    close(fd);
    return total;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ITERATIONS ADDRESS PORT\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], 10000000L);
    struct sockaddr_storage dst;
    socklen_t len = parse_addr(argv[2], argv[3], &dst);

    long bytes = 0;
    struct slices t;
    TIME_SLICES(t, n, one(&dst, len), bytes += one(&dst, len));

    if (bytes == 0) {
        errno = 0;
        die("the server sent nothing");
    }
    report_slices(&t);
    printf("bytes=%ld\n", bytes);
    return 0;
}
