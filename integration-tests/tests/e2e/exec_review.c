/* Reproducers for the exec hooks' review (exec_review.rs). Built dynamically against
   glibc: the preload's hooks see every call.
     exec_review spawn-chdir DIR PATH [ARG...]  posix_spawn(PATH) with a chdir(DIR) file
                                                action; waits, prints `status=N`
     exec_review spawnp-chdir DIR PATH [ARG...] the same by posix_spawnp
     exec_review spawn-fchdir DIR PATH [ARG...] the same with an fchdir to DIR opened
     exec_review execve PATH                    execve(PATH); prints `errno=NAME`
     exec_review efault-path                    execve with a bad path pointer
     exec_review efault-envp                    execve("/bin/true") with a bad envp
     exec_review efault-envp-entry              ... with a bad pointer in envp
     exec_review clone KIB PATH [HOW]           clone(CLONE_VM|CLONE_VFORK) with a KIB
                                                stack whose child execs PATH (HOW:
                                                execve, the default, execvp or execl);
                                                prints `exited=N` or `signal=N`
     exec_review thread KIB NAME                posix_spawnp(NAME) from a thread with a
                                                KIB stack; prints `status=N`, `errno=E`
                                                or dies
     exec_review e2big PATH N                   execv(PATH) with N 100-byte arguments */
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

/* A bad address the compiler cannot see through (the kernel answers EFAULT). */
static volatile unsigned long bad_address = 16;

static int failed(int e) {
    printf("errno=%s\n", strerrorname_np(e));
    fflush(stdout);
    return 100;
}

static char *clone_prog;
static const char *clone_how = "execve";
static int clone_child(void *arg) {
    (void)arg;
    char *av[] = {clone_prog, 0};
    if (!strcmp(clone_how, "execvp")) execvp(clone_prog, av);
    else if (!strcmp(clone_how, "execl")) execl(clone_prog, clone_prog, (char *)0);
    else execve(clone_prog, av, environ);
    _exit(127);
}

static char *spawn_name;
static void *spawn_thread(void *arg) {
    (void)arg;
    char *av[] = {spawn_name, 0};
    pid_t pid;
    int r = posix_spawnp(&pid, spawn_name, 0, 0, av, environ);
    if (r) {
        failed(r);
        return 0;
    }
    int st;
    waitpid(pid, &st, 0);
    printf("status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *m = argv[1];
    char *args[] = {"true", 0};
    fflush(stdout);
    if ((!strcmp(m, "spawn-chdir") || !strcmp(m, "spawnp-chdir") || !strcmp(m, "spawn-fchdir"))
        && argc >= 4) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        /* stdout kept as it is, through a dup2 (as Rust's Command does). */
        posix_spawn_file_actions_adddup2(&fa, 1, 1);
        if (!strcmp(m, "spawn-fchdir")) {
            int d = open(argv[2], O_RDONLY | O_DIRECTORY);
            if (d < 0) return failed(errno);
            posix_spawn_file_actions_addfchdir_np(&fa, d);
        } else {
            posix_spawn_file_actions_addchdir_np(&fa, argv[2]);
        }
        pid_t pid;
        int r = !strcmp(m, "spawnp-chdir")
            ? posix_spawnp(&pid, argv[3], &fa, 0, argv + 3, environ)
            : posix_spawn(&pid, argv[3], &fa, 0, argv + 3, environ);
        if (r) return failed(r);
        int st;
        waitpid(pid, &st, 0);
        printf("status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return 0;
    }
    if (!strcmp(m, "execve") && argc >= 3) {
        char *av[] = {argv[2], 0};
        execve(argv[2], av, environ);
        return failed(errno);
    }
    if (!strcmp(m, "efault-path")) {
        execve((const char *)bad_address, args, environ);
        return failed(errno);
    }
    if (!strcmp(m, "efault-envp")) {
        char *const *bad = (char *const *)bad_address;
        execve("/bin/true", args, bad);
        return failed(errno);
    }
    if (!strcmp(m, "efault-envp-entry")) {
        char *ev[] = {(char *)bad_address, 0};
        execve("/bin/true", args, ev);
        return failed(errno);
    }
    if (!strcmp(m, "clone") && argc >= 4) {
        size_t sz = (size_t)atoi(argv[2]) * 1024;
        clone_prog = argv[3];
        if (argc >= 5) clone_how = argv[4];
        char *stk = mmap(0, sz + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stk == MAP_FAILED) return 3;
        mprotect(stk, 4096, PROT_NONE); /* a guard page below the stack */
        pid_t p = clone(clone_child, stk + 4096 + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, 0);
        if (p < 0) return failed(errno);
        int st;
        waitpid(p, &st, 0);
        if (WIFEXITED(st)) printf("exited=%d\n", WEXITSTATUS(st));
        else printf("signal=%d\n", WTERMSIG(st));
        return 0;
    }
    if (!strcmp(m, "thread") && argc >= 4) {
        spawn_name = argv[3];
        pthread_attr_t at;
        pthread_attr_init(&at);
        if (pthread_attr_setstacksize(&at, (size_t)atoi(argv[2]) * 1024)) return 4;
        pthread_t t;
        if (pthread_create(&t, &at, spawn_thread, 0)) return 5;
        pthread_join(t, 0);
        return 0;
    }
    if (!strcmp(m, "e2big") && argc >= 4) {
        int n = atoi(argv[3]);
        char **av = calloc(n + 2, sizeof *av);
        char *word = malloc(101);
        memset(word, 'x', 100);
        word[100] = 0;
        av[0] = argv[2];
        for (int i = 1; i <= n; i++) av[i] = word;
        execv(argv[2], av);
        return failed(errno);
    }
    return 2;
}
