/**
 * A lab recording in test/model/devices/fixtures: its observation lines, without the comment
 * lines that say where and how it was recorded.
 */
import fs from 'node:fs';
import path from 'node:path';

export function labRecording(name: string): string[] {
  const file = path.resolve(__dirname, '../../../test/model/devices/fixtures', name);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
}
