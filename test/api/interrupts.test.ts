import assert from 'node:assert/strict';
import { openDevice } from '../../lib/vfio/open-device';
import { isVfioError } from '../../lib/sys/errors';
import { describeOnTargets } from './support/targets';
import { EDU, withTimeout } from './support/edu';
import type { Irqs } from '../../lib/vfio/irq';

describeOnTargets('Irqs and InterruptVector', (target) => {
  it('REQ is enabled beside MSI without disabling it, and each signals its own eventfd', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const [msi] = dev.irqs.enable('msi', 1);
    const [req] = dev.irqs.enable('req', 1);
    assert.equal(dev.irqs.enabledKind, 'msi', 'REQ is not one of the exclusive kinds');
    assert.equal(msi!.closed, false, 'enabling REQ left the MSI vector open');
    req!.trigger();
    assert.equal(await withTimeout(req!.wait(), 5000, 'REQ loopback'), 1n);
    msi!.trigger();
    assert.equal(await withTimeout(msi!.wait(), 5000, 'MSI loopback after REQ'), 1n);
    dev.irqs.disable('req');
    assert.equal(req!.closed, true);
    assert.equal(msi!.closed, false, 'disabling REQ leaves MSI on');
    msi!.trigger();
    assert.equal(await withTimeout(msi!.wait(), 5000, 'MSI after REQ disabled'), 1n);
  });

  it('vectors(kind) lists what is enabled, per kind, with the exclusive kinds replacing each other', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    dev.irqs.enable('intx');
    const [req] = dev.irqs.enable('req');
    const [msi] = dev.irqs.enable('msi');
    assert.deepEqual(dev.irqs.vectors('intx'), [], 'MSI replaced INTx');
    assert.deepEqual(dev.irqs.vectors('msi'), [msi]);
    assert.deepEqual(dev.irqs.vectors('req'), [req], 'REQ stays beside');
  });

  it('overlapping waits on one vector all resolve with the one count, and an aborted one does not stop the others', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const [msi] = dev.irqs.enable('msi', 1);
    const aborter = new AbortController();
    const waits = [msi!.wait(), msi!.wait(), msi!.wait(aborter.signal), msi!.wait()];
    aborter.abort();
    await assert.rejects(waits[2]!, (e: unknown) => isVfioError(e, 'ECANCELED'));
    msi!.trigger();
    const counts = await withTimeout(Promise.all([waits[0]!, waits[1]!, waits[3]!]), 5000, 'three waiters');
    assert.deepEqual(counts, [1n, 1n, 1n]);
  });

  it('many waits on one long-lived signal add one abort listener, print no warning, and all end when it aborts', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const [msi] = dev.irqs.enable('msi', 1);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const aborter = new AbortController();
      const waits = Array.from({ length: 50 }, () => msi!.wait(aborter.signal));
      aborter.abort();
      const results = await Promise.allSettled(waits);
      assert.ok(results.every((r) => r.status === 'rejected' && isVfioError(r.reason, 'ECANCELED')));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(
        warnings.map((w) => w.name),
        [],
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('when every wait on a vector has given up, no read is left behind to consume the next interrupt', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const [msi] = dev.irqs.enable('msi', 1);
    const first = new AbortController();
    const second = new AbortController();
    const abandoned = [msi!.wait(first.signal), msi!.wait(second.signal)];
    first.abort();
    second.abort();
    for (const w of abandoned) await assert.rejects(w, (e: unknown) => isVfioError(e, 'ECANCELED'));
    msi!.trigger();
    // Give a read that was left armed every chance to take the interrupt first.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await withTimeout(msi!.wait(), 5000, 'the interrupt after the abandoned waits'), 1n);
  });

  it('a wait after an already-aborted signal rejects at once, and a vector closed under a wait cancels it', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const [msi] = dev.irqs.enable('msi', 1);
    await assert.rejects(msi!.wait(AbortSignal.abort()), (e: unknown) => isVfioError(e, 'ECANCELED'));
    const pending = msi!.wait();
    msi!.close();
    await assert.rejects(pending, (e: unknown) => isVfioError(e, 'ECANCELED'));
  });

  it('refuses unknown kinds and bad counts before any ioctl', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    const irqs: Irqs = dev.irqs;
    assert.throws(() => irqs.enable('bogus' as never), TypeError);
    assert.throws(() => irqs.enable('msi', 1.5), RangeError);
    assert.throws(() => irqs.enable('msi', 0), RangeError);
    assert.throws(() => irqs.mask('intx', -1), RangeError);
    assert.throws(
      () => irqs.resize('msi', 1),
      (e: unknown) => isVfioError(e) && /not enabled/.test(e.message),
    );
    assert.equal(irqs.enabledKind, undefined, 'nothing was enabled by the refused calls');
  });

  it('MSI cannot be resized while enabled (NORESIZE): the error says to disable and enable', () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    dev.irqs.enable('msi', 1);
    assert.throws(
      () => dev.irqs.resize('msi', 1),
      (e: unknown) => isVfioError(e) && /NORESIZE/.test(e.message),
    );
  });

  it('an INTx unmask eventfd re-arms INTx when signalled, and closing it stops that', async () => {
    const t = target();
    using dev = openDevice(t.bdf, { kernel: t.kernel });
    using bar = dev.bar(0).mmap();
    dev.config.enableBusMaster();
    const [intx] = dev.irqs.enable('intx');
    const unmasker = dev.irqs.unmaskOnEventfd();
    bar.write32(EDU.IRQ_RAISE, 1);
    assert.equal(await withTimeout(intx!.wait(), 5000, 'first INTx'), 1n);
    bar.write32(EDU.IRQ_ACK, 1);
    bar.write32(EDU.IRQ_RAISE, 1);
    unmasker.signal();
    assert.equal(await withTimeout(intx!.wait(), 5000, 'INTx after the eventfd unmasked it'), 1n);
    bar.write32(EDU.IRQ_ACK, 1);
    unmasker.close();
    dev.irqs.disable('intx');
    assert.equal(unmasker.closed, true);
  });
});
