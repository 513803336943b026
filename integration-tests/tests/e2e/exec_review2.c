/* Reproducers for the second review of the exec hooks' stack (exec_review2.rs). Built
   dynamically against glibc: the preload's hooks see every call. The new program's
   environment is `environ` without its LD_PRELOAD entry and with N `FILLERi=x` entries
   (what `env -u LD_PRELOAD`, a sanitised environment or a program's own block gives):
   the hook rebuilds it (with_preload_env) before the exec.
     exec_review2 clone KIB N NAME   clone(CLONE_VM|CLONE_VFORK) with a KIB stack (guard
                                     page below) whose child execvpe's NAME; prints
                                     `exited=N` or `signal=N`
     exec_review2 thread KIB N NAME  posix_spawnp(NAME) from a thread with a KIB stack;
                                     prints `status=N`, `errno=E`, or dies
     exec_review2 execveat-nofollow 0 0 PATH
                                     execveat(AT_FDCWD, PATH, AT_SYMLINK_NOFOLLOW);
                                     prints `errno=E`
     exec_review2 execveat-at DIR 0 PATH
                                     execveat(open(DIR), PATH, 0); prints `errno=E`
     exec_review2 reuid-execvp 0 0 NAME
                                     setreuid(65534, 0) (root: real uid nobody,
                                     effective root), then execvp(NAME); prints
                                     `errno=E` */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char *name;
static char **env;

static void build_env(int n) {
    int c = 0;
    for (char **e = environ; *e; e++) c++;
    env = calloc(c + n + 1, sizeof *env);
    int k = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11)) env[k++] = *e;
    for (int i = 0; i < n; i++) {
        char *b = malloc(32);
        snprintf(b, 32, "FILLER%d=x", i);
        env[k++] = b;
    }
    env[k] = 0;
}

static int clone_child(void *arg) {
    (void)arg;
    char *av[] = {name, 0};
    execvpe(name, av, env);
    _exit(127);
}

static void *spawn_thread(void *arg) {
    (void)arg;
    char *av[] = {name, 0};
    pid_t pid;
    int r = posix_spawnp(&pid, name, 0, 0, av, env);
    if (r) {
        printf("errno=%s\n", strerrorname_np(r));
        fflush(stdout);
        return 0;
    }
    int st;
    waitpid(pid, &st, 0);
    printf("status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    size_t sz = (size_t)atoi(argv[2]) * 1024;
    build_env(atoi(argv[3]));
    name = argv[4];
    if (!strcmp(argv[1], "execveat-nofollow")) {
        char *av[] = {name, 0};
        execveat(AT_FDCWD, name, av, environ, AT_SYMLINK_NOFOLLOW);
        printf("errno=%s\n", strerrorname_np(errno));
        return 100;
    }
    if (!strcmp(argv[1], "execveat-at")) {
        char *av[] = {name, 0};
        int d = open(argv[2], O_RDONLY | O_DIRECTORY);
        if (d < 0) return 7;
        execveat(d, name, av, environ, 0);
        printf("errno=%s\n", strerrorname_np(errno));
        return 100;
    }
    if (!strcmp(argv[1], "reuid-execvp")) {
        char *av[] = {name, 0};
        if (setreuid(65534, 0)) return 8;
        execvp(name, av);
        printf("errno=%s\n", strerrorname_np(errno));
        return 100;
    }
    if (!strcmp(argv[1], "clone")) {
        char *stk = mmap(0, sz + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stk == MAP_FAILED) return 3;
        mprotect(stk, 4096, PROT_NONE);
        pid_t p = clone(clone_child, stk + 4096 + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, 0);
        if (p < 0) return 4;
        int st;
        waitpid(p, &st, 0);
        if (WIFEXITED(st)) printf("exited=%d\n", WEXITSTATUS(st));
        else printf("signal=%d\n", WTERMSIG(st));
        return 0;
    }
    if (!strcmp(argv[1], "thread")) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        if (pthread_attr_setstacksize(&at, sz)) return 5;
        pthread_t t;
        if (pthread_create(&t, &at, spawn_thread, 0)) return 6;
        pthread_join(t, 0);
        return 0;
    }
    return 2;
}
