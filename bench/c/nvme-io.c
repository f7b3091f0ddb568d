/*
 * Baseline for bench/nvme-io: the same minimal NVMe I/O loop as the TypeScript driver's submit
 * path, in C. The caller (bench/nvme-io.ts) brings the controller up with the TypeScript driver,
 * creates an I/O queue pair whose rings and data slots live in a memfd it mapped for DMA, and
 * hands this program the memfd (fd 3), the VFIO device (fd 4) and the layout. This program maps
 * both, keeps QD commands of 4 KiB at random LBAs in flight for the given time, polls the phase
 * tags, rings the doorbells through the mapped BAR (as the driver does: once per poll pass for the
 * commands submitted in it, then the head doorbell once for the completions), and prints one line
 *   {"iops":X,"p50Us":Y,"p99Us":Z,"completed":N,"failures":F}
 *
 * usage: nvme-io BAR0_OFFSET BAR0_SIZE SQ_OFF CQ_OFF DEPTH QID DATA_OFF SLOT_ADDRS BLOCKS QD WRITE SECONDS MEMFD_SIZE [SPIN]
 *   SLOT_ADDRS: comma-separated bus addresses of the 4 KiB data slots (physical or IOVA).
 *   SPIN: "plain" (default: the TypeScript driver's poll loop) or "pause": the CPU's spin-wait
 *   hint after a poll that found nothing. Under the lab's emulation (QEMU TCG) a PAUSE leaves the
 *   translated code for QEMU's CPU loop, which changes how the emulated CPU and QEMU's device
 *   thread share the host: the bench runs both to show how far the baseline moves with it.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static inline void spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield" ::: "memory");
#endif
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 14 && argc != 15) {
    fprintf(stderr, "usage: nvme-io BAR0_OFFSET BAR0_SIZE SQ_OFF CQ_OFF DEPTH QID DATA_OFF SLOT_ADDRS BLOCKS QD WRITE SECONDS MEMFD_SIZE [plain|pause]\n");
    return 2;
  }
  int pause_when_idle = 0;
  if (argc == 15) {
    if (strcmp(argv[14], "pause") == 0) pause_when_idle = 1;
    else if (strcmp(argv[14], "plain") != 0) { fprintf(stderr, "nvme-io: SPIN must be plain or pause, not '%s'\n", argv[14]); return 2; }
  }
  off_t bar_offset = (off_t)strtoull(argv[1], NULL, 0);
  size_t bar_size = strtoul(argv[2], NULL, 0), sq_off = strtoul(argv[3], NULL, 0), cq_off = strtoul(argv[4], NULL, 0);
  unsigned depth = (unsigned)strtoul(argv[5], NULL, 0), qid = (unsigned)strtoul(argv[6], NULL, 0);
  char *slots_arg = argv[8];
  uint64_t blocks = strtoull(argv[9], NULL, 0);
  unsigned qd = (unsigned)strtoul(argv[10], NULL, 0), write = (unsigned)strtoul(argv[11], NULL, 0);
  double seconds = strtod(argv[12], NULL);
  size_t memfd_size = strtoul(argv[13], NULL, 0);
  uint64_t slot_addr[64];
  unsigned slots = 0;
  for (char *p = strtok(slots_arg, ","); p && slots < 64; p = strtok(NULL, ",")) slot_addr[slots++] = strtoull(p, NULL, 0);
  if (qd == 0 || qd > slots || qd >= depth) { fprintf(stderr, "nvme-io: QD %u needs that many slots (%u) and < depth %u\n", qd, slots, depth); return 2; }

  uint8_t *mem = mmap(NULL, memfd_size, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
  volatile uint8_t *bar = mmap(NULL, bar_size, PROT_READ | PROT_WRITE, MAP_SHARED, 4, bar_offset);
  if (mem == MAP_FAILED || bar == MAP_FAILED) { perror("nvme-io: mmap"); return 1; }
  volatile uint8_t *sq = mem + sq_off;
  volatile uint8_t *cq = mem + cq_off;
  volatile uint32_t *sq_doorbell = (volatile uint32_t *)(bar + 0x1000 + 2 * qid * 4);
  volatile uint32_t *cq_doorbell = (volatile uint32_t *)(bar + 0x1000 + (2 * qid + 1) * 4);

  size_t max_samples = 4000000;
  double *latency = malloc(max_samples * sizeof *latency);
  double started[64];
  unsigned tail = 0, head = 0, phase = 1, in_flight = 0;
  uint32_t seed = 0x9e3779b9u;
  uint64_t completed = 0, failures = 0;
  size_t samples = 0;
  int measuring = 0, stopping = 0;

  /* AT: when this I/O's latency starts (one clock read per I/O: the completion that freed the slot). */
  /* RING: write the tail doorbell now (the first commands), or leave it to the end of the pass. */
  #define SUBMIT(slot, at, ring) do { \
    seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; \
    uint64_t lba = (uint64_t)(seed % blocks) * 8; \
    volatile uint32_t *e = (volatile uint32_t *)(sq + tail * 64); \
    e[0] = (write ? 0x01u : 0x02u) | ((uint32_t)(slot) << 16); e[1] = 1; \
    e[2] = e[3] = e[4] = e[5] = 0; \
    e[6] = (uint32_t)slot_addr[slot]; e[7] = (uint32_t)(slot_addr[slot] >> 32); e[8] = e[9] = 0; \
    e[10] = (uint32_t)lba; e[11] = (uint32_t)(lba >> 32); e[12] = 7; e[13] = e[14] = e[15] = 0; \
    started[slot] = (at); \
    tail = tail + 1 == depth ? 0 : tail + 1; \
    if (ring) { __atomic_thread_fence(__ATOMIC_RELEASE); *sq_doorbell = tail; } \
    in_flight++; \
  } while (0)

  for (unsigned s = 0; s < qd; s++) SUBMIT(s, now_us(), 1);
  double t0 = now_us(), warm_until = t0 + (seconds * 200000.0 < 500000.0 ? seconds * 200000.0 : 500000.0);
  double measure_start = 0, end = 0, last_completion = t0;
  for (;;) {
    double t = now_us();
    if (t - last_completion > 5e6) {
      fprintf(stderr, "nvme-io: no completion for 5 s (%u in flight, SQ tail %u, CQ head %u phase %u, CSTS 0x%x)\n",
              in_flight, tail, head, phase, *(volatile uint32_t *)(bar + 0x1c));
      return 1;
    }
    if (!measuring && !stopping && t >= warm_until) { measuring = 1; measure_start = t; end = t + seconds * 1e6; }
    if (measuring && t >= end) { measuring = 0; stopping = 1; end = t; }
    int found = 0, submitted = 0;
    for (;;) {
      volatile uint8_t *c = cq + head * 16;
      uint16_t status = *(volatile uint16_t *)(c + 14);
      if ((status & 1) != phase) break;
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      unsigned cid = *(volatile uint16_t *)(c + 12);
      head++;
      if (head == depth) { head = 0; phase ^= 1; }
      found = 1;
      last_completion = t;
      in_flight--;
      if (status >> 1) failures++;
      double seen = now_us();
      if (measuring) {
        completed++;
        if (samples < max_samples) latency[samples++] = seen - started[cid];
      }
      if (!stopping) { SUBMIT(cid, seen, 0); submitted = 1; }
    }
    if (submitted) { __atomic_thread_fence(__ATOMIC_RELEASE); *sq_doorbell = tail; }
    if (found) *cq_doorbell = head;
    else if (pause_when_idle) spin_pause();
    if (stopping && in_flight == 0) break;
  }
  double elapsed = end - measure_start;
  qsort(latency, samples, sizeof *latency, compare);
  double p50 = samples ? latency[(size_t)(0.5 * samples)] : 0, p99 = samples ? latency[(size_t)(0.99 * samples) < samples ? (size_t)(0.99 * samples) : samples - 1] : 0;
  printf("{\"iops\":%.1f,\"p50Us\":%.2f,\"p99Us\":%.2f,\"completed\":%" PRIu64 ",\"failures\":%" PRIu64 "}\n",
         completed / (elapsed / 1e6), p50, p99, completed, failures);
  return failures ? 1 : 0;
}
