/**
 * Where firmware puts BARs: q35's 32-bit PCI hole below the IOAPIC (from 0xc0000000), the 64-bit
 * window above RAM (from 512 GiB), and I/O ports from 0xc000, each BAR aligned to its size as
 * SeaBIOS places them. BARs a device model fixed itself (edu's 0xfea00000, as the lab's firmware
 * put it) are reserved when the device is plugged in; two BARs that would decode the same
 * addresses are refused with both devices named.
 */
import type { PciBarInfo, PciDeviceModel } from './device-model';

interface Window {
  readonly start: bigint;
  readonly end: bigint;
  next: bigint;
}
interface Claim {
  readonly start: bigint;
  readonly end: bigint;
  readonly owner: string;
  /** The function whose BAR it is. */
  readonly slot: string;
  readonly io: boolean;
}

export class BarWindows {
  private readonly mem32: Window = { start: 0xc000_0000n, end: 0xfec0_0000n, next: 0xc000_0000n };
  private readonly mem64: Window = { start: 0x80_0000_0000n, end: 0x1_0000_0000_0000n, next: 0x80_0000_0000n };
  private readonly io: Window = { start: 0xc000n, end: 0x1_0000n, next: 0xc000n };
  private readonly claims: Claim[] = [];

  /** Claims the BARs a device already decodes; throws when one collides with another device's. */
  reserveFixed(name: string, device: PciDeviceModel): void {
    const mine: Claim[] = [];
    for (const bar of device.bars) {
      if (!bar) continue;
      const start = device.barAddress(bar.index);
      if (start === 0n) continue;
      const claim = {
        start,
        end: start + bar.size,
        owner: `BAR ${bar.index} of ${name} (${device.model})`,
        slot: name,
        io: bar.space === 'io',
      };
      const clash = this.collision(claim);
      if (clash) throw new Error(`model host: ${claim.owner} at 0x${start.toString(16)} overlaps ${clash.owner}`);
      mine.push(claim);
    }
    this.claims.push(...mine);
  }

  /** Drops the claims of the function at `name` (it left the bus; a function plugged in there again claims its own). */
  release(name: string): void {
    for (let i = this.claims.length - 1; i >= 0; i--) if (this.claims[i]!.slot === name) this.claims.splice(i, 1);
  }

  /** The address firmware gives an unassigned BAR. */
  assign(name: string, device: PciDeviceModel, bar: PciBarInfo): bigint {
    const window = bar.space === 'io' ? this.io : bar.is64bit ? this.mem64 : this.mem32;
    let at = align(window.next, bar.size);
    for (;;) {
      if (at + bar.size > window.end)
        throw new Error(`model host: no room for BAR ${bar.index} of ${name} (${device.model}, 0x${bar.size.toString(16)} bytes)`);
      const claim = {
        start: at,
        end: at + bar.size,
        owner: `BAR ${bar.index} of ${name} (${device.model})`,
        slot: name,
        io: bar.space === 'io',
      };
      const clash = this.collision(claim);
      if (!clash) {
        this.claims.push(claim);
        window.next = claim.end;
        return at;
      }
      at = align(clash.end, bar.size);
    }
  }

  private collision(c: Claim): Claim | undefined {
    return this.claims.find((o) => o.io === c.io && c.start < o.end && o.start < c.end);
  }
}

function align(v: bigint, to: bigint): bigint {
  return ((v + to - 1n) / to) * to;
}
