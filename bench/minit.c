/* minit: the baseline "minimal waitpid loop" PID 1 for the reaping benchmark.
 *
 *   minit [--] COMMAND [ARGS]...
 *
 * Forks COMMAND, then reaps any child with a blocking waitpid(-1) until
 * COMMAND itself is gone, and exits with its status. No signal handling, no
 * process group, nothing else: the floor an init can reap at. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-' && argv[1][2] == 0)
        first = 2;
    if (first >= argc) {
        fprintf(stderr, "usage: minit [--] COMMAND [ARGS]...\n");
        return 2;
    }
    pid_t child = fork();
    if (child < 0) { perror("minit: fork"); return 1; }
    if (child == 0) {
        execvp(argv[first], argv + first);
        perror("minit: exec");
        _exit(127);
    }
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid == child)
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
        if (pid < 0 && errno == ECHILD)
            return 0;
    }
}
