/* TEST UNIT READY in a loop through SG_IO: the C baseline for the addon's round-trip rate.
 * usage: tur DEVICE COUNT [THREADS]   prints "tur <calls/s>" */
#include <fcntl.h>
#include <pthread.h>
#include <scsi/sg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static const char *dev;
static long per_thread;

static void *loop(void *arg) {
  (void)arg;
  int fd = open(dev, O_RDWR | O_NONBLOCK);
  if (fd < 0) { perror("open"); exit(2); }
  unsigned char cdb[6] = {0}, sense[64];
  for (long i = 0; i < per_thread; i++) {
    sg_io_hdr_t h;
    memset(&h, 0, sizeof h);
    h.interface_id = 'S';
    h.dxfer_direction = SG_DXFER_NONE;
    h.cmd_len = 6;
    h.cmdp = cdb;
    h.mx_sb_len = sizeof sense;
    h.sbp = sense;
    h.timeout = 10000;
    if (ioctl(fd, SG_IO, &h) < 0) { perror("SG_IO"); exit(3); }
  }
  close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: tur DEVICE COUNT [THREADS]\n"); return 1; }
  dev = argv[1];
  long count = atol(argv[2]);
  int threads = argc > 3 ? atoi(argv[3]) : 1;
  per_thread = count / threads;
  pthread_t t[64];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, loop, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  printf("tur %.0f\n", (per_thread * threads) / s);
  return 0;
}
