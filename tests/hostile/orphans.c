/* An app that floods its init with orphans, for drainit's tests (tests/hostile.rs).
 *
 * usage: orphans N DONE_FILE
 *
 * Makes N orphans in batches: a batch parent forks up to 50 children and
 * exits at once without waiting, so that its children are re-parented to
 * init (drainit, as PID 1). Half of them exit at once (init inherits a
 * zombie), half live a millisecond or two (init inherits a live process that
 * exits soon after). Then writes "done N" to DONE_FILE and waits: SIGTERM
 * makes it exit with code 7. Exits 1 with a message if a fork fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 50

static void on_term(int sig) {
    (void)sig;
    _exit(7);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: orphans N DONE_FILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    signal(SIGTERM, on_term);
    for (long made = 0; made < n;) {
        long k = n - made < BATCH ? n - made : BATCH;
        pid_t parent = fork();
        if (parent < 0) {
            fprintf(stderr, "orphans: fork: %s\n", strerror(errno));
            return 1;
        }
        if (parent == 0) {
            for (long i = 0; i < k; i++) {
                pid_t child = fork();
                if (child < 0)
                    _exit(1);
                if (child == 0) {
                    if (i % 2)
                        usleep(500 + 30 * (useconds_t)i);
                    _exit(0);
                }
            }
            _exit(0);
        }
        int status;
        while (waitpid(parent, &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "orphans: a batch failed to fork\n");
            return 1;
        }
        made += k;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "done %ld\n", n) < 0 || fclose(f) != 0 || rename(tmp, argv[2]) != 0) {
        perror("orphans: writing the done file");
        return 1;
    }
    for (;;)
        pause();
}
