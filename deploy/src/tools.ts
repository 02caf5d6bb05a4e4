import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KEYCLOAK_VERSION, TEMPORAL_VERSION, type StackConfig } from './config';
import { LaunchError } from './errors';
import { ManagedProcess } from './process';
import type { KeycloakSource, TemporalSource, Unzipper } from './prerequisites';

/** Called with every tool process, so an interrupted launcher can stop it. */
export type Track = (proc: ManagedProcess) => void;

async function runTool(config: StackConfig, name: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, track: Track): Promise<void> {
  const logFile = join(config.logDir, `${name}.log`);
  const proc = ManagedProcess.spawn({ name, command, args, cwd, env, logFile });
  track(proc);
  const exit = await proc.exited;
  if (exit.code !== 0) {
    throw new LaunchError(`${name} failed (${exit.signal ?? `code ${String(exit.code)}`}); see ${logFile}`);
  }
}

/** The temporal binary: found, or built once with go install into the cache. */
export async function ensureTemporal(config: StackConfig, source: TemporalSource, track: Track): Promise<string> {
  if (source.kind === 'binary') return source.path;
  const finalDir = dirname(source.target);
  const buildDir = `${finalDir}.build-${process.pid}`;
  mkdirSync(buildDir, { recursive: true });
  config.onStatus(`building the Temporal CLI v${TEMPORAL_VERSION} with go install into ${finalDir} (once; this takes a few minutes)`);
  try {
    await runTool(
      config,
      'go-install-temporal',
      source.go,
      ['install', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_VERSION}`],
      buildDir,
      { ...config.baseEnv, GOBIN: buildDir },
      track,
    );
    mkdirSync(finalDir, { recursive: true });
    // A rename is atomic: another launcher never sees a half-written binary.
    renameSync(join(buildDir, 'temporal'), source.target);
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
  return source.target;
}

/** An unpacked Keycloak: given, cached, unpacked from the cached zip, or fetched with mvn first. */
export async function ensureKeycloak(config: StackConfig, source: KeycloakSource, unzipper: () => Unzipper, track: Track): Promise<string> {
  if (source.kind === 'home') return source.home;
  const cache = dirname(source.zip);
  mkdirSync(cache, { recursive: true });
  if (source.kind === 'maven') {
    config.onStatus(`downloading Keycloak ${KEYCLOAK_VERSION} from Maven Central into ${cache} (once)`);
    await runTool(
      config,
      'mvn-keycloak',
      source.mvn,
      ['-q', '-B', 'dependency:copy', `-Dartifact=org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip`, `-DoutputDirectory=${cache}`],
      cache,
      { ...config.baseEnv },
      track,
    );
    if (!existsSync(source.zip)) throw new LaunchError(`mvn did not produce ${source.zip}; see ${join(config.logDir, 'mvn-keycloak.log')}`);
  }
  config.onStatus(`unpacking Keycloak ${KEYCLOAK_VERSION} into ${source.home} (once)`);
  const tmp = join(cache, `.unpack-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const tool = unzipper();
    try {
      await runTool(config, 'unpack-keycloak', tool.command, tool.args(source.zip, tmp), tmp, { ...config.baseEnv }, track);
    } catch {
      // A damaged download: drop it so the next start fetches it again.
      rmSync(source.zip, { force: true });
      throw new LaunchError(`could not unpack ${source.zip} (removed; start again to fetch it anew); see ${join(config.logDir, 'unpack-keycloak.log')}`);
    }
    const unpacked = readdirSync(tmp).find((entry) => entry.startsWith('keycloak'));
    if (unpacked === undefined) throw new LaunchError(`${source.zip} holds no keycloak directory`);
    // jar xf drops the executable bits.
    for (const script of readdirSync(join(tmp, unpacked, 'bin'))) {
      if (script.endsWith('.sh')) chmodSync(join(tmp, unpacked, 'bin', script), 0o755);
    }
    try {
      renameSync(join(tmp, unpacked), source.home);
    } catch (error) {
      // Another launcher unpacked it first.
      if (!existsSync(join(source.home, 'bin', 'kc.sh'))) throw error;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return source.home;
}
