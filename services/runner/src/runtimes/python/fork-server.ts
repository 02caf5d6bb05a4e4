import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '@gef/common';
import { isAlive } from '../../process/is-alive';

/** How a process ended, as ChildProcess's 'exit' gives it. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How a process ended; `error` when it never started, or was lost with the fork server. */
export type ProcessEnd = ProcessExit & { error?: Error };

/** A started interpreter's process: its pid, its streams, and its end. */
export interface InterpreterProcess {
  readonly pid: number | undefined;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Fd 3: the shim's messages. */
  readonly channel: Readable;
  /** Resolves when the process ended. */
  readonly exited: Promise<ProcessEnd>;
}

/** What the forked interpreter is made (see the fork server in gef_runtime.py). */
export interface ForkRequest {
  dir: string;
  /** The run's own uid (= gid); undefined: the server's. */
  uid?: number;
  /** A mount namespace of its own with a /proc showing only its user's processes (sandbox/private-proc.ts). */
  privateProc?: boolean;
  /** The run's groups' cgroup.procs, joined by ':' (RunGroup.procs). */
  procs?: string;
  /** Limits set in the child (soft = hard), by the shim's names; null: unlimited. */
  limits?: Record<string, number | null>;
  nice?: number;
  env: Record<string, string>;
}

export interface ForkServerOptions {
  /** The interpreter (the one pooled interpreters would be started with). */
  python: string;
  /** The runtime shim (gef_runtime.py), which holds the server. */
  shim: string;
  /** The server's environment (nothing of the runner's). */
  env: Record<string, string>;
  logger: Logger;
}

/** The server's three connections of a child: stdin and channel (one socket), stdout, stderr. */
type Streams = [net.Socket | undefined, net.Socket | undefined, net.Socket | undefined];

interface Pending {
  id: number;
  token: string;
  pid?: number;
  streams: Streams;
  resolve: (process: InterpreterProcess) => void;
  reject: (err: Error) => void;
  settleExit: (exit: ProcessEnd) => void;
  exited: Promise<ProcessEnd>;
  timer: NodeJS.Timeout;
}

/** How long a forked child has to connect its three streams. */
const connectTimeoutMs = 10_000;
/** The first line a child writes on each connection: its token and the stream. */
const maxHeader = 80;

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(os.constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]),
);

/** The socket directories' names: `gef-fork-<runner pid>-<random>`. */
const socketDirPrefix = 'gef-fork-';

/** Removes the socket directories runners that died (SIGKILL) left behind. */
function removeSocketDirsOfDeadRunners(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith(socketDirPrefix)) continue;
    const pid = Number(name.slice(socketDirPrefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

/**
 * One Python interpreter with the shim imported, forking the interpreters of runs (see
 * gef_runtime.py): a fork costs a few milliseconds of CPU where starting an interpreter and
 * importing the shim cost about 50. Children connect back on a Unix socket in a directory
 * only the runner can enter; each connection says whose and which stream it is with a
 * token given only in the request. The server is started on first use, and again after it
 * died (its children die with it: their parent-death signal).
 */
export class ForkServer {
  private server: net.Server | undefined;
  private socketDir: string | undefined;
  private child: ChildProcess | undefined;
  private starting: Promise<ChildProcess> | undefined;
  private readonly byToken = new Map<string, Pending>();
  private readonly byId = new Map<number, Pending>();
  private readonly byPid = new Map<number, Pending>();
  /** The children's connections still open. */
  private readonly sockets = new Set<net.Socket>();
  private nextId = 1;
  private stopped = false;
  private replies = '';

  constructor(private readonly options: ForkServerOptions) {}

  /** The server's process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Where children connect (once started). */
  get socketPath(): string | undefined {
    return this.socketDir ? path.join(this.socketDir, 's') : undefined;
  }

  /** A new interpreter, its streams connected; rejects when it could not be forked. */
  async fork(request: ForkRequest): Promise<InterpreterProcess> {
    if (this.stopped) throw new Error('the fork server is stopped');
    const server = await this.ensureStarted();
    const id = this.nextId++;
    const token = randomBytes(16).toString('hex');
    let settleExit: Pending['settleExit'] = () => undefined;
    const exited = new Promise<ProcessEnd>((r) => (settleExit = r));
    return new Promise<InterpreterProcess>((resolve, reject) => {
      const pending: Pending = {
        id,
        token,
        streams: [undefined, undefined, undefined],
        resolve,
        reject,
        settleExit,
        exited,
        timer: setTimeout(() => this.fail(pending, new Error('the forked interpreter did not connect')), connectTimeoutMs),
      };
      this.byToken.set(token, pending);
      this.byId.set(id, pending);
      const line = JSON.stringify({
        id,
        token,
        dir: request.dir,
        uid: request.uid ?? null,
        privateProc: request.privateProc ?? false,
        procs: request.procs ?? null,
        limits: request.limits ?? null,
        nice: request.nice ?? 0,
        env: request.env,
      });
      server.stdin!.write(`${line}\n`);
    });
  }

  /** Ends the server (and with it the interpreters it forked that still run). */
  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    // A connection may outlive its child (held by a process the run left behind).
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (this.socketDir) fs.rmSync(this.socketDir, { recursive: true, force: true });
  }

  private async ensureStarted(): Promise<ChildProcess> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<ChildProcess> {
    if (!this.server) {
      removeSocketDirsOfDeadRunners();
      // A short path (Unix socket paths are limited to 107 bytes), the runner's alone.
      this.socketDir = fs.mkdtempSync(path.join(os.tmpdir(), `${socketDirPrefix}${process.pid}-`));
      fs.chmodSync(this.socketDir, 0o700);
      const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath!, () => resolve());
      });
      this.server = server;
    }
    const { python, shim, env, logger } = this.options;
    const child = spawn(python, ['-I', '-S', '-u', '-B', '-X', 'utf8', shim, '--fork-server', this.socketPath!, String(process.pid)], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.replies = '';
    child.stdin!.on('error', () => undefined);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onReplies(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => logger.warn({ stderr: chunk.trim().slice(0, 2000) }, 'the Python fork server wrote to stderr'));
    child.once('exit', (code, signal) => this.onServerExit(child, code, signal));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.child = child;
    return child;
  }

  private onReplies(chunk: string): void {
    this.replies += chunk;
    let nl: number;
    while ((nl = this.replies.indexOf('\n')) !== -1) {
      const line = this.replies.slice(0, nl);
      this.replies = this.replies.slice(nl + 1);
      let reply: { t?: string; id?: number; pid?: number; code?: number | null; signal?: number | null; m?: string };
      try {
        reply = JSON.parse(line) as typeof reply;
      } catch {
        continue;
      }
      if (reply.t === 'forked' && typeof reply.id === 'number' && typeof reply.pid === 'number') {
        const pending = this.byId.get(reply.id);
        if (!pending) continue;
        pending.pid = reply.pid;
        this.byPid.set(reply.pid, pending);
        this.complete(pending);
      } else if (reply.t === 'refused' && typeof reply.id === 'number') {
        const pending = this.byId.get(reply.id);
        if (pending) this.fail(pending, new Error(`the fork server could not fork: ${reply.m ?? 'refused'}`));
      } else if (reply.t === 'exit' && typeof reply.pid === 'number') {
        const pending = this.byPid.get(reply.pid);
        if (!pending) continue;
        this.ended(pending, { code: reply.code ?? null, signal: reply.signal != null ? (signalNames.get(reply.signal) ?? null) : null });
      }
    }
  }

  /** The server died: what it forked died with it (their parent-death signal). */
  private onServerExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child === child) this.child = undefined;
    if (!this.stopped) this.options.logger.warn({ code, signal }, 'the Python fork server ended; it is started again for the next interpreter');
    for (const pending of [...this.byId.values()]) if (pending.pid === undefined) this.fail(pending, new Error(`the fork server ended (${signal ?? `exit code ${code}`})`));
    // Their runs end for a reason of the runner's, not the script's: an error, so the attempt is retried.
    const lost = new Error(`the fork server ended (${signal ?? `exit code ${code}`}), and the interpreter with it`);
    for (const pending of [...this.byPid.values()]) this.ended(pending, { code: null, signal: 'SIGKILL' }, lost);
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => undefined);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let header = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      header = Buffer.concat([header, chunk]);
      const nl = header.indexOf(10);
      if (nl === -1) {
        if (header.length > maxHeader) socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.pause();
      const [token, stream] = header.subarray(0, nl).toString('ascii').split(' ');
      const rest = header.subarray(nl + 1);
      const pending = token ? this.byToken.get(token) : undefined;
      const index = Number(stream);
      if (!pending || !(index === 0 || index === 1 || index === 2) || pending.streams[index]) {
        socket.destroy();
        return;
      }
      if (rest.length > 0) socket.unshift(rest);
      // Only the first connection reads from the runner (stdin, ended once the job is
      // written); the others are output only. A connection the child ended is ended here too.
      if (index !== 0) socket.end();
      else socket.once('end', () => socket.end());
      pending.streams[index] = socket;
      this.complete(pending);
    };
    socket.on('data', onData);
  }

  /** Resolves a fork once the child's pid and its three connections are there. */
  private complete(pending: Pending): void {
    const [control, stdout, stderr] = pending.streams;
    if (pending.pid === undefined || !control || !stdout || !stderr) return;
    clearTimeout(pending.timer);
    this.byToken.delete(pending.token);
    this.byId.delete(pending.id);
    const pid = pending.pid;
    pending.resolve({ pid, stdin: control, channel: control, stdout, stderr, exited: pending.exited });
  }

  private ended(pending: Pending, exit: ProcessExit, error?: Error): void {
    if (pending.pid !== undefined) this.byPid.delete(pending.pid);
    pending.settleExit(error ? { ...exit, error } : exit);
    // Ended before its streams were all there: the fork failed.
    if (this.byId.has(pending.id)) this.fail(pending, new Error(`the forked interpreter ended at once (${exit.signal ?? `exit code ${exit.code}`})`));
  }

  private fail(pending: Pending, err: Error): void {
    this.options.logger.warn({ err: err.message }, 'an interpreter could not be forked; it is started instead');
    clearTimeout(pending.timer);
    this.byToken.delete(pending.token);
    this.byId.delete(pending.id);
    for (const socket of pending.streams) socket?.destroy();
    // Not ended yet (an ended child has left byPid): its group is killed.
    if (pending.pid !== undefined && this.byPid.has(pending.pid)) {
      try {
        process.kill(-pending.pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    pending.reject(err);
  }
}
