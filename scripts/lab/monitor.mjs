#!/usr/bin/env node
// Sends human-monitor commands to a lab QEMU through its monitor socket and prints what each one
// answered, for run.sh's stall watchdog:
//   node scripts/lab/monitor.mjs RESULTS/monitor.sock 'info registers -a' nmi
// QEMU's monitor echoes what it is sent through its line editor (with terminal escapes) and ends
// every answer with its prompt, so an answer is the text between one prompt and the next. A QEMU
// that does not answer within the deadline is reported as such (exit 3): it is hung itself.
import net from 'node:net';

const [socketPath, ...commands] = process.argv.slice(2);
if (!socketPath || commands.length === 0) {
  console.error('usage: monitor.mjs <monitor socket> <command>...');
  process.exit(2);
}
const PROMPT = '(qemu) ';
const DEADLINE_MS = 20000;

const ESCAPE_SEQUENCE = new RegExp(`${String.fromCharCode(0x1b)}\\[[0-9;]*[A-Za-z]`, 'g');
const plain = (text) => text.replace(ESCAPE_SEQUENCE, '').replace(/\r/g, '');

const socket = net.createConnection(socketPath);
let pending = '';
let next = 0;
let answered = 0;
const deadline = setTimeout(() => {
  console.log(`monitor: QEMU did not answer '${commands[Math.max(0, next - 1)] ?? 'the greeting'}' within ${DEADLINE_MS / 1000} s`);
  socket.destroy();
  process.exit(3);
}, DEADLINE_MS);

socket.on('error', (error) => {
  console.log(`monitor: ${socketPath}: ${error.code ?? error.message}`);
  process.exit(3);
});
// A command that ends the guest (an NMI that panics it, with panic=-1 and -no-reboot) may take QEMU
// down before its prompt comes back.
socket.on('close', () => {
  clearTimeout(deadline);
  if (answered < next) console.log(`monitor> ${commands[next - 1]}\n  (QEMU closed the monitor before answering)`);
});
socket.on('data', (chunk) => {
  pending += chunk.toString('latin1');
  let at;
  while ((at = pending.indexOf(PROMPT)) >= 0) {
    const answer = plain(pending.slice(0, at));
    pending = pending.slice(at + PROMPT.length);
    // The first prompt follows the greeting; every later one ends the answer to a command, whose
    // first line is the monitor's echo of it.
    if (next > 0) {
      const lines = answer
        .split('\n')
        .slice(1)
        .filter((line) => line.trim() !== '');
      answered = next;
      console.log(`monitor> ${commands[next - 1]}`);
      for (const line of lines) console.log(`  ${line}`);
    }
    if (next === commands.length) {
      clearTimeout(deadline);
      socket.end();
      return;
    }
    socket.write(`${commands[next++]}\n`);
  }
});
