/* The exec family, called by name: `exec_launch CALL PATH [ARG...]` runs PATH with
   argv = {PATH, ARG...} through CALL (execve, execv, execvp, execvpe, execl, execle,
   execlp, execveat, fexecve, posix_spawn, posix_spawnp, system). When the exec returns
   it prints `errno=NAME` and exits 100; a spawn is waited for (its status is this
   program's). Built dynamically against glibc: the preload's exec hooks see it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int failed(void) {
    printf("errno=%s\n", strerrorname_np(errno));
    fflush(stdout);
    return 100;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *call = argv[1], *path = argv[2];
    char **args = argv + 2; /* {PATH, ARG..., NULL} */
    int n = argc - 3;       /* ARGs */
    char *a[4] = {0};
    for (int i = 0; i < n && i < 4; i++) a[i] = args[i + 1];
    fflush(stdout);
    if (!strcmp(call, "execve")) execve(path, args, environ);
    else if (!strcmp(call, "execv")) execv(path, args);
    else if (!strcmp(call, "execvp")) execvp(path, args);
    else if (!strcmp(call, "execvpe")) execvpe(path, args, environ);
    else if (!strcmp(call, "execl") || !strcmp(call, "execlp") || !strcmp(call, "execle")) {
        /* The list written out for each count: execle's envp follows the first NULL. */
#define LIST(f, ...) do { switch (n) { \
        case 0: f(path, path, ##__VA_ARGS__); break; \
        case 1: f(path, path, a[0], ##__VA_ARGS__); break; \
        case 2: f(path, path, a[0], a[1], ##__VA_ARGS__); break; \
        case 3: f(path, path, a[0], a[1], a[2], ##__VA_ARGS__); break; \
        case 4: f(path, path, a[0], a[1], a[2], a[3], ##__VA_ARGS__); break; \
        default: return 2; } } while (0)
        if (!strcmp(call, "execl")) LIST(execl, (char *)0);
        else if (!strcmp(call, "execlp")) LIST(execlp, (char *)0);
        else LIST(execle, (char *)0, environ);
    } else if (!strcmp(call, "execveat")) {
        execveat(AT_FDCWD, path, args, environ, 0);
    } else if (!strcmp(call, "fexecve")) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) return failed();
        fexecve(fd, args, environ);
    } else if (!strcmp(call, "posix_spawn") || !strcmp(call, "posix_spawnp")) {
        pid_t pid;
        int r = !strcmp(call, "posix_spawn") ? posix_spawn(&pid, path, 0, 0, args, environ)
                                             : posix_spawnp(&pid, path, 0, 0, args, environ);
        if (r) { errno = r; return failed(); }
        int st;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    } else if (!strcmp(call, "system")) {
        char cmd[4096] = "";
        for (char **p = args; *p; p++) { strcat(cmd, *p); strcat(cmd, " "); }
        int st = system(cmd);
        if (st < 0) return failed();
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    } else return 2;
    return failed();
}
