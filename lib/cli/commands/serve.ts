/**
 * `vfio serve`: run the broker (lib/broker/server.ts) until SIGINT or SIGTERM. It binds the listed
 * devices to vfio-pci, listens on the socket (mode 0666 on the real host: who may use it is decided
 * by SO_PEERCRED against --allow, not by the file mode), and logs every grant, release and refusal,
 * as text on stderr or, with --json, one JSON object per line on stdout.
 */
import fs from 'node:fs';
import { isBdf, normalizeBdf } from '../../pci/pci-device';
import { Broker, type BrokerLogEntry } from '../../broker/server';
import { UsageError } from '../args';
import type { Command } from '../command';

export const serveCommand: Command = {
  name: 'serve',
  usage:
    'vfio serve --socket PATH --allow UID|uid:UID|gid:GID[,…] [--device BDF[,BDF…]] [BDF…] [--vf-token PF=FILE[,…]] [--json] [--model[=PROFILE]]',
  summary: 'hand devices to unprivileged processes over a unix socket (run as root)',
  options: {
    socket: { value: 'required', description: 'the unix socket to listen on (must not exist)' },
    allow: { value: 'required', description: 'who may ask: uids (1000 or uid:1000) and gids (gid:100), comma-separated' },
    device: { value: 'required', description: 'the PCI addresses it hands out, comma-separated (also as arguments)' },
    'vf-token': {
      value: 'required',
      description:
        "a PF's VF token, read from FILE (on the command line it would show in /proc/PID/cmdline): listed VFs of that PF are bound with it before they are handed over",
    },
    json: { description: 'log one JSON object per line on stdout (schema: docs/cli.md)' },
  },
  async run(ctx) {
    const { options, positionals } = ctx.args;
    const socketPath = options.get('socket');
    if (typeof socketPath !== 'string' || socketPath === '') throw new UsageError(`--socket PATH is required: ${this.usage}`);
    const allow = options.get('allow');
    if (typeof allow !== 'string') throw new UsageError(`--allow is required (nobody would be served): ${this.usage}`);
    const allowUids: number[] = [];
    const allowGids: number[] = [];
    for (const item of allow.split(',')) {
      const m = /^(?:(uid|gid):)?(\d{1,10})$/.exec(item.trim());
      if (!m || Number(m[2]) > 0xffff_fffe) throw new UsageError(`--allow: '${item}' is not a uid, uid:UID or gid:GID`);
      (m[1] === 'gid' ? allowGids : allowUids).push(Number(m[2]));
    }
    const listed = [...(typeof options.get('device') === 'string' ? (options.get('device') as string).split(',') : []), ...positionals];
    if (listed.length === 0) throw new UsageError(`name at least one device (--device BDF): ${this.usage}`);
    for (const bdf of listed) {
      if (!isBdf(bdf)) throw new UsageError(`'${bdf}' is not a PCI address (expected domain:bus:device.function, e.g. 0000:00:03.0)`);
    }
    const devices = [...new Set(listed.map(normalizeBdf))];
    const json = options.has('json');
    const log = (e: BrokerLogEntry) => {
      const peer = e.peer ? { pid: e.peer.pid, uid: e.peer.uid, gid: e.peer.gid } : null;
      if (json)
        ctx.stdout(JSON.stringify({ time: new Date().toISOString(), event: e.event, peer, bdf: e.bdf ?? null, message: e.message }));
      else ctx.stderr(`vfio serve: ${e.event}${peer ? ` pid ${peer.pid} uid ${peer.uid}` : ''}${e.bdf ? ` ${e.bdf}` : ''}: ${e.message}`);
    };
    const vfTokens: Record<string, string> = {};
    const tokenOption = options.get('vf-token');
    for (const item of typeof tokenOption === 'string' ? tokenOption.split(',') : []) {
      const at = item.indexOf('=');
      const pf = item.slice(0, at);
      if (at < 0 || !isBdf(pf))
        throw new UsageError(`--vf-token: '${item}' is not PF=FILE (the PF's PCI address, then the file holding its token)`);
      vfTokens[normalizeBdf(pf)] = ctx.kernel
        .readFile(item.slice(at + 1))
        .toString('utf8')
        .trim();
    }
    const broker = Broker.start({ kernel: ctx.kernel, socketPath, allowUids, allowGids, devices, log, vfTokens });
    if (ctx.kernel.kind === 'native') fs.chmodSync(socketPath, 0o666);
    const ready = `listening on ${socketPath} for ${[...allowUids.map((u) => `uid ${u}`), ...allowGids.map((g) => `gid ${g}`)].join(', ')}; devices ${devices.join(', ')}`;
    if (json)
      ctx.stdout(JSON.stringify({ time: new Date().toISOString(), event: 'listening', socket: socketPath, devices, allowUids, allowGids }));
    else ctx.stderr(`vfio serve: ${ready}`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await broker.close();
    return 0;
  },
};
