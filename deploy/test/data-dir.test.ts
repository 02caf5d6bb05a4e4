import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRIVATE_DATA_DIRS, securePrivateData } from '../src/data-dir';

const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('securePrivateData', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'gef-data-dir-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('makes a data directory of an older start private, except what other users must reach', () => {
    const made = (path: string, mode: number, content?: string) => {
      if (content === undefined) mkdirSync(path, { recursive: true });
      else writeFileSync(path, content);
      chmodSync(path, mode);
    };
    made(join(dataDir, 'logs'), 0o755);
    made(join(dataDir, 'logs', 'user.log'), 0o644, 'KEYCLOAK_CLIENT_SECRET=…\n');
    made(join(dataDir, 'temporal'), 0o755);
    made(join(dataDir, 'temporal', 'temporal.db'), 0o644, 'sqlite');
    made(join(dataDir, 'stack.json'), 0o644, '{}');
    made(join(dataDir, 'artifacts'), 0o755);
    made(join(dataDir, 'postgres'), 0o700);
    made(join(dataDir, 'runner'), 0o711);
    made(join(dataDir, 'runner', 'environments'), 0o755);

    securePrivateData({ dataDir, logDir: join(dataDir, 'logs') });

    expect(modeOf(join(dataDir, 'logs'))).toBe(0o700);
    expect(modeOf(join(dataDir, 'logs', 'user.log'))).toBe(0o600);
    expect(modeOf(join(dataDir, 'temporal'))).toBe(0o700);
    expect(modeOf(join(dataDir, 'stack.json'))).toBe(0o600);
    expect(modeOf(join(dataDir, 'artifacts'))).toBe(0o700);
    // PostgreSQL and the runner keep theirs: their users must reach them.
    expect(modeOf(join(dataDir, 'postgres'))).toBe(0o700);
    expect(modeOf(join(dataDir, 'runner'))).toBe(0o711);
    expect(modeOf(join(dataDir, 'runner', 'environments'))).toBe(0o755);
  });

  it('creates the directories the parts write into as private ones, and a log dir elsewhere too', () => {
    const logDir = join(dataDir, 'elsewhere', 'logs');
    securePrivateData({ dataDir, logDir });
    for (const name of PRIVATE_DATA_DIRS) expect(modeOf(join(dataDir, name))).toBe(0o700);
    expect(modeOf(logDir)).toBe(0o700);
  });
});
