import type { Timestamp } from '@bufbuild/protobuf/wkt';

/** A Timestamp as ISO 8601 text in UTC with microseconds (PostgreSQL's precision). */
export function timestampToIso(ts: Timestamp): string {
  const seconds = Number(ts.seconds);
  const micros = Math.floor(ts.nanos / 1000);
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  return `${base}.${String(micros).padStart(6, '0')}Z`;
}
