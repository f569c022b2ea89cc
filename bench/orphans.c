/* orphans: the burst for the reaping benchmark, run as the init's child.
 *
 *   orphans N OUTFILE
 *
 * A child of ours starts N grandchildren, which block on a pipe, then exits:
 * the N become orphans, re-parented to the init. The grandchildren are
 * processes (not threads) made with clone(CLONE_VM): they share one address
 * space, so that their exit costs little and the time measured is mostly the
 * init's reaping, not 5000 address-space teardowns. We reap that child, take
 * t0, and close the pipe: all N exit at once and the init must reap them.
 * We wait until every one of the N has exited (a pidfd of each turns readable
 * when it becomes a zombie), then until every one is gone (kill(pid, 0)
 * succeeds on a zombie and fails with ESRCH once it is reaped), polling every
 * 100 us. We write "REAP_NS EXIT_NS INIT_CPU_NS ZOMBIES_LEFT" to OUTFILE:
 *   REAP_NS      release -> last orphan reaped (no zombie left);
 *   EXIT_NS      release -> last orphan exited (common to every init);
 *   INIT_CPU_NS  CPU time PID 1 used from the release to the end, from
 *                /proc/1/schedstat (we run in the init's PID namespace with
 *                its own /proc);
 *   ZOMBIES_LEFT a final count of zombies in /proc, which must be 0. */
#define _GNU_SOURCE
#include <ctype.h>
#include <sched.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int gate[2];
#define STACK_SIZE (16 * 1024)

/* A grandchild: blocks until the gate closes, then exits. Raw syscalls only:
 * it shares its memory (and errno) with its siblings. */
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

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: orphans N OUTFILE\n");
        return 2;
    }
    long n = atol(argv[1]);
    struct rlimit files = {(rlim_t)n + 64, (rlim_t)n + 64};
    if (setrlimit(RLIMIT_NOFILE, &files) < 0) { perror("orphans: setrlimit"); return 1; }
    pid_t *pids = mmap(NULL, n * sizeof(pid_t), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pids == MAP_FAILED) { perror("orphans: mmap"); return 1; }
    if (pipe(gate) < 0) { perror("orphans: pipe"); return 1; }
    pid_t mid = fork();
    if (mid < 0) { perror("orphans: fork"); return 1; }
    if (mid == 0) {
        char *stacks = mmap(NULL, (size_t)n * STACK_SIZE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (stacks == MAP_FAILED) { perror("orphans: mmap"); _exit(1); }
        for (long i = 0; i < n; i++) {
            pid_t p = clone(orphan, stacks + (size_t)(i + 1) * STACK_SIZE, CLONE_VM | SIGCHLD, NULL);
            if (p < 0) { perror("orphans: clone"); _exit(1); }
            pids[i] = p;
        }
        _exit(0);
    }
    close(gate[0]);
    int status;
    while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "orphans: could not fork %ld orphans\n", n);
        return 1;
    }
    struct timespec settle = {0, 50 * 1000 * 1000};
    nanosleep(&settle, NULL); /* let the last ones reach read() */
    int *pidfds = malloc(n * sizeof(int));
    for (long i = 0; i < n; i++) {
        pidfds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
        if (pidfds[i] < 0) { perror("orphans: pidfd_open"); return 1; }
    }
    struct timespec poll_gap = {0, 100 * 1000};
    int64_t cpu0 = init_cpu_ns();
    int64_t t0 = now_ns();
    close(gate[1]);
    for (long i = 0; i < n; i++) {
        struct pollfd p = {.fd = pidfds[i], .events = POLLIN};
        while (poll(&p, 1, -1) < 0 && errno == EINTR) {}
    }
    int64_t t_exit = now_ns();
    for (long i = 0; i < n; i++)
        while (kill(pids[i], 0) == 0)
            nanosleep(&poll_gap, NULL);
    int64_t t1 = now_ns();
    int64_t cpu1 = init_cpu_ns();
    FILE *f = fopen(argv[2], "w");
    if (!f) { perror("orphans: fopen"); return 1; }
    fprintf(f, "%lld %lld %lld %d\n", (long long)(t1 - t0), (long long)(t_exit - t0),
            (long long)(cpu0 < 0 || cpu1 < 0 ? -1 : cpu1 - cpu0), zombies());
    fclose(f);
    return 0;
}
