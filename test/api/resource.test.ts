import assert from 'node:assert/strict';
import { Resource } from '../../lib/support/resource';
import { isVfioError } from '../../lib/sys/errors';
import { ScriptedKernel } from './support/scripted-kernel';

/** A resource that records when it is released, and can be told to fail. */
class Probe extends Resource {
  constructor(
    readonly log: string[],
    readonly name: string,
    private readonly failWith?: Error,
  ) {
    super(new ScriptedKernel(), `probe ${name}`);
  }

  child(name: string, failWith?: Error): Probe {
    return this.adopt(new Probe(this.log, name, failWith));
  }

  use(): string {
    this.assertOpen('Probe.use');
    return this.name;
  }

  forgetNow(): void {
    this.markReleased();
  }

  protected release(): void {
    this.log.push(this.name);
    if (this.failWith) throw this.failWith;
  }
}

describe('Resource ownership', () => {
  it('closes what it owns first, newest first, then itself', () => {
    const log: string[] = [];
    const root = new Probe(log, 'root');
    const a = root.child('a');
    a.child('a1');
    root.child('b');
    root.close();
    assert.deepEqual(log, ['b', 'a1', 'a', 'root']);
  });

  it('closing twice releases once; `using` closes at the end of the block', () => {
    const log: string[] = [];
    {
      using r = new Probe(log, 'scoped');
      r.close();
    }
    assert.deepEqual(log, ['scoped']);
  });

  it('use after close throws EBADF naming the object and the operation', () => {
    const r = new Probe([], 'x');
    assert.equal(r.use(), 'x');
    r.close();
    assert.throws(
      () => r.use(),
      (e: unknown) => isVfioError(e, 'EBADF') && e.syscall === 'Probe.use' && /probe x is closed/.test(e.message),
    );
  });

  it('a child closed on its own leaves its owner, which then does not close it again', () => {
    const log: string[] = [];
    const root = new Probe(log, 'root');
    const a = root.child('a');
    a.close();
    root.close();
    assert.deepEqual(log, ['a', 'root']);
  });

  it('keeps closing the rest when a release fails, then reports every failure', () => {
    const log: string[] = [];
    const root = new Probe(log, 'root', new Error('root failed'));
    root.child('a', new Error('a failed'));
    root.child('b');
    assert.throws(
      () => root.close(),
      (e: unknown) => e instanceof AggregateError && e.errors.length === 2,
    );
    assert.deepEqual(log, ['b', 'a', 'root']);
    assert.equal(root.closed, true);
    const single = new Probe([], 's', new Error('only'));
    assert.throws(() => single.close(), /only/);
  });

  it('markReleased forgets a resource and its children without releasing them', () => {
    const log: string[] = [];
    const root = new Probe(log, 'root');
    const a = root.child('a');
    const a1 = a.child('a1');
    a.forgetNow();
    assert.equal(a.closed, true);
    assert.equal(a1.closed, true);
    root.close();
    assert.deepEqual(log, ['root']);
  });
});
