/* Shared helpers for the mifshim load generators (scripts/bench/, one .c file each).
 *
 * Every generator times its own loop with CLOCK_MONOTONIC so that process
 * start-up (and with it the shim's constructor) is excluded, and prints its
 * results as `key=value` lines on stdout for scripts/bench.sh to parse.
 */
#ifndef MIFSHIM_BENCH_COMMON_H
#define MIFSHIM_BENCH_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((unused)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    if (errno)
        fprintf(stderr, ": %s", strerror(errno));
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Parses a positive count; refuses 0, garbage and absurd values (bounded loops). */
__attribute__((unused)) static long parse_count(const char *s, long max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max) {
        errno = 0;
        die("bad count '%s' (1..%ld)", s, max);
    }
    return v;
}

/* Fills *ss from a numeric IPv4 or IPv6 address and a port. */
__attribute__((unused)) static socklen_t parse_addr(const char *host, const char *port, struct sockaddr_storage *ss)
{
    long p = parse_count(port, 65535);
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        return sizeof(*v4);
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        return sizeof(*v6);
    }
    errno = 0;
    die("not a numeric address: %s", host);
    return 0;
}

/* Timing is split into CHUNKS equal slices; a generator reports the fastest and the
 * median slice rate (robust against the other tenants of a shared machine stealing a
 * slice) and the mean. */
#define CHUNKS 20

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

__attribute__((unused)) static double median_of(double *v, int k)
{
    qsort(v, (size_t)k, sizeof(double), cmp_double);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

/* The timing of one generator run: the rate of each of k slices, their total time, the
 * timed operations and all operations (warm-up included). */
struct slices {
    double rate[CHUNKS];
    int k;
    uint64_t total_ns;
    long n;
    long ops_total;
};

/* Runs the statement WARM n/10+1 times untimed, then the statement OP n times in CHUNKS
 * timed slices, into the struct slices S. A macro rather than a function taking a
 * callback, so that the timed loop makes no call the measured program does not. */
#define TIME_SLICES(S, N, WARM, OP)                                                        \
    do {                                                                                   \
        (S).n = (N);                                                                       \
        long warm_ = (S).n / 10 + 1;                                                       \
        for (long i_ = 0; i_ < warm_; i_++) {                                              \
            WARM;                                                                          \
        }                                                                                  \
        (S).k = (S).n < CHUNKS ? (int)(S).n : CHUNKS;                                      \
        (S).total_ns = 0;                                                                  \
        for (int c_ = 0; c_ < (S).k; c_++) {                                               \
            long lo_ = c_ * (S).n / (S).k, hi_ = (c_ + 1) * (S).n / (S).k;                 \
            uint64_t t0_ = now_ns();                                                       \
            for (long i_ = lo_; i_ < hi_; i_++) {                                          \
                OP;                                                                        \
            }                                                                              \
            uint64_t dt_ = now_ns() - t0_;                                                 \
            (S).total_ns += dt_;                                                           \
            (S).rate[c_] = (double)dt_ / (double)(hi_ - lo_);                              \
        }                                                                                  \
        (S).ops_total = (S).n + warm_;                                                     \
    } while (0)

/* Prints mean_ns_per_op, min_ns_per_op (the fastest slice), ns_per_op (the median
 * slice), iterations, ops_total. */
__attribute__((unused)) static void report_chunks(double *chunk_ns_per_op, int k, uint64_t total_ns,
                                                  long n, long ops_total)
{
    printf("mean_ns_per_op=%.1f\n", (double)total_ns / (double)n);
    double lo = chunk_ns_per_op[0];
    for (int i = 1; i < k; i++)
        if (chunk_ns_per_op[i] < lo)
            lo = chunk_ns_per_op[i];
    printf("min_ns_per_op=%.1f\n", lo);
    printf("ns_per_op=%.1f\niterations=%ld\nops_total=%ld\n", median_of(chunk_ns_per_op, k), n, ops_total);
}

/* report_chunks of a TIME_SLICES run. */
__attribute__((unused)) static void report_slices(struct slices *s)
{
    report_chunks(s->rate, s->k, s->total_ns, s->n, s->ops_total);
}

#endif
