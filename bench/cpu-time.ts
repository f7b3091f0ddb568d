/**
 * CPU-time measurement for the host benches (model-iommufd, api-host): CPU time of this process
 * holds up better than wall time on a shared, busy machine, and the median of rounds discards the
 * rounds a burst of load from elsewhere landed on.
 */

/** CPU time of this process in nanoseconds. */
export function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}
