/* orphans: the orphan burst of the reaping benchmark, run as the init's child.
 *
 *   orphans N OUTFILE                   burst mode
 *   orphans N OUTFILE ACK_FIFO CTL_FIFO stopped-init mode
 *
 * A child of ours starts N grandchildren, which block on a pipe, then exits:
 * the N become orphans, re-parented to the init (PID 1). They are processes,
 * not threads, made with clone(CLONE_VM): they share one address space, so
 * that their exits cost little and the time measured is mostly the init's
 * reaping, not N address-space teardowns. We reap that child, then release
 * the N at once by closing the pipe.
 *
 * Burst mode: release, then wait until every one of the N has exited (a pidfd
 * turns readable when its process becomes a zombie), then until every one is
 * gone (kill(pid, 0) succeeds on a zombie and fails with ESRCH once it has
 * been reaped), polling every 50 us.
 *
 * Stopped-init mode, with the host (bench.py), which can SIGSTOP/SIGCONT the
 * init from outside the namespace: we write 'R' to ACK_FIFO when the orphans
 * are ready; the host stops the init and writes a byte to CTL_FIFO; we
 * release and wait until all N are zombies, then write 'Z'; the host reads
 * the clock and sends SIGCONT to the init; we wait until all are reaped. The
 * time is then the init's reaping of N zombies that are all ready, alone.
 *
 * OUTFILE gets "RELEASE_NS EXITED_NS REAPED_NS INIT_CPU_NS ZOMBIES_LEFT":
 * CLOCK_MONOTONIC instants of the release, of the last exit and of the last
 * reap; the CPU time PID 1 used from the release (burst) or from the last
 * exit (stopped-init) to the last reap, from /proc/1/schedstat (we run in the
 * init's namespace, with its own /proc); and a final count of zombies in
 * /proc, which must be 0. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK_SIZE (16 * 1024)

static int gate[2];

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* An orphan: blocks until the gate closes, then exits. Raw syscalls only: it
 * shares its memory (errno included) with its siblings. */
static int orphan(void *arg) {
    char c;
    (void)arg;
    syscall(SYS_close, gate[1]);
    while (syscall(SYS_read, gate[0], &c, 1) < 0) {}
    syscall(SYS_exit, 0);
    return 0;
}

/* Nanoseconds PID 1 has run on a CPU, or -1. */
static int64_t init_cpu_ns(void) {
    char buf[128];
    int fd = open("/proc/1/schedstat", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return strtoll(buf, NULL, 10);
}

static int zombies(void) {
    int count = 0;
    DIR *d = opendir("/proc");
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && rp[2] == 'Z') count++;
    }
    closedir(d);
    return count;
}

static void say(int fd, char c) {
    if (write(fd, &c, 1) != 1) die("orphans: write to the host");
}

static void hear(int fd) {
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) < 0 && errno == EINTR) {}
    if (n != 1) die("orphans: read from the host");
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: orphans N OUTFILE [ACK_FIFO CTL_FIFO]\n");
        return 2;
    }
    long n = atol(argv[1]);
    int stopped = argc == 5;
    int ack = -1, ctl = -1;
    if (stopped) {
        if ((ack = open(argv[3], O_WRONLY | O_CLOEXEC)) < 0) die("orphans: open ACK_FIFO");
        if ((ctl = open(argv[4], O_RDONLY | O_CLOEXEC)) < 0) die("orphans: open CTL_FIFO");
    }
    struct rlimit files = {(rlim_t)n + 64, (rlim_t)n + 64};
    if (setrlimit(RLIMIT_NOFILE, &files) < 0) die("orphans: setrlimit");
    prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0); /* precise polling sleeps */

    pid_t *pids = mmap(NULL, n * sizeof(pid_t), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pids == MAP_FAILED) die("orphans: mmap");
    if (pipe(gate) < 0) die("orphans: pipe");
    pid_t mid = fork();
    if (mid < 0) die("orphans: fork");
    if (mid == 0) {
        char *stacks = mmap(NULL, (size_t)n * STACK_SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (stacks == MAP_FAILED) die("orphans: mmap");
        for (long i = 0; i < n; i++) {
            pid_t p = clone(orphan, stacks + (size_t)(i + 1) * STACK_SIZE,
                            CLONE_VM | SIGCHLD, NULL);
            if (p < 0) die("orphans: clone");
            pids[i] = p;
        }
        _exit(0);
    }
    close(gate[0]);
    int status;
    while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "orphans: could not start %ld orphans\n", n);
        return 1;
    }
    int *pidfds = malloc(n * sizeof(int));
    if (!pidfds) die("orphans: malloc");
    for (long i = 0; i < n; i++)
        if ((pidfds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0)) < 0)
            die("orphans: pidfd_open");
    struct timespec settle = {0, 50 * 1000 * 1000};
    nanosleep(&settle, NULL); /* let the last ones reach read() */
    if (stopped) {
        say(ack, 'R');
        hear(ctl); /* the init is stopped now */
    }

    int64_t cpu0 = init_cpu_ns();
    int64_t released = now_ns();
    close(gate[1]);
    for (long i = 0; i < n; i++) {
        struct pollfd p = {.fd = pidfds[i], .events = POLLIN};
        while (poll(&p, 1, -1) < 0 && errno == EINTR) {}
    }
    int64_t exited = now_ns();
    if (stopped) {
        for (long i = 0; i < n; i++)
            if (kill(pids[i], 0) != 0) {
                fprintf(stderr, "orphans: orphan %d was reaped while the init was stopped\n", pids[i]);
                return 1;
            }
        cpu0 = init_cpu_ns();
        say(ack, 'Z'); /* the host sends SIGCONT to the init */
    }
    struct timespec poll_gap = {0, 50 * 1000};
    for (long i = 0; i < n; i++)
        while (kill(pids[i], 0) == 0)
            nanosleep(&poll_gap, NULL);
    int64_t reaped = now_ns();
    int64_t cpu1 = init_cpu_ns();

    FILE *f = fopen(argv[2], "w");
    if (!f) die("orphans: fopen");
    fprintf(f, "%lld %lld %lld %lld %d\n", (long long)released, (long long)exited,
            (long long)reaped, (long long)(cpu0 < 0 || cpu1 < 0 ? -1 : cpu1 - cpu0), zombies());
    fclose(f);
    return 0;
}
