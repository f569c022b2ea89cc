/* stamp: the app under test for signal latency and deadline precision.
 *
 *   stamp FIFO
 *
 * Opens FIFO for writing, writes a "ready" record, then sleeps in pause().
 * Every SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGHUP or SIGQUIT runs a handler
 * that reads CLOCK_MONOTONIC first thing and writes one 16-byte record
 * {int64 signo, int64 ns} to the FIFO (atomic: < PIPE_BUF). The ready record
 * has signo 0. It never exits on its own: only SIGKILL ends it, which closes
 * the FIFO (the reader then sees EOF at the app's death). */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int out = -1;

static void record(int64_t signo) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t rec[2] = {signo, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec};
    (void)!write(out, rec, sizeof rec);
}

static void handler(int signo) { record(signo); }

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: stamp FIFO\n");
        return 2;
    }
    out = open(argv[1], O_WRONLY | O_CLOEXEC);
    if (out < 0) { perror("stamp: open"); return 1; }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    record(0);
    for (;;)
        pause();
}
