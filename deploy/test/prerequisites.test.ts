import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../src/config';
import { PrerequisiteError } from '../src/errors';
import {
  findJava,
  javaMissingMessage,
  javaTooOldMessage,
  keycloakMissingMessage,
  locateKeycloak,
  locateTemporal,
  parseJavaMajor,
  temporalMissingMessage,
} from '../src/prerequisites';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gef-prereq-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function executable(path: string, body = '#!/bin/sh\nexit 0\n'): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, body);
  chmodSync(path, 0o755);
  return path;
}

function oneLineError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PrerequisiteError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a PrerequisiteError');
}

describe('Java', () => {
  test('parseJavaMajor reads both version styles', () => {
    expect(parseJavaMajor('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment')).toBe(17);
    expect(parseJavaMajor('openjdk version "25" 2025-09-16')).toBe(25);
    expect(parseJavaMajor('java version "1.8.0_292"')).toBe(8);
    expect(parseJavaMajor('no java here')).toBeUndefined();
  });

  test('no java at all, and a too old one, are one line saying what to install', () => {
    expect(oneLineError(() => findJava(resolveConfig({ processEnv: { PATH: dir } })))).toBe(javaMissingMessage());
    const oldJava = executable(join(dir, 'old', 'bin', 'java'), '#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n');
    expect(oneLineError(() => findJava(resolveConfig({ processEnv: { PATH: join(dir, 'old', 'bin') } })))).toBe(javaTooOldMessage(oldJava, 11));
    expect(javaTooOldMessage(oldJava, 11)).toMatch(/needs Java 17 or newer but .* is Java 11: install OpenJDK 17\+/);
  });

  test('JAVA_HOME wins over PATH and must hold bin/java', () => {
    const newJava = join(dir, 'jdk', 'bin', 'java');
    executable(newJava, '#!/bin/sh\necho \'openjdk version "21.0.1" 2023-10-17\' >&2\n');
    expect(findJava(resolveConfig({ processEnv: { JAVA_HOME: join(dir, 'jdk'), PATH: '' } }))).toEqual({ command: newJava, home: join(dir, 'jdk'), major: 21 });
    expect(oneLineError(() => findJava(resolveConfig({ processEnv: { JAVA_HOME: join(dir, 'nope') } })))).toMatch(/^JAVA_HOME=.*nope has no bin\/java/);
  });
});

describe('Temporal CLI', () => {
  test('TEMPORAL_CLI first, then PATH, then the cache', () => {
    const explicit = executable(join(dir, 'explicit', 'temporal'));
    const onPath = executable(join(dir, 'path', 'temporal'));
    const cached = executable(join(dir, 'cache', 'temporal-1.5.1', 'temporal'));
    const cacheDir = join(dir, 'cache');
    expect(locateTemporal(resolveConfig({ cacheDir, processEnv: { TEMPORAL_CLI: explicit, PATH: join(dir, 'path') } }))).toEqual({ kind: 'binary', path: explicit });
    expect(locateTemporal(resolveConfig({ cacheDir, processEnv: { PATH: join(dir, 'path') } }))).toEqual({ kind: 'binary', path: onPath });
    expect(locateTemporal(resolveConfig({ cacheDir, processEnv: { PATH: '' } }))).toEqual({ kind: 'binary', path: cached });
  });

  test('nothing cached but Go: a go install plan into the cache', () => {
    const go = executable(join(dir, 'go', 'bin', 'go'));
    const cacheDir = join(dir, 'empty-cache');
    expect(locateTemporal(resolveConfig({ cacheDir, processEnv: { PATH: join(dir, 'go', 'bin') } }))).toEqual({
      kind: 'go-install',
      go,
      target: join(cacheDir, 'temporal-1.5.1', 'temporal'),
    });
  });

  test('no binary and no Go is one line', () => {
    const cacheDir = join(dir, 'empty-cache');
    expect(oneLineError(() => locateTemporal(resolveConfig({ cacheDir, processEnv: { PATH: '' } })))).toBe(temporalMissingMessage(cacheDir));
    expect(temporalMissingMessage(cacheDir)).toMatch(/install Go .* or set TEMPORAL_CLI/);
    expect(oneLineError(() => locateTemporal(resolveConfig({ cacheDir, processEnv: { TEMPORAL_CLI: join(dir, 'missing') } })))).toMatch(/^TEMPORAL_CLI=.* is not an executable file/);
  });
});

describe('Keycloak', () => {
  test('KEYCLOAK_HOME, then the unpacked cache, then the zip, then Maven', () => {
    const cacheDir = join(dir, 'cache');
    const home = join(dir, 'kc');
    executable(join(home, 'bin', 'kc.sh'));
    expect(locateKeycloak(resolveConfig({ cacheDir, processEnv: { KEYCLOAK_HOME: home } }))).toEqual({ kind: 'home', home });
    const mvn = executable(join(dir, 'mvn-bin', 'mvn'));
    const cachedHome = join(cacheDir, 'keycloak', 'keycloak-26.5.6');
    const zip = join(cacheDir, 'keycloak', 'keycloak-quarkus-dist-26.5.6.zip');
    expect(locateKeycloak(resolveConfig({ cacheDir, processEnv: { PATH: join(dir, 'mvn-bin') } }))).toEqual({ kind: 'maven', mvn, zip, home: cachedHome });
    mkdirSync(join(cacheDir, 'keycloak'), { recursive: true });
    writeFileSync(zip, 'zip');
    expect(locateKeycloak(resolveConfig({ cacheDir, processEnv: { PATH: '' } }))).toEqual({ kind: 'zip', zip, home: cachedHome });
    executable(join(cachedHome, 'bin', 'kc.sh'));
    expect(locateKeycloak(resolveConfig({ cacheDir, processEnv: { PATH: '' } }))).toEqual({ kind: 'home', home: cachedHome });
  });

  test('not cached and no mvn is one line; a wrong KEYCLOAK_HOME too', () => {
    const cacheDir = join(dir, 'cache');
    expect(oneLineError(() => locateKeycloak(resolveConfig({ cacheDir, processEnv: { PATH: '' } })))).toBe(keycloakMissingMessage(cacheDir));
    expect(keycloakMissingMessage(cacheDir)).toMatch(/mvn is not installed to fetch it: install Maven .* or set KEYCLOAK_HOME/);
    expect(oneLineError(() => locateKeycloak(resolveConfig({ cacheDir, processEnv: { KEYCLOAK_HOME: dir } })))).toMatch(/has no bin\/kc.sh/);
  });
});
