/* getaddrinfo() of one name, N times: the resolver path.
 *
 * Without the shim this is glibc's resolver; with it, the shim's (which asks the
 * chosen interface's servers). The benchmark points both at the same responder
 * (the testbed's dnsmasq) through the namespace's /etc/resolv.conf.
 * AF_UNSPEC, SOCK_STREAM: the usual client call (A and AAAA).
 *
 * usage: gai ITERATIONS NAME
 * prints: ns_per_op=<median of 20 timed slices> mean_ns_per_op=<float> iterations=<n>
 *         ops_total=<n> addresses=<count in the last answer>
 */
#include "common.h"
#include <netdb.h>

static int one(const char *name)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        errno = 0;
        die("getaddrinfo(%s): %s", name, gai_strerror(rc));
    }
    int count = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        count++;
    freeaddrinfo(res);
    return count;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ITERATIONS NAME\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], 10000000L);
    const char *name = argv[2];
    int count = 0;
    struct slices t;
    TIME_SLICES(t, n, one(name), count = one(name));
    report_slices(&t);
    printf("addresses=%d\n", count);
    return 0;
}
