/* fork + execve + waitpid of a trivial program, N times.
 *
 * Measures the per-process cost the shim adds: loading libmifshim.so and
 * running its constructor (symbol lookups, environment, policy). The driver
 * itself never has the shim loaded: it strips LD_PRELOAD from the child's
 * environment and, with --preload, adds LD_PRELOAD=<path> for the child only.
 *
 * usage: exec_true ITERATIONS PROGRAM [--preload /abs/libmifshim.so]
 * prints: ns_per_op=<median of 20 slices> mean_ns_per_op=<float> iterations=<n> ops_total=<n>
 */
#include "common.h"
#include <sys/wait.h>

extern char **environ;

static void run_once(const char *prog, char **argv, char **env)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        execve(prog, argv, env);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = 0;
        die("%s exited with status %d", prog, status);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 5 && strcmp(argv[3], "--preload") == 0)) {
        fprintf(stderr, "usage: %s ITERATIONS PROGRAM [--preload LIB]\n", argv[0]);
        return 2;
    }
    long n = parse_count(argv[1], 1000000L);
    const char *prog = argv[2];

    size_t envc = 0;
    while (environ[envc])
        envc++;
    char **env = calloc(envc + 2, sizeof(char *));
    if (!env)
        die("calloc");
    size_t e = 0;
    for (size_t i = 0; i < envc; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[e++] = environ[i];
    static char preload[4096];
    if (argc == 5) {
        if (snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", argv[4]) >= (int)sizeof(preload)) {
            errno = 0;
            die("preload path too long");
        }
        env[e++] = preload;
    }
    env[e] = NULL;
    char *child_argv[] = {(char *)prog, NULL};

    /* Warm-up (page cache, the shim's file), then CHUNKS timed slices. */
    long warm = n / 10 + 1;
    int k = n < CHUNKS ? (int)n : CHUNKS;
    double rate[CHUNKS];
    uint64_t total = 0;
    for (int c = -1; c < k; c++) {
        long lo = c < 0 ? 0 : c * n / k, hi = c < 0 ? warm : (c + 1) * n / k;
        uint64_t t0 = now_ns();
        for (long i = lo; i < hi; i++)
            run_once(prog, child_argv, env);
        uint64_t dt = now_ns() - t0;
        if (c >= 0) {
            total += dt;
            rate[c] = (double)dt / (double)(hi - lo);
        }
    }
    report_chunks(rate, k, total, n, n + warm);
    return 0;
}
