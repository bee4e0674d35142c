/* A disk whose flushes are slow, for bench/slow_fsync_cluster.sh: loaded with LD_PRELOAD into a scratch
 * PostgreSQL server, every fsync and fdatasync waits SLOW_FSYNC_MS milliseconds, then does the real call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void wait_like_a_slow_disk(void) {
    const char *ms = getenv("SLOW_FSYNC_MS");
    long delay_ms = ms ? atol(ms) : 5;
    struct timespec delay = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    nanosleep(&delay, NULL);
}

int fsync(int fd) {
    static int (*real_fsync)(int);
    if (!real_fsync) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    wait_like_a_slow_disk();
    return real_fsync(fd);
}

int fdatasync(int fd) {
    static int (*real_fdatasync)(int);
    if (!real_fdatasync) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    wait_like_a_slow_disk();
    return real_fdatasync(fd);
}
