/* Many sockets open at once: does the per-socket cost stay flat?
 *
 * Opens N UDP sockets (raising RLIMIT_NOFILE as needed), connects each one
 * (the shim decides and binds there) and keeps them all open; times each
 * bucket of B sockets, then closes them all, also timed per bucket.
 *
 * usage: many_sockets N BUCKET ADDRESS PORT
 * prints: ns_per_socket=<open+connect, all buckets> first_bucket_ns=<..>
 *         last_bucket_ns=<..> last_over_first=<..> close_ns=<per close, all>
 *         close_last_over_first=<..> buckets=<ns per socket, space separated>
 */
#include "common.h"
#include <sys/resource.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s N BUCKET ADDRESS PORT\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], 1000000L);
    long bucket = parse_count(argv[2], n);
    if (n % bucket != 0) {
        errno = 0;
        die("N must be a multiple of BUCKET");
    }
    long nb = n / bucket;
    struct sockaddr_storage dst;
    socklen_t len = parse_addr(argv[3], argv[4], &dst);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit");
    rlim_t want = (rlim_t)n + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (rl.rlim_max < want)
            rl.rlim_max = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            die("setrlimit(RLIMIT_NOFILE, %ld)", (long)want);
    }

    int *fds = calloc((size_t)n, sizeof(int));
    double *open_b = calloc((size_t)nb, sizeof(double));
    double *close_b = calloc((size_t)nb, sizeof(double));
    if (!fds || !open_b || !close_b)
        die("calloc");

    uint64_t total_open = 0;
    for (long b = 0; b < nb; b++) {
        uint64_t t0 = now_ns();
        for (long i = b * bucket; i < (b + 1) * bucket; i++) {
            fds[i] = socket(dst.ss_family, SOCK_DGRAM, 0);
            if (fds[i] < 0)
                die("socket #%ld", i);
            if (connect(fds[i], (const struct sockaddr *)&dst, len) != 0)
                die("connect #%ld", i);
        }
        uint64_t dt = now_ns() - t0;
        total_open += dt;
        open_b[b] = (double)dt / (double)bucket;
    }
    /* Close in reverse order so that the last bucket closed is the first opened:
     * "first" close bucket = highest fds, when the most sockets are open. */
    uint64_t total_close = 0;
    for (long b = nb - 1; b >= 0; b--) {
        uint64_t t0 = now_ns();
        for (long i = (b + 1) * bucket - 1; i >= b * bucket; i--)
            if (close(fds[i]) != 0)
                die("close #%ld", i);
        uint64_t dt = now_ns() - t0;
        total_close += dt;
        close_b[b] = (double)dt / (double)bucket;
    }

    printf("ns_per_socket=%.1f\n", (double)total_open / (double)n);
    printf("first_bucket_ns=%.1f\nlast_bucket_ns=%.1f\n", open_b[0], open_b[nb - 1]);
    printf("last_over_first=%.3f\n", open_b[nb - 1] / open_b[0]);
    printf("close_ns=%.1f\n", (double)total_close / (double)n);
    printf("close_last_over_first=%.3f\n", close_b[nb - 1] / close_b[0]);
    printf("buckets=");
    for (long b = 0; b < nb; b++)
        printf("%s%.0f", b ? " " : "", open_b[b]);
    printf("\n");
    return 0;
}
