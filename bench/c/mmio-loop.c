/*
 * Baseline for bench/native-mmio: the cost of exact-width 32-bit volatile loads from a mapping
 * when issued by C, the floor a JS MMIO accessor is compared against.
 *
 * usage: mmio-loop ITERATIONS LENGTH [FD]
 * Maps LENGTH bytes of the memfd FD (MAP_SHARED, the same pages the bench maps through the
 * addon) or, without FD, of anonymous memory, then times ITERATIONS volatile 32-bit reads walking
 * through it twice: once inlined into the loop (what readl() in a C driver compiles to) and once
 * through an out-of-line accessor (a driver calling a read32() helper in another unit). Prints
 *   {"iterations":N,"inlineNsPerOp":X,"callNsPerOp":Y,"sum":S}
 * (the sum of the values read, so the reads are observably used).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint32_t read32_inline(volatile uint8_t *base, size_t offset) {
  return *(volatile uint32_t *)(base + offset);
}

__attribute__((noinline)) static uint32_t read32_call(volatile uint8_t *base, size_t offset) {
  return *(volatile uint32_t *)(base + offset);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mmio-loop ITERATIONS LENGTH [FD]\n");
    return 2;
  }
  uint64_t iterations = strtoull(argv[1], NULL, 0);
  size_t length = strtoull(argv[2], NULL, 0);
  int fd = argc > 3 ? atoi(argv[3]) : -1;
  if (iterations == 0 || length < 4 || (length & (length - 1)) != 0) {
    fprintf(stderr, "mmio-loop: ITERATIONS must be > 0 and LENGTH a power of two >= 4\n");
    return 2;
  }
  int flags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;
  volatile uint8_t *base = mmap(NULL, length, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  size_t mask = length - 4; /* offsets stay 4-byte aligned and in bounds */
  uint64_t sum = 0;
  for (uint64_t i = 0; i < iterations / 10; i++) sum += read32_inline(base, (i * 4) & mask); /* warm-up */

  uint64_t start = now_ns();
  for (uint64_t i = 0; i < iterations; i++) sum += read32_inline(base, (i * 4) & mask);
  uint64_t inline_ns = now_ns() - start;

  start = now_ns();
  for (uint64_t i = 0; i < iterations; i++) sum += read32_call(base, (i * 4) & mask);
  uint64_t call_ns = now_ns() - start;

  printf("{\"iterations\":%" PRIu64 ",\"inlineNsPerOp\":%.3f,\"callNsPerOp\":%.3f,\"sum\":%" PRIu64 "}\n", iterations,
         (double)inline_ns / (double)iterations, (double)call_ns / (double)iterations, sum);
  munmap((void *)base, length);
  return 0;
}
