/*
 * Baseline for bench/api-segments: the physical segments of an IOVA range found the way
 * Ioas.segments finds them, by C: IOMMU_IOAS_NOIOMMU_GET_PA at the start of what is left, then
 * again just past the run the kernel answered, until the range is covered.
 *
 * usage: get-pa-walk REQUEST STRUCT_SIZE OFF_SIZE OFF_IOAS_ID OFF_IOVA OFF_LENGTH OFF_PHYS IOAS_ID IOVA LENGTH ROUNDS
 * The iommufd is fd 3. The struct's layout comes from the caller (lib/uapi is where layouts live):
 * its size and the byte offsets of the fields used. Prints the best of ROUNDS walks as one line
 *   {"nsPerWalk":X,"runs":N,"calls":C,"errno":E}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *s, size_t off, uint32_t v) { memcpy(s + off, &v, sizeof v); }
static void put64(uint8_t *s, size_t off, uint64_t v) { memcpy(s + off, &v, sizeof v); }
static uint64_t get64(const uint8_t *s, size_t off) { uint64_t v; memcpy(&v, s + off, sizeof v); return v; }

int main(int argc, char **argv) {
  if (argc != 12) {
    fprintf(stderr, "usage: get-pa-walk REQUEST STRUCT_SIZE OFF_SIZE OFF_IOAS_ID OFF_IOVA OFF_LENGTH OFF_PHYS IOAS_ID IOVA LENGTH ROUNDS\n");
    return 2;
  }
  unsigned long request = strtoul(argv[1], NULL, 0);
  size_t size = strtoul(argv[2], NULL, 0);
  size_t off_size = strtoul(argv[3], NULL, 0), off_ioas = strtoul(argv[4], NULL, 0);
  size_t off_iova = strtoul(argv[5], NULL, 0), off_length = strtoul(argv[6], NULL, 0), off_phys = strtoul(argv[7], NULL, 0);
  uint32_t ioas_id = (uint32_t)strtoul(argv[8], NULL, 0);
  uint64_t iova = strtoull(argv[9], NULL, 0), length = strtoull(argv[10], NULL, 0);
  unsigned rounds = (unsigned)strtoul(argv[11], NULL, 0);
  uint8_t s[256];
  if (size == 0 || size > sizeof s || off_phys + 8 > size || off_length + 8 > size || rounds == 0) {
    fprintf(stderr, "get-pa-walk: bad struct size or offsets\n");
    return 2;
  }
  uint64_t best = UINT64_MAX, runs = 0, calls = 0, last_phys_end = 0;
  int err = 0;
  /* The joined segments, (iova, phys, length) each, as Ioas.segmentTable collects them. */
  size_t capacity = 16;
  uint64_t *table = NULL;
  for (unsigned r = 0; r < rounds && err == 0; r++) {
    runs = calls = 0;
    last_phys_end = UINT64_MAX;
    free(table);
    capacity = 16;
    table = malloc(capacity * 3 * sizeof *table);
    if (!table) {
      err = ENOMEM;
      break;
    }
    uint64_t start = now_ns();
    for (uint64_t at = iova, left = length; left > 0;) {
      memset(s, 0, size);
      put32(s, off_size, (uint32_t)size);
      put32(s, off_ioas, ioas_id);
      put64(s, off_iova, at);
      put64(s, off_length, left);
      calls++;
      if (ioctl(3, request, s) != 0) {
        err = errno;
        break;
      }
      uint64_t got = get64(s, off_length), phys = get64(s, off_phys);
      if (got == 0 || got > left) {
        err = EIO;
        break;
      }
      if (phys != last_phys_end) { /* adjacent answers join into one segment, as in Ioas.segmentTable */
        if (runs == capacity) {
          uint64_t *bigger = realloc(table, 2 * capacity * 3 * sizeof *table);
          if (!bigger) {
            err = ENOMEM;
            break;
          }
          table = bigger;
          capacity *= 2;
        }
        table[3 * runs] = at;
        table[3 * runs + 1] = phys;
        table[3 * runs + 2] = got;
        runs++;
      } else {
        table[3 * runs - 1] += got;
      }
      last_phys_end = phys + got;
      at += got;
      left -= got;
    }
    uint64_t elapsed = now_ns() - start;
    if (elapsed < best) best = elapsed;
  }
  free(table);
  printf("{\"nsPerWalk\":%" PRIu64 ",\"runs\":%" PRIu64 ",\"calls\":%" PRIu64 ",\"errno\":%d}\n", best, runs, calls, err);
  return err == 0 ? 0 : 1;
}
