/**
 * Cost of an ioctl issued through the addon (NativeKernel.ioctl, and the raw binding) compared
 * with the same ioctl from C (bench/c/ioctl-loop.c) on the same open file, which the C program
 * inherits. Without VFIO hardware on the host it times FIONREAD on a memfd, an ioctl every Linux
 * answers cheaply; the lab benches use runIoctlLoop the same way with an iommufd or device fd.
 * Prints; asserts nothing.
 *
 *   npm run bench:native-ioctl [-- ITERATIONS]
 */
import { addonStatus } from '../lib/sys/addon';
import { nativeKernel } from '../lib/sys/native';
import { bestOf, runIoctlLoop, timeLoop } from './native-c';

const FIONREAD = 0x541b;
const iterations = Number(process.argv[2] ?? 100_000);

function main(): void {
  const status = addonStatus();
  if (!status.available) {
    console.log(`native-ioctl: skipped, the addon is not available (${status.reason})`);
    return;
  }
  const kernel = nativeKernel();
  const fd = kernel.memfdCreate('node-vfio-bench', 0);
  kernel.ftruncate(fd, 12345n);
  const arg = new Uint8Array(4);
  const c = bestOf(5, () => runIoctlLoop({ target: { fd }, request: FIONREAD, arg, iterations }));
  if (c.failures > 0) throw new Error(`FIONREAD failed in C with errno ${c.errno}`);
  const raw = timeLoop(iterations, () => status.addon.ioctl(fd, FIONREAD, arg));
  const viaKernel = timeLoop(iterations, () => kernel.ioctl(fd, FIONREAD, arg));
  kernel.close(fd);
  console.log(`native-ioctl: FIONREAD on a memfd, best of 5 × ${iterations} iterations (answer ${Buffer.from(c.out, 'hex').readUInt32LE(0)} bytes)`);
  for (const [name, ns] of [['C ioctl (bench/c/ioctl-loop.c)', c.nsPerOp], ['addon ioctl(fd, request, buffer)', raw], ['NativeKernel.ioctl', viaKernel]] as const) {
    console.log(`  ${name.padEnd(36)} ${ns.toFixed(0).padStart(7)} ns/op  ${(ns / c.nsPerOp).toFixed(2).padStart(5)}× C`);
  }
}

main();
