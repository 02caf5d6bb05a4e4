/**
 * Script archives for end-to-end tests, built in memory: a small ustar writer (any member,
 * including hostile ones), gzip, the Trends.Earth CLI layout, and the REST calls that
 * upload, poll and download them.
 */
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { api, apiUrl, type ApiResponse } from './api';

/** One tar member; anything may be set, hostile values included. */
export interface Member {
  name: string;
  data?: Buffer | string;
  /** Type flag: '0' file (default), '1' hard link, '2' symlink, '3' character device, '5' directory. */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  linkName?: string;
  mode?: number;
  /** The size written in the header, when it should differ from the data's. */
  size?: number;
}

const octalField = (value: number, width: number): string => `${value.toString(8).padStart(width - 1, '0')}\0`;

/** A 512-byte ustar header. */
export function tarHeader(member: Member, size = member.size ?? Buffer.byteLength(member.data ?? '')): Buffer {
  const h = Buffer.alloc(512);
  h.write(member.name, 0, 100, 'utf8');
  h.write(octalField(member.mode ?? (member.type === '5' ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octalField(0, 8), 108, 'ascii');
  h.write(octalField(0, 8), 116, 'ascii');
  h.write(octalField(size, 12), 124, 'ascii');
  h.write(octalField(Math.floor(Date.now() / 1000), 12), 136, 'ascii');
  h.write(member.type ?? '0', 156, 'ascii');
  h.write(member.linkName ?? '', 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  // The checksum counts its own field as spaces.
  h.fill(' ', 148, 156);
  const sum = h.reduce((acc, byte) => acc + byte, 0);
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** A tar stream: each member's header, data and padding, then two zero blocks. */
export function tar(members: Member[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const data = Buffer.from(member.data ?? '');
    blocks.push(tarHeader(member, member.size ?? data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export const targz = (members: Member[]): Buffer => gzipSync(tar(members));

/** The members of a script as the Trends.Earth CLI packs it. */
export function cliMembers(name: string, options: { requirements?: string; main?: string; config?: Record<string, unknown> } = {}): Member[] {
  return [
    { name: 'configuration.json', data: JSON.stringify({ name, ...options.config }) },
    { name: 'requirements.txt', data: options.requirements ?? '' },
    { name: 'src/', type: '5' },
    { name: 'src/__init__.py', data: '' },
    { name: 'src/main.py', data: options.main ?? 'def run(params, logger):\n    return "OK"\n' },
  ];
}

export const cliArchive = (name: string, options: Parameters<typeof cliMembers>[1] = {}): Buffer => targz(cliMembers(name, options));

/** The slug the platform makes from a name. */
export const slugOf = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80)
    .replace(/-+$/, '');

/** POST (or PATCH, for a new version) the archive as the multipart part `file`, as the CLI does. */
export async function upload(token: string | undefined, archive: Buffer, fileName: string, target?: string): Promise<ApiResponse> {
  const form = new FormData();
  form.append('file', new Blob([archive], { type: 'application/gzip' }), fileName);
  const res = await fetch(`${apiUrl()}/api/v1/script${target ? `/${encodeURIComponent(target)}` : ''}`, {
    method: target ? 'PATCH' : 'POST',
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    body: form,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** Polls a script until its status is one of `statuses`; returns it and how long that took. */
export async function waitForStatus(
  token: string,
  id: string,
  statuses: readonly string[] = ['SUCCESS', 'FAIL'],
  timeoutMs = 120_000,
): Promise<{ script: any; ms: number }> {
  const began = Date.now();
  for (;;) {
    const res = await api('GET', `/api/v1/script/${id}`, { token });
    if (res.status !== 200) throw new Error(`GET script ${id}: ${res.status} ${res.text}`);
    if (statuses.includes(res.body.data.status)) return { script: res.body.data, ms: Date.now() - began };
    if (Date.now() - began > timeoutMs) throw new Error(`script ${id} still ${res.body.data.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The build log lines of a script. */
export async function buildLog(token: string, id: string, query = ''): Promise<{ id: number; text: string; register_date: string; script_id: string }[]> {
  const res = await api('GET', `/api/v1/script/${id}/log${query}`, { token });
  if (res.status !== 200) throw new Error(`GET log ${id}: ${res.status} ${res.text}`);
  return res.body.data;
}

/** A raw GET (no automatic decompression), to see exactly the bytes and headers sent. */
export function rawGet(path: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const url = new URL(`${apiUrl()}${path}`);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname + url.search, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
