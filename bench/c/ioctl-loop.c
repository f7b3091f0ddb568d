/*
 * A reusable baseline for ioctl benchmarks: performs one ioctl N times from C and reports the
 * cost per call, to compare with the same ioctl issued from JS through the addon.
 *
 * usage: ioctl-loop [-n ITERATIONS] [-k PATH]... [-u] TARGET REQUEST [ARG]
 *   TARGET   the file to send the ioctl to: a path (opened O_RDWR, or O_RDONLY when that is
 *            refused) or fd:N for a descriptor inherited from the parent. A parent that has set
 *            up state (an IOAS with a mapping for IOMMU_IOAS_NOIOMMU_GET_PA, a bound device for
 *            VFIO_DEVICE_GET_INFO) passes its fd this way, e.g. Node's spawn({ stdio: [..., fd] }).
 *   REQUEST  the request number, 0x-prefixed hex or decimal.
 *   ARG      hex bytes of the argument struct ("1c00000000000000..."), copied fresh before every
 *            call so each call sees the same input; "int:N" for an integer argument; omitted or
 *            "null" for none.
 *   -k PATH  open PATH and keep it open during the loop (e.g. a container a group depends on).
 *   -n N     iterations (default 100000); a tenth as many run first as warm-up.
 *   -u       also time getuid() the same way: a syscall that does no work, so the caller can
 *            tell what any syscall costs from its own process apart from what its ioctl path adds.
 *
 * Failing calls are counted, not fatal, so error paths can be timed too. Prints one JSON line:
 *   {"iterations":N,"nsPerOp":X,"result":R,"failures":F,"errno":E,"out":"hex of ARG after the last call",
 *    "getuidNsPerOp":G}   (G is -1 without -u)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int usage(const char *why) {
  fprintf(stderr, "ioctl-loop: %s\nusage: ioctl-loop [-n ITERATIONS] [-k PATH]... TARGET REQUEST [HEX|int:N|null]\n", why);
  return 2;
}

static int open_path(const char *path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS)) fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fprintf(stderr, "ioctl-loop: open %s: %s\n", path, strerror(errno));
  return fd;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char **argv) {
  uint64_t iterations = 100000;
  int opt;
  int time_getuid = 0;
  while ((opt = getopt(argc, argv, "n:k:u")) != -1) {
    if (opt == 'u') {
      time_getuid = 1;
    } else if (opt == 'n') {
      iterations = strtoull(optarg, NULL, 0);
    } else if (opt == 'k') {
      if (open_path(optarg) < 0) return 1; /* stays open until exit */
    } else {
      return usage("unknown option");
    }
  }
  if (argc - optind < 2 || argc - optind > 3) return usage("expected TARGET REQUEST [ARG]");
  if (iterations == 0) return usage("ITERATIONS must be positive");
  const char *target = argv[optind];
  int fd;
  if (strncmp(target, "fd:", 3) == 0) {
    fd = atoi(target + 3);
    if (fcntl(fd, F_GETFD) < 0) {
      fprintf(stderr, "ioctl-loop: %s is not an open descriptor\n", target);
      return 1;
    }
  } else {
    fd = open_path(target);
    if (fd < 0) return 1;
  }
  char *end;
  unsigned long request = strtoul(argv[optind + 1], &end, 0);
  if (*end != '\0') return usage("REQUEST is not a number");

  const char *arg = argc - optind == 3 ? argv[optind + 2] : "null";
  unsigned char *template_bytes = NULL, *bytes = NULL;
  size_t length = 0;
  unsigned long integer = 0;
  int mode = 0; /* 0 null, 1 integer, 2 struct */
  if (strncmp(arg, "int:", 4) == 0) {
    mode = 1;
    integer = strtoul(arg + 4, NULL, 0);
  } else if (strcmp(arg, "null") != 0) {
    mode = 2;
    size_t digits = strlen(arg);
    if (digits == 0 || digits % 2 != 0) return usage("ARG must be an even number of hex digits");
    length = digits / 2;
    /* 8-byte aligned, like the kernel structs it holds */
    template_bytes = aligned_alloc(8, (length + 7) & ~(size_t)7);
    bytes = aligned_alloc(8, (length + 7) & ~(size_t)7);
    if (template_bytes == NULL || bytes == NULL) return 1;
    for (size_t i = 0; i < length; i++) {
      int hi = hex_digit(arg[2 * i]), lo = hex_digit(arg[2 * i + 1]);
      if (hi < 0 || lo < 0) return usage("ARG has a non-hex character");
      template_bytes[i] = (unsigned char)(hi << 4 | lo);
    }
  }
  unsigned long argument = mode == 1 ? integer : mode == 2 ? (unsigned long)bytes : 0;

  int result = 0, last_errno = 0;
  uint64_t failures = 0;
  uint64_t warmup = iterations / 10;
  uint64_t start = 0;
  for (uint64_t i = 0; i < warmup + iterations; i++) {
    if (i == warmup) {
      failures = 0;
      start = now_ns();
    }
    if (mode == 2) memcpy(bytes, template_bytes, length);
    result = ioctl(fd, request, argument);
    if (result < 0) {
      failures++;
      last_errno = errno;
    }
  }
  uint64_t elapsed = now_ns() - start;
  double getuid_ns = -1;
  if (time_getuid) {
    /* getuid cannot fail; the sum keeps the calls from being optimised away */
    volatile uid_t sink = 0;
    for (uint64_t i = 0; i < warmup; i++) sink += getuid();
    uint64_t getuid_start = now_ns();
    for (uint64_t i = 0; i < iterations; i++) sink += getuid();
    getuid_ns = (double)(now_ns() - getuid_start) / (double)iterations;
  }
  printf("{\"iterations\":%" PRIu64 ",\"nsPerOp\":%.3f,\"result\":%d,\"failures\":%" PRIu64 ",\"errno\":%d,\"out\":\"",
         iterations, (double)elapsed / (double)iterations, result, failures, last_errno);
  for (size_t i = 0; i < length; i++) printf("%02x", bytes[i]);
  printf("\",\"getuidNsPerOp\":%.3f}\n", getuid_ns);
  return 0;
}
