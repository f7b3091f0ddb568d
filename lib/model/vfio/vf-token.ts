/**
 * The SR-IOV VF token (drivers/vfio/pci/vfio_pci_core.c, struct vfio_pci_vf_token): a PF bound
 * to vfio-pci gets a random UUID when it registers (vfio_pci_vf_init, uuid_gen); a VF created by
 * that PF's sriov_configure finds the PF then and, while open, counts as one of the token's users.
 * A PF user sets the token with VFIO_DEVICE_FEATURE_PCI_VF_TOKEN (SET only: the old value could
 * belong to the previous user) or by presenting one when no VF is open; the token outlives the
 * PF's fd (it lives as long as the PF's registration).
 *
 * vfio_pci_core_match_token_uuid, called with the token the opener presented (`vf_token=` in
 * VFIO_GROUP_GET_DEVICE_FD, VFIO_DEVICE_BIND_FLAG_TOKEN in VFIO_DEVICE_BIND_IOMMUFD) or none:
 *   VF whose PF is not vfio-pci's: no token fine, a token EINVAL;
 *   VF of a vfio-pci PF: no token or a different one EACCES;
 *   PF with VFs open: no token or a different one EACCES; PF without: a token becomes the token;
 *   neither: a token EINVAL.
 */
import { randomBytes } from 'node:crypto';
import { fail } from '../errno';

export class VfToken {
  uuid: Uint8Array = randomBytes(16);
  /** Open VFs of the PF (vf_token->users). */
  users = 0;
}

/** What the check needs to know of a device. */
export interface VfTokenHolder {
  /** Set for a PF bound to vfio-pci. */
  readonly vfToken: VfToken | undefined;
  /** Set for a VF: whether it is one (is_virtfn), and the token of its vfio-pci PF if it has one. */
  readonly virtfn: { readonly pfToken: VfToken | undefined } | undefined;
}

export function matchTokenUuid(device: VfTokenHolder, uuid: Uint8Array | undefined): void {
  if (device.virtfn) {
    const pf = device.virtfn.pfToken;
    if (!pf) {
      if (uuid) fail('EINVAL', 'VF token incorrectly provided, PF not bound to vfio-pci');
      return;
    }
    if (!uuid) fail('EACCES', 'VF token required to access device');
    if (!sameUuid(uuid, pf.uuid)) fail('EACCES', 'Incorrect VF token provided for device');
    return;
  }
  const token = device.vfToken;
  if (token) {
    if (token.users) {
      if (!uuid) fail('EACCES', 'VF token required to access device (VFs of this PF are in use)');
      if (!sameUuid(uuid, token.uuid)) fail('EACCES', 'Incorrect VF token provided for device');
    } else if (uuid) {
      token.uuid = uuid.slice();
    }
    return;
  }
  if (uuid) fail('EINVAL', 'VF token incorrectly provided, not a PF or VF');
}

function sameUuid(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === 16 && b.length === 16 && a.every((x, i) => x === b[i]);
}

/** uuid_parse: the 36-character textual form, any hex case; undefined when malformed. */
export function parseUuid(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text)) return undefined;
  return Uint8Array.from(Buffer.from(text.replace(/-/g, ''), 'hex'));
}
