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
    struct slices t;
    TIME_SLICES(t, n, run_once(prog, child_argv, env), run_once(prog, child_argv, env));
    report_slices(&t);
    return 0;
}
