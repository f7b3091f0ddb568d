/**
 * Just enough of an ELF64 little-endian reader to check a prebuilt addon for a machine this host
 * may not be able to run: which machine it is for, whether it is stripped, what it exports.
 */

/** e_machine values of the architectures the package ships prebuilds for. */
export const ELF_MACHINE = { x64: 62, arm64: 183 } as const;

/** The elf.h values the summary reads. */
const ELF = {
  ET_DYN: 3,
  SHT_SYMTAB: 2,
  SHT_DYNSYM: 11,
  STB_GLOBAL: 1,
  STB_WEAK: 2,
  STT_FUNC: 2,
  SHN_UNDEF: 0,
} as const;

export interface ElfSummary {
  /** e_machine: 62 for x86-64, 183 for AArch64. */
  readonly machine: number;
  readonly sharedObject: boolean;
  /** False when a full symbol table (.symtab) is still there. */
  readonly stripped: boolean;
  /** Functions the dynamic symbol table defines with global or weak binding. */
  readonly exportedFunctions: readonly string[];
}

function cString(bytes: Buffer, offset: number): string {
  const end = bytes.indexOf(0, offset);
  return bytes.toString('latin1', offset, end < 0 ? bytes.length : end);
}

export function readElf(bytes: Buffer): ElfSummary {
  if (bytes.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const sectionTable = Number(bytes.readBigUInt64LE(0x28));
  const sectionSize = bytes.readUInt16LE(0x3a);
  const sectionCount = bytes.readUInt16LE(0x3c);
  const sections = Array.from({ length: sectionCount }, (_, i) => {
    const at = sectionTable + i * sectionSize;
    return {
      type: bytes.readUInt32LE(at + 4),
      offset: Number(bytes.readBigUInt64LE(at + 0x18)),
      size: Number(bytes.readBigUInt64LE(at + 0x20)),
      link: bytes.readUInt32LE(at + 0x28),
      entrySize: Number(bytes.readBigUInt64LE(at + 0x38)),
    };
  });
  const exportedFunctions: string[] = [];
  const dynsym = sections.find((s) => s.type === ELF.SHT_DYNSYM);
  if (dynsym) {
    const strings = sections[dynsym.link];
    if (!strings) throw new Error('.dynsym links to a missing string table');
    for (let at = dynsym.offset; at + dynsym.entrySize <= dynsym.offset + dynsym.size; at += dynsym.entrySize) {
      const info = bytes[at + 4] ?? 0;
      const binding = info >> 4;
      const defined = bytes.readUInt16LE(at + 6) !== ELF.SHN_UNDEF;
      if ((info & 0xf) === ELF.STT_FUNC && (binding === ELF.STB_GLOBAL || binding === ELF.STB_WEAK) && defined) {
        exportedFunctions.push(cString(bytes, strings.offset + bytes.readUInt32LE(at)));
      }
    }
  }
  return {
    machine: bytes.readUInt16LE(0x12),
    sharedObject: bytes.readUInt16LE(0x10) === ELF.ET_DYN,
    stripped: !sections.some((s) => s.type === ELF.SHT_SYMTAB),
    exportedFunctions,
  };
}
