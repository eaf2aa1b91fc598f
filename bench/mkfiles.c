/* mkfiles: what creating a tree of small files costs the kernel alone, as
 * the floor under the tree rows of bench/compare. It makes the tree
 * bench/tree.sh sends (FILES files f000000.bin.. spread over DIRS folders
 * d0000.., SIZE bytes each) with nothing else running: no network, no
 * event loop, no threadpool handoffs, no checks beyond the calls' own.
 *
 * Two ways to make each file whole or not at all, the ways fsc and fsd
 * do (neither flushes; the --no-fsync and get -r rows do not either):
 *   tmpfile  open(folder, O_TMPFILE), write, linkat to the name, close
 *            (how fsc get -r stores a small file)
 *   rename   create a temporary name, write, rename to the name, close
 *            (how fsd commits an upload)
 * THREADS threads share the files (file i goes to thread i % THREADS).
 * Prints the seconds from the first file to the last, as one number.
 *
 * usage: mkfiles [-t THREADS] [-m tmpfile|rename] DIR FILES DIRS SIZE */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#define MAX_THREADS 64

enum mode { MODE_TMPFILE, MODE_RENAME };

struct plan {
  enum mode mode;
  int threads;
  long files;
  long dirs;
  size_t size;
  int *dirfd;     /* one per folder, opened before the clock starts */
  uint8_t *bytes; /* SIZE bytes, written to every file */
};

struct worker {
  const struct plan *p;
  int index;
  pthread_t th;
};

static void write_whole(int fd, const uint8_t *p, size_t n, const char *what) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      bench_fatal("write %s: %s", what, strerror(errno));
    p += w;
    n -= (size_t)w;
  }
}

static void make_tmpfile(const struct plan *p, int dfd, const char *name) {
  char proc[64];
  int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);

  if (fd < 0)
    bench_fatal("O_TMPFILE: %s", strerror(errno));
  write_whole(fd, p->bytes, p->size, name);
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) != 0)
    bench_fatal("linkat %s: %s", name, strerror(errno));
  close(fd);
}

static void make_renamed(const struct plan *p, int dfd, const char *name) {
  char temp[64];
  int fd;

  snprintf(temp, sizeof temp, ".mkfiles-tmp-%s", name);
  fd = openat(dfd, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0644);
  if (fd < 0)
    bench_fatal("create %s: %s", temp, strerror(errno));
  write_whole(fd, p->bytes, p->size, temp);
  if (renameat(dfd, temp, dfd, name) != 0)
    bench_fatal("rename %s: %s", temp, strerror(errno));
  close(fd);
}

static void *work(void *arg) {
  struct worker *w = arg;
  const struct plan *p = w->p;

  for (long i = w->index; i < p->files; i += p->threads) {
    char name[32];
    int dfd = p->dirfd[i % p->dirs];

    snprintf(name, sizeof name, "f%06ld.bin", i);
    if (p->mode == MODE_TMPFILE)
      make_tmpfile(p, dfd, name);
    else
      make_renamed(p, dfd, name);
  }
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long count_arg(const char *s, const char *what, long min) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min)
    bench_fatal("%s: want a whole number from %ld, got '%s'", what, min, s);
  return v;
}

static void usage(void) {
  fprintf(stderr, "usage: mkfiles [-t THREADS] [-m tmpfile|rename] "
                  "DIR FILES DIRS SIZE\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct plan p = {.mode = MODE_TMPFILE, .threads = 1};
  struct worker w[MAX_THREADS];
  int opt, rootfd;
  double t0, t1;

  bench_set_prog("mkfiles");
  while ((opt = getopt(argc, argv, "t:m:")) != -1) {
    if (opt == 't')
      p.threads = (int)count_arg(optarg, "-t", 1);
    else if (opt == 'm' && strcmp(optarg, "tmpfile") == 0)
      p.mode = MODE_TMPFILE;
    else if (opt == 'm' && strcmp(optarg, "rename") == 0)
      p.mode = MODE_RENAME;
    else
      usage();
  }
  if (argc - optind != 4 || p.threads > MAX_THREADS)
    usage();
  p.files = count_arg(argv[optind + 1], "FILES", 0);
  p.dirs = count_arg(argv[optind + 2], "DIRS", 1);
  p.size = (size_t)count_arg(argv[optind + 3], "SIZE", 0);

  bench_raise_nofile((uint32_t)p.dirs + (uint32_t)p.threads);
  if (mkdir(argv[optind], 0755) != 0)
    bench_fatal("mkdir %s: %s", argv[optind], strerror(errno));
  rootfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    bench_fatal("open %s: %s", argv[optind], strerror(errno));
  p.dirfd = calloc((size_t)p.dirs, sizeof *p.dirfd);
  p.bytes = malloc(p.size + 1);
  if (p.dirfd == NULL || p.bytes == NULL)
    bench_fatal("out of memory");
  for (size_t i = 0; i < p.size; i++)
    p.bytes[i] = (uint8_t)(i * 2654435761u >> 24);
  for (long d = 0; d < p.dirs; d++) {
    char name[32];
    snprintf(name, sizeof name, "d%04ld", d);
    if (mkdirat(rootfd, name, 0755) != 0)
      bench_fatal("mkdir %s: %s", name, strerror(errno));
    p.dirfd[d] = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p.dirfd[d] < 0)
      bench_fatal("open %s: %s", name, strerror(errno));
  }
  t0 = now();
  for (int i = 0; i < p.threads; i++) {
    w[i] = (struct worker){.p = &p, .index = i};
    if (pthread_create(&w[i].th, NULL, work, &w[i]) != 0)
      bench_fatal("pthread_create failed");
  }
  for (int i = 0; i < p.threads; i++)
    pthread_join(w[i].th, NULL);
  t1 = now();

  printf("%.3f\n", t1 - t0);
  for (long d = 0; d < p.dirs; d++)
    close(p.dirfd[d]);
  close(rootfd);
  free(p.dirfd);
  free(p.bytes);
  return 0;
}
