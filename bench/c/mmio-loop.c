/*
 * Baseline for bench/native-mmio: the cost of an exact-width 32-bit volatile load from a mapping
 * when issued by C, the floor a JS MMIO accessor is compared against.
 *
 * usage: mmio-loop [ITERATIONS] [LENGTH]
 * Maps LENGTH bytes (default 4096) of anonymous memory the way the bench does through the addon
 * (PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS), fills it, then performs ITERATIONS
 * volatile 32-bit reads walking through it, and prints one JSON line:
 *   {"iterations":N,"nsPerOp":X,"sum":S}
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

/* Kept out of line so the loop body is what a driver's read32() would compile to. */
__attribute__((noinline)) static uint32_t read32(volatile uint8_t *base, size_t offset) {
  return *(volatile uint32_t *)(base + offset);
}

int main(int argc, char **argv) {
  uint64_t iterations = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000000u;
  size_t length = argc > 2 ? strtoull(argv[2], NULL, 0) : 4096u;
  if (iterations == 0 || length < 4) {
    fprintf(stderr, "usage: mmio-loop [ITERATIONS>0] [LENGTH>=4]\n");
    return 2;
  }
  volatile uint8_t *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (size_t i = 0; i + 4 <= length; i += 4) *(volatile uint32_t *)(base + i) = (uint32_t)i;
  size_t mask = (length & ~(size_t)3) - 4; /* offsets stay aligned and in bounds when length is a power of two */
  uint64_t sum = 0;
  for (uint64_t i = 0; i < iterations / 10; i++) sum += read32(base, (i * 4) & mask); /* warm-up */
  sum = 0;
  uint64_t start = now_ns();
  for (uint64_t i = 0; i < iterations; i++) sum += read32(base, (i * 4) & mask);
  uint64_t elapsed = now_ns() - start;
  printf("{\"iterations\":%" PRIu64 ",\"nsPerOp\":%.3f,\"sum\":%" PRIu64 "}\n", iterations,
         (double)elapsed / (double)iterations, sum);
  munmap((void *)base, length);
  return 0;
}
