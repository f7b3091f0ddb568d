/**
 * The SDK's device-side fault points (lib/model/device/device-faults.ts), on edu's own points:
 * arming by Nth occurrence, by seeded probability, by a predicate over the subject, how often a
 * fault fires, what the event log says, and the typed errors for a bad arm.
 */
import assert from 'node:assert/strict';
import { EduDevice, EDU_REG } from '../../../lib/devices/edu';

function factorial(edu: EduDevice, n: number): bigint {
  edu.mmioWrite(0, BigInt(EDU_REG.FACTORIAL), 32, BigInt(n));
  return edu.mmioRead(0, BigInt(EDU_REG.FACTORIAL), 32);
}

describe('device model SDK: fault points', () => {
  it('nth fires at that occurrence only, once; the event log names the point, occurrence, subject and effect', () => {
    const edu = new EduDevice({ timing: { mode: 'sync' } });
    const armed = edu.faults.arm('wrong-factorial', { nth: 2 }, { xor: 0x10 });
    assert.equal(factorial(edu, 5), 120n);
    assert.equal(factorial(edu, 5), 120n ^ 0x10n);
    assert.equal(factorial(edu, 5), 120n);
    assert.equal(armed.fired, 1);
    assert.equal(armed.active, false);
    assert.equal(edu.faults.occurrences('wrong-factorial'), 3);
    const events = edu.events.filter((e) => e.kind === 'fault-injected');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.faultPoint, 'wrong-factorial');
    assert.equal(events[0]!.message, "edu: fault 'wrong-factorial' fired at occurrence 2 (factorial of 5): result XOR 0x10");
  });

  it('a predicate picks occurrences by subject; times bounds the firings; defaults apply without params', () => {
    const edu = new EduDevice({ timing: { mode: 'sync' } });
    edu.faults.arm('wrong-factorial', { when: (s) => s.n === 4, times: 2 });
    assert.deepEqual(
      [3, 4, 4, 4, 5].map((n) => factorial(edu, n)),
      [6n, 24n ^ 1n, 24n ^ 1n, 24n, 120n],
    );
  });

  it('probability with a seed fires the same occurrences on every run', () => {
    const pattern = () => {
      const edu = new EduDevice({ timing: { mode: 'sync' } });
      edu.faults.arm('wrong-factorial', { probability: 0.5, seed: 42 });
      return Array.from({ length: 32 }, () => factorial(edu, 3) !== 6n);
    };
    const first = pattern();
    assert.deepEqual(pattern(), first);
    assert.ok(first.includes(true) && first.includes(false), 'some fire, some do not');
    const edu = new EduDevice({ timing: { mode: 'sync' } });
    edu.faults.arm('wrong-factorial', { probability: 0 });
    assert.equal(factorial(edu, 3), 6n);
  });

  it('disarm takes a fault back; a lost interrupt leaves the status and the line alone', () => {
    const edu = new EduDevice({ timing: { mode: 'sync' } });
    const lost = edu.faults.arm('lost-interrupt', { nth: 1 });
    edu.mmioWrite(0, BigInt(EDU_REG.IRQ_RAISE), 32, 1n);
    assert.equal(edu.mmioRead(0, BigInt(EDU_REG.IRQ_STATUS), 32), 0n);
    assert.equal(lost.fired, 1);
    const again = edu.faults.arm('lost-interrupt');
    again.disarm();
    edu.mmioWrite(0, BigInt(EDU_REG.IRQ_RAISE), 32, 1n);
    assert.equal(edu.mmioRead(0, BigInt(EDU_REG.IRQ_STATUS), 32), 1n);
  });

  it('a bad arm is a typed error naming the point or the field', () => {
    const edu = new EduDevice();
    assert.throws(
      () => edu.faults.arm('nope' as 'lost-interrupt'),
      (e: unknown) =>
        e instanceof RangeError &&
        /no fault point 'nope' \(it has: wrong-factorial, lost-interrupt, dma-error, stuck-dma\)/.test(e.message),
    );
    assert.throws(() => edu.faults.arm('lost-interrupt', { nth: 0 }), RangeError);
    assert.throws(() => edu.faults.arm('lost-interrupt', { probability: 2 }), RangeError);
    assert.throws(() => edu.faults.arm('lost-interrupt', { seed: 1.5, probability: 0.1 }), RangeError);
    assert.throws(() => edu.faults.arm('lost-interrupt', { times: -1 }), RangeError);
    assert.throws(
      () => edu.faults.arm('lost-interrupt', { nht: 1 } as never),
      (e: unknown) => e instanceof TypeError && /unknown field 'nht'/.test(e.message),
    );
    assert.deepEqual(edu.faults.names, ['wrong-factorial', 'lost-interrupt', 'dma-error', 'stuck-dma']);
  });
});
