/**
 * ioctl request numbers. iommufd and VFIO both use `_IO(';', nr)`: no size or direction is encoded
 * in the number, the struct carries its own `size`/`argsz` instead. Because VFIO reuses the same
 * numbers on different kinds of fd (container, group, device), a request is described together
 * with the kind of file it is meant for, and errors name it.
 */

/** The ioctl "type" letter shared by iommufd and VFIO: ';'. */
export const IOCTL_TYPE_SEMICOLON = 0x3b;

export function IO(type: number, nr: number): number {
  return ((type & 0xff) << 8) | (nr & 0xff);
}

/**
 * The kind of file an ioctl request is defined for, which names the request in errors.
 *
 * @category Kernel
 */
export type FileKind = 'iommufd' | 'vfio-container' | 'vfio-group' | 'vfio-device';

export interface IoctlRequest {
  readonly name: string;
  readonly number: number;
  readonly file: FileKind;
}

const registry: IoctlRequest[] = [];

export function defineIoctl(name: string, number: number, file: FileKind): IoctlRequest {
  const req = { name, number, file };
  registry.push(req);
  return req;
}

/**
 * The name of a request number, for error messages. With the kind of file known it is exact;
 * otherwise every name that uses the number is listed ("VFIO_IOMMU_GET_INFO|VFIO_DEVICE_GET_INFO").
 */
export function ioctlName(number: number, file?: FileKind): string {
  const matches = registry.filter((r) => r.number === number && (file === undefined || r.file === file));
  if (matches.length === 0) return `ioctl 0x${number.toString(16)}`;
  return [...new Set(matches.map((m) => m.name))].join('|');
}

export function allIoctls(): readonly IoctlRequest[] {
  return registry;
}
