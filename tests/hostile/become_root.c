/* A setuid-root app: it becomes root for real (real, effective and saved
 * user ids), so that an unprivileged drainit may no longer signal it (EPERM),
 * as with a setuid program in an image that runs as USER 65532. It ignores
 * SIGTERM, writes "ready" to the file given, and waits. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2 || setresuid(0, 0, 0) != 0 || setresgid(0, 0, 0) != 0) {
        perror("become_root");
        return 1;
    }
    signal(SIGTERM, SIG_IGN);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "ready\n", 6) != 6) {
        perror(argv[1]);
        return 1;
    }
    close(fd);
    for (;;)
        pause();
}
