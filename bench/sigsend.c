/* sigsend: the sender side of the signal-forwarding latency benchmark.
 *
 *   sigsend PID FIFO COUNT GAP_US
 *
 * Opens FIFO (written by `stamp`), waits for stamp's ready record, then COUNT
 * times: reads CLOCK_MONOTONIC, kill(PID, SIGUSR1) (PID is the init, seen from
 * the host), waits for stamp's record of that signal, prints the latency
 * (stamp's handler time - the time just before kill) in ns on stdout, and
 * sleeps GAP_US so that the init is back asleep before the next signal.
 * One signal in flight at a time: they cannot coalesce. Exits 1 if an ack does
 * not come within 2 s (a lost signal). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads one 16-byte record, waiting at most timeout_ms. */
static int read_record(int fd, int64_t rec[2], int timeout_ms) {
    size_t got = 0;
    while (got < 16) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        ssize_t n = read(fd, (char *)rec + got, 16 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: sigsend PID FIFO COUNT GAP_US\n");
        return 2;
    }
    pid_t pid = (pid_t)atoi(argv[1]);
    long count = atol(argv[3]);
    long gap_us = atol(argv[4]);
    /* O_RDWR: does not block waiting for the writer, never sees EOF. */
    int fd = open(argv[2], O_RDWR | O_CLOEXEC);
    if (fd < 0) { perror("sigsend: open"); return 1; }
    int64_t rec[2];
    if (read_record(fd, rec, 10000) < 0 || rec[0] != 0) {
        fprintf(stderr, "sigsend: no ready record from the app\n");
        return 1;
    }
    struct timespec gap = {.tv_sec = gap_us / 1000000, .tv_nsec = (gap_us % 1000000) * 1000};
    for (long i = 0; i < count; i++) {
        nanosleep(&gap, NULL);
        int64_t t0 = now_ns();
        if (kill(pid, SIGUSR1) < 0) { perror("sigsend: kill"); return 1; }
        if (read_record(fd, rec, 2000) < 0) {
            fprintf(stderr, "sigsend: signal %ld was not forwarded within 2 s\n", i);
            return 1;
        }
        if (rec[0] != SIGUSR1) {
            fprintf(stderr, "sigsend: the app got signal %lld, not SIGUSR1\n", (long long)rec[0]);
            return 1;
        }
        printf("%lld\n", (long long)(rec[1] - t0));
    }
    return 0;
}
