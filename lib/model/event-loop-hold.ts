/**
 * A pending poll holds Node's event loop open, as a real one does: the native kernel's wait is a
 * libuv poll handle, so a driver awaiting an interrupt that never comes waits (and can be seen
 * waiting) rather than exiting as if it had finished. Without this the model would let such a
 * process end silently with the wait unsettled, which the real kernel never does. One shared
 * timer is ref'd while any model poll is pending and unref'd when none is.
 */
let pending = 0;
let timer: ReturnType<typeof setInterval> | undefined;

/** Holds the loop open until the returned release is called (once; later calls do nothing). */
export function holdEventLoop(): () => void {
  if (pending++ === 0) {
    timer ??= setInterval(() => undefined, 1_000_000_000);
    timer.ref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--pending === 0) timer?.unref();
  };
}
