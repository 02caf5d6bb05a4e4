import { join } from 'node:path';
import { resolveConfig, type StackConfig, type StackOptions, type StackPorts } from './config';
import { securePrivateData } from './data-dir';
import { runnerStopGraceMs, serviceEntry, serviceEnv, serviceProcessEnv, stackUrls, type StackUrls } from './env';
import { LaunchError, oneLine, PartExitedError } from './errors';
import { launchKeycloak } from './keycloak';
import type { Launched } from './launched';
import { launchMaildev } from './maildev';
import { isServicePart, SERVICE_PARTS, type PartName, type ServicePart } from './parts';
import { assertPortsFree } from './ports';
import { launchPostgres } from './postgres';
import {
  assertFileExists,
  findJava,
  findMaildev,
  findUnzipper,
  locateKeycloak,
  locateTemporal,
  type JavaInfo,
  type KeycloakSource,
  type TemporalSource,
} from './prerequisites';
import { lastStartLog, signalGroup, type ExitInfo, type ManagedProcess } from './process';
import { launchService, waitStackHealthy } from './services';
import { launchTemporal } from './temporal';
import { ensureKeycloak, ensureTemporal } from './tools';

/**
 * Parts spawned together, in this order; each group waits until the one before it is
 * ready. The gateway comes last, once the services answer (it opens a stream to the
 * user service as it starts).
 */
export const START_GROUPS: readonly (readonly PartName[])[] = [
  ['postgres'],
  ['temporal', 'keycloak', 'maildev'],
  ['user', 'script', 'execution', 'runner'],
  ['gateway'],
];

/**
 * Parts stopped together, in this order: the reverse of the start, except that runners
 * stop before the services, which record what the runs they drain still send.
 */
export const STOP_GROUPS: readonly (readonly PartName[])[] = [['runner'], ['gateway'], ['user', 'script', 'execution'], ['temporal', 'keycloak', 'maildev'], ['postgres']];

/** Starts of a part whose exit during start is worth another (see Launched.startAgainWhen). */
const START_ATTEMPTS = 3;

export type ExitListener = (part: PartName, exit: ExitInfo, logFile: string) => void;

/** A running stack. */
export interface Stack {
  readonly config: StackConfig;
  /** Addresses on 127.0.0.1 (what the services use). */
  readonly urls: StackUrls;
  readonly ports: StackPorts;
  /** The variables each service gets from the launcher (beyond the inherited environment). */
  readonly env: Record<ServicePart, Record<string, string>>;
  readonly dataDir: string;
  readonly logDir: string;
  /** The parts this stack manages. */
  readonly parts: readonly PartName[];
  /** Milliseconds from spawn to ready, per part, for the last start of each. */
  readonly timings: Partial<Record<PartName, number>>;
  /** Process (group) ids of the running parts. */
  pids(): Partial<Record<PartName, number>>;
  isRunning(part: PartName): boolean;
  logFile(part: PartName): string;
  /** Stops every part (services first, PostgreSQL last) and waits until all are gone. */
  stop(): Promise<void>;
  stopPart(part: PartName): Promise<void>;
  /** SIGKILL to one part's process group, no grace (a crash); resolves when it is gone. */
  killPart(part: PartName): Promise<void>;
  /** Starts a stopped part again on its ports and waits until it is ready. */
  startPart(part: PartName): Promise<void>;
  /** Called when a part exits that nobody stopped. */
  onExit(listener: ExitListener): void;
  /** SIGKILL to every process group at once (for process 'exit' handlers). */
  killNow(): void;
}

interface Prepared {
  temporal?: string;
  keycloakHome?: string;
  java?: JavaInfo;
  maildev?: string;
}

export class StackRuntime implements Stack {
  readonly urls: StackUrls;
  readonly ports: StackPorts;
  readonly env: Record<ServicePart, Record<string, string>>;
  readonly timings: Partial<Record<PartName, number>> = {};
  private readonly procs = new Map<PartName, ManagedProcess>();
  private readonly tools = new Set<ManagedProcess>();
  private readonly intentional = new WeakSet<ManagedProcess>();
  /** Processes not ready yet: their exit is a start failure, reported by launch(). */
  private readonly launching = new WeakSet<ManagedProcess>();
  private readonly listeners: ExitListener[] = [];
  private readonly prepared: Prepared = {};
  private stopping = false;

  constructor(readonly config: StackConfig) {
    this.ports = config.ports;
    this.urls = stackUrls(config.ports, '127.0.0.1');
    this.env = Object.fromEntries(SERVICE_PARTS.map((part) => [part, serviceEnv(part, config)])) as Record<ServicePart, Record<string, string>>;
  }

  get dataDir(): string {
    return this.config.dataDir;
  }

  get logDir(): string {
    return this.config.logDir;
  }

  get parts(): readonly PartName[] {
    return this.config.parts;
  }

  /** Whether stop() was called (a start that fails afterwards was interrupted, not broken). */
  get stopped(): boolean {
    return this.stopping;
  }

  pids(): Partial<Record<PartName, number>> {
    const pids: Partial<Record<PartName, number>> = {};
    for (const [part, proc] of this.procs) if (proc.running) pids[part] = proc.pid;
    return pids;
  }

  isRunning(part: PartName): boolean {
    return this.procs.get(part)?.running ?? false;
  }

  logFile(part: PartName): string {
    return join(this.config.logDir, `${part}.log`);
  }

  onExit(listener: ExitListener): void {
    this.listeners.push(listener);
  }

  /** Checks ports and prerequisites, fetches missing tools, then starts the parts in order. */
  async start(): Promise<void> {
    const { config } = this;
    const began = Date.now();
    try {
      await assertPortsFree(config.parts, config.ports);
      await this.prepare(config.parts);
      securePrivateData(config);
      for (const group of START_GROUPS) {
        const parts = group.filter((part) => config.parts.includes(part));
        if (parts.length === 0) continue;
        this.checkNotStopping();
        await Promise.all(parts.map((part) => this.launch(part)));
      }
      if (config.parts.includes('gateway')) {
        this.checkNotStopping();
        await waitStackHealthy(config);
        config.onStatus(`/api-health answers 200`);
      }
      config.onStatus(`stack ready in ${seconds(Date.now() - began)}`);
    } catch (error) {
      const interrupted = this.stopping;
      await this.stop();
      if (interrupted) throw new LaunchError('start interrupted');
      throw error;
    }
  }

  async stopPart(part: PartName): Promise<void> {
    const proc = this.procs.get(part);
    if (proc === undefined) return;
    this.intentional.add(proc);
    await proc.stop(part === 'runner' ? Math.max(this.config.gracePeriodMs, runnerStopGraceMs(serviceProcessEnv('runner', this.config))) : this.config.gracePeriodMs);
    this.procs.delete(part);
  }

  async killPart(part: PartName): Promise<void> {
    const proc = this.procs.get(part);
    if (proc === undefined) return;
    this.intentional.add(proc);
    await proc.kill();
    this.procs.delete(part);
  }

  async startPart(part: PartName): Promise<void> {
    if (this.isRunning(part)) return;
    if (part === 'keycloak' || part === 'temporal' || part === 'maildev' || isServicePart(part)) await this.prepare([part]);
    await assertPortsFree([part], this.config.ports);
    try {
      await this.launch(part);
    } catch (error) {
      await this.stopPart(part);
      throw error;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const tool of this.tools) tool.stop(2000).catch(() => undefined);
    for (const group of STOP_GROUPS) {
      await Promise.all(group.map((part) => this.stopPart(part).catch(() => undefined)));
    }
  }

  killNow(): void {
    for (const proc of [...this.procs.values(), ...this.tools]) signalGroup(proc.pid, 'SIGKILL');
  }

  private checkNotStopping(): void {
    if (this.stopping) throw new LaunchError('start interrupted');
  }

  /** Every check first (so a missing JDK shows before a long build), then the downloads. */
  private async prepare(parts: readonly PartName[]): Promise<void> {
    const { config } = this;
    let temporal: TemporalSource | undefined;
    let keycloak: KeycloakSource | undefined;
    if (parts.includes('temporal') && this.prepared.temporal === undefined) temporal = locateTemporal(config);
    if (parts.includes('keycloak') && this.prepared.keycloakHome === undefined) {
      this.prepared.java = findJava(config);
      keycloak = locateKeycloak(config);
    }
    if (parts.includes('maildev')) this.prepared.maildev = findMaildev(config);
    for (const part of parts) {
      if (isServicePart(part)) assertFileExists(serviceEntry(part, config.repoRoot), `services/${part}/src/main.ts`);
    }
    securePrivateData(config);
    const track = (proc: ManagedProcess): void => {
      this.tools.add(proc);
      void proc.exited.then(() => this.tools.delete(proc));
    };
    if (temporal !== undefined) this.prepared.temporal = await ensureTemporal(config, temporal, track);
    this.checkNotStopping();
    if (keycloak !== undefined) this.prepared.keycloakHome = await ensureKeycloak(config, keycloak, () => findUnzipper(config, this.prepared.java), track);
    this.checkNotStopping();
  }

  private spawnPart(part: PartName): Launched {
    const { config, prepared } = this;
    switch (part) {
      case 'postgres':
        return launchPostgres(config);
      case 'temporal':
        return launchTemporal(config, required(prepared.temporal, 'temporal binary'));
      case 'keycloak':
        return launchKeycloak(config, required(prepared.keycloakHome, 'Keycloak home'), required(prepared.java, 'Java'));
      case 'maildev':
        return launchMaildev(config, required(prepared.maildev, 'MailDev'));
      default:
        return launchService(part, config);
    }
  }

  private async launch(part: PartName): Promise<void> {
    this.checkNotStopping();
    const began = Date.now();
    this.config.onStatus(`starting ${part}`);
    for (let attempt = 1; ; attempt++) {
      const launched = this.spawnPart(part);
      const { proc } = launched;
      this.procs.set(part, proc);
      this.launching.add(proc);
      void proc.exited.then((exit) => {
        if (this.intentional.has(proc) || this.launching.has(proc) || this.stopping) return;
        for (const listener of this.listeners) listener(part, exit, proc.spec.logFile);
      });
      try {
        await launched.ready;
        break;
      } catch (error) {
        if (this.stopping) throw new LaunchError('start interrupted');
        if (error instanceof PartExitedError && attempt < START_ATTEMPTS && launched.startAgainWhen?.(lastStartLog(proc.spec.logFile))) {
          this.config.onStatus(`${oneLine(error)}; starting ${part} again`);
          continue;
        }
        throw error instanceof LaunchError ? error : new LaunchError(`${part}: ${oneLine(error)}; see ${proc.spec.logFile}`);
      } finally {
        this.launching.delete(proc);
      }
    }
    this.timings[part] = Date.now() - began;
    this.config.onStatus(`${part} ready in ${seconds(this.timings[part])}`);
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new LaunchError(`internal: ${what} was not prepared`);
  return value;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A stack that has not started yet (start() it; stop() works at any time). */
export function createStack(options: StackOptions = {}): StackRuntime {
  return new StackRuntime(resolveConfig(options));
}

/** Checks, prepares and starts the stack; resolves once every chosen part is ready. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const stack = createStack(options);
  await stack.start();
  return stack;
}
