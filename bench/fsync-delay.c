/* LD_PRELOAD shim for bench/center-issuance.ts: every fsync() and fdatasync() returns only after the real call
 * and then MOCOPY_FSYNC_DELAY_US more microseconds, as on a disk whose cache flush takes that long (a SATA SSD
 * without power-loss protection takes 1-3 ms, a spinning disk 5-10 ms). The benchmark runs its baseline (raw
 * SQLite) and the center under the same shim, so the ratio compares like with like. Not for production use. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

static long delay_us(void) {
  static long d = -1;
  if (d < 0) {
    const char *e = getenv("MOCOPY_FSYNC_DELAY_US");
    d = e ? atol(e) : 0;
  }
  return d;
}

static void pause_after_sync(void) {
  long us = delay_us();
  if (us <= 0) return;
  struct timespec t = {us / 1000000, (us % 1000000) * 1000};
  int saved = errno;
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
  errno = saved;
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  int r = real(fd);
  pause_after_sync();
  return r;
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  int r = real(fd);
  pause_after_sync();
  return r;
}
