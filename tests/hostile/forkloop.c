/* An app that forks continuously and ignores SIGTERM, for drainit's tests
 * (tests/hostile.rs).
 *
 * usage: forkloop LOOPERS READY_FILE
 *
 * Ignores SIGTERM (its children inherit that), starts LOOPERS children that
 * call setsid() (out of the app's process group, so that only a SIGKILL to
 * every process reaches them), and then every looper, the app included,
 * forks a short-lived child every half millisecond, forever, keeping at most
 * 64 of them alive. Writes "ready" to READY_FILE once the loopers run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ALIVE 64

static void loop(void) {
    int alive = 0;
    for (;;) {
        while (alive > 0 && waitpid(-1, NULL, WNOHANG) > 0)
            alive--;
        if (alive >= MAX_ALIVE) {
            if (wait(NULL) > 0)
                alive--;
            continue;
        }
        pid_t child = fork();
        if (child == 0) {
            usleep(5000);
            _exit(0);
        }
        if (child > 0)
            alive++;
        usleep(500);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: forkloop LOOPERS READY_FILE\n");
        return 2;
    }
    signal(SIGTERM, SIG_IGN);
    int loopers = atoi(argv[1]);
    for (int i = 0; i < loopers; i++) {
        pid_t looper = fork();
        if (looper == 0) {
            setsid();
            loop();
        }
        if (looper < 0) {
            perror("forkloop: fork");
            return 1;
        }
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs("ready\n", f) < 0 || fclose(f) != 0 || rename(tmp, argv[2]) != 0) {
        perror("forkloop: writing the ready file");
        return 1;
    }
    loop();
}
