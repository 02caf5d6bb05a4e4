import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { KEYCLOAK_VERSION, TEMPORAL_VERSION, type StackConfig } from './config';
import { PrerequisiteError } from './errors';

/** An executable file on PATH, or undefined. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The major version in `java -version` output: `version "17.0.15"` → 17, `"1.8.0_292"` → 8. */
export function parseJavaMajor(output: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?[^"]*"/.exec(output);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] !== undefined ? Number(match[2]) : first;
}

export const MIN_JAVA = 17;

export interface JavaInfo {
  /** The java executable. */
  command: string;
  /** JAVA_HOME to give Keycloak, when the JDK came from JAVA_HOME. */
  home: string | undefined;
  major: number;
}

export function javaMissingMessage(): string {
  return `Keycloak needs Java ${MIN_JAVA} or newer and none was found (JAVA_HOME is not set and there is no java on PATH): install OpenJDK ${MIN_JAVA}+ (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME to one`;
}

export function javaTooOldMessage(command: string, major: number | undefined): string {
  const what = major === undefined ? 'an unknown Java version' : `Java ${major}`;
  return `Keycloak needs Java ${MIN_JAVA} or newer but ${command} is ${what}: install OpenJDK ${MIN_JAVA}+ or set JAVA_HOME to one`;
}

/** JAVA_HOME's java, else java on PATH; it must be 17 or newer. */
export function findJava(config: StackConfig): JavaInfo {
  const home = config.settings.javaHome;
  let command: string | undefined;
  if (home !== undefined) {
    command = join(home, 'bin', 'java');
    if (!isExecutableFile(command)) throw new PrerequisiteError(`JAVA_HOME=${home} has no bin/java: point JAVA_HOME at a JDK ${MIN_JAVA}+ or unset it`);
  } else {
    command = findOnPath('java', config.baseEnv);
  }
  if (command === undefined) throw new PrerequisiteError(javaMissingMessage());
  const run = spawnSync(command, ['-version'], { encoding: 'utf8', timeout: 30_000 });
  const major = parseJavaMajor(`${run.stderr ?? ''}${run.stdout ?? ''}`);
  if (major === undefined || major < MIN_JAVA) throw new PrerequisiteError(javaTooOldMessage(command, major));
  return { command, home, major };
}

export type TemporalSource =
  | { kind: 'binary'; path: string }
  | { kind: 'go-install'; go: string; target: string };

export function temporalCachePath(cacheDir: string): string {
  return join(cacheDir, `temporal-${TEMPORAL_VERSION}`, 'temporal');
}

export function temporalMissingMessage(cacheDir: string): string {
  return `the Temporal CLI is missing (no TEMPORAL_CLI, no temporal on PATH, none in ${join(cacheDir, `temporal-${TEMPORAL_VERSION}`)}) and Go is not installed to build it: install Go (https://go.dev/dl/) or set TEMPORAL_CLI to a temporal v${TEMPORAL_VERSION} binary`;
}

/** TEMPORAL_CLI, else temporal on PATH, else the cached build, else a go install plan. */
export function locateTemporal(config: StackConfig): TemporalSource {
  const explicit = config.settings.temporalCli;
  if (explicit !== undefined) {
    if (!isExecutableFile(explicit)) throw new PrerequisiteError(`TEMPORAL_CLI=${explicit} is not an executable file: fix or unset it`);
    return { kind: 'binary', path: explicit };
  }
  const onPath = findOnPath('temporal', config.baseEnv);
  if (onPath !== undefined) return { kind: 'binary', path: onPath };
  const cached = temporalCachePath(config.cacheDir);
  if (isExecutableFile(cached)) return { kind: 'binary', path: cached };
  const go = findOnPath('go', config.baseEnv) ?? (config.baseEnv.GOROOT ? join(config.baseEnv.GOROOT, 'bin', 'go') : undefined);
  if (go === undefined || !isExecutableFile(go)) throw new PrerequisiteError(temporalMissingMessage(config.cacheDir));
  return { kind: 'go-install', go, target: cached };
}

export type KeycloakSource =
  | { kind: 'home'; home: string }
  | { kind: 'zip'; zip: string; home: string }
  | { kind: 'maven'; mvn: string; zip: string; home: string };

export function keycloakCacheDir(cacheDir: string): string {
  return join(cacheDir, 'keycloak');
}

export function keycloakZipPath(cacheDir: string): string {
  return join(keycloakCacheDir(cacheDir), `keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip`);
}

export function keycloakHomePath(cacheDir: string): string {
  return join(keycloakCacheDir(cacheDir), `keycloak-${KEYCLOAK_VERSION}`);
}

export function keycloakMissingMessage(cacheDir: string): string {
  return `Keycloak ${KEYCLOAK_VERSION} is not in ${keycloakCacheDir(cacheDir)} and mvn is not installed to fetch it: install Maven (e.g. apt-get install maven) or set KEYCLOAK_HOME to an unpacked Keycloak ${KEYCLOAK_VERSION}`;
}

/** KEYCLOAK_HOME, else the unpacked cache, else the cached zip, else a Maven fetch plan. */
export function locateKeycloak(config: StackConfig): KeycloakSource {
  const explicit = config.settings.keycloakHome;
  if (explicit !== undefined) {
    if (!existsSync(join(explicit, 'bin', 'kc.sh'))) throw new PrerequisiteError(`KEYCLOAK_HOME=${explicit} has no bin/kc.sh: point it at an unpacked Keycloak or unset it`);
    return { kind: 'home', home: explicit };
  }
  const home = keycloakHomePath(config.cacheDir);
  if (existsSync(join(home, 'bin', 'kc.sh'))) return { kind: 'home', home };
  const zip = keycloakZipPath(config.cacheDir);
  if (existsSync(zip)) return { kind: 'zip', zip, home };
  const mvn = findOnPath('mvn', config.baseEnv);
  if (mvn === undefined) throw new PrerequisiteError(keycloakMissingMessage(config.cacheDir));
  return { kind: 'maven', mvn, zip, home };
}

/** A way to unpack a zip: unzip, else the JDK's jar, else python3's zipfile. */
export type Unzipper = { command: string; args: (zip: string, dir: string) => string[]; cwdIsTarget: boolean };

export function findUnzipper(config: StackConfig, java: JavaInfo | undefined): Unzipper {
  const unzip = findOnPath('unzip', config.baseEnv);
  if (unzip) return { command: unzip, args: (zip, dir) => ['-q', zip, '-d', dir], cwdIsTarget: false };
  const jar = java?.home ? join(java.home, 'bin', 'jar') : findOnPath('jar', config.baseEnv);
  if (jar && isExecutableFile(jar)) return { command: jar, args: (zip) => ['xf', zip], cwdIsTarget: true };
  const python = findOnPath('python3', config.baseEnv);
  if (python) return { command: python, args: (zip, dir) => ['-m', 'zipfile', '-e', zip, dir], cwdIsTarget: false };
  throw new PrerequisiteError('no way to unpack the Keycloak zip: install unzip (apt-get install unzip) or a JDK with jar, or set KEYCLOAK_HOME');
}

/** The MailDev CLI script (its package's `bin`) from node_modules. */
export function findMaildev(config: StackConfig): string {
  const candidates = [join(__dirname, '..', 'node_modules', 'maildev'), join(config.repoRoot, 'node_modules', 'maildev')];
  for (const dir of candidates) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: string | Record<string, string> };
    const script = typeof bin === 'string' ? bin : bin?.maildev;
    if (script !== undefined && existsSync(join(dir, script))) return join(dir, script);
  }
  throw new PrerequisiteError('MailDev is not installed (node_modules/maildev is missing): run npm install');
}

/** The entry point of a service, which must exist. */
export function assertFileExists(path: string, what: string): void {
  if (!existsSync(path)) throw new PrerequisiteError(`${what} is missing (${path}): the service has not been written yet or the checkout is incomplete`);
}
