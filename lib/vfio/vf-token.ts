/**
 * SR-IOV VF tokens in the typed API: a UUID string ("52ac9bff-3a88-4fbd-901a-0d767c3b6c97"),
 * checked before any syscall, its 16 bytes for VFIO_DEVICE_BIND_IOMMUFD and the PF's
 * VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, and the hint the kernel's EACCES/EINVAL answers deserve: a
 * VF whose PF is bound to vfio-pci opens only with the PF user's token, and a PF whose VFs are
 * open only with that same token.
 */
import { VfioError } from '../sys/errors';

const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Throws a TypeError naming `parameter` unless `token` is a UUID in its 36-character form. */
export function checkVfToken(token: unknown, parameter = 'vfToken'): string {
  if (typeof token !== 'string' || !UUID_PATTERN.test(token)) {
    throw new TypeError(
      `${parameter} must be a UUID string like '52ac9bff-3a88-4fbd-901a-0d767c3b6c97', not ${typeof token === 'string' ? `'${token}'` : typeof token}`,
    );
  }
  return token;
}

/** The 16 bytes of a checked token, in the order uuid_parse stores them. */
export function vfTokenBytes(token: string): Uint8Array {
  return Uint8Array.from(Buffer.from(checkVfToken(token).replace(/-/g, ''), 'hex'));
}

/** The hint for a refused open or bind, or undefined when the errno is not the token's. */
export function vfTokenHint(e: unknown, given: boolean): string | undefined {
  if (!(e instanceof VfioError)) return undefined;
  if (e.code === 'EACCES') {
    return given
      ? 'the VF token does not match: a VF of a PF bound to vfio-pci (and a PF whose VFs are open) opens only with the token the PF user set (VfioDevice.setVfToken, or the token the PF was opened with)'
      : 'this is an SR-IOV VF of a PF bound to vfio-pci (or a PF whose VFs are open): pass { vfToken } with the token the PF user set';
  }
  if (e.code === 'EINVAL' && given) {
    return 'a VF token is only accepted for an SR-IOV PF or VF whose PF is bound to vfio-pci; leave vfToken out for this device';
  }
  return undefined;
}
