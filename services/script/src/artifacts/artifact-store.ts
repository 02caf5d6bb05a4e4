import type { Readable } from 'node:stream';

/** An archive's address: its SHA-256 (lower-case hex) and size. */
export interface ArtifactRef {
  digest: string;
  size: number;
}

/**
 * Bytes received and hashed but not yet visible under their digest. `commit` makes them
 * visible (atomically); `discard` removes them. One of the two must be called.
 */
export interface StagedArtifact extends ArtifactRef {
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/**
 * Content-addressed storage of uploaded archives. The local filesystem now; an
 * S3-compatible store later, behind the same interface.
 */
export interface ArtifactStore {
  /** Receives bytes without publishing them. Nothing is left behind when it fails. */
  stage(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream): Promise<StagedArtifact>;
  /** Stores bytes under their digest (stage + commit). */
  put(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream): Promise<ArtifactRef>;
  /** The bytes of a digest; NotFound when absent. */
  get(digest: string): Promise<Readable>;
  has(digest: string): Promise<boolean>;
  /** Removes a digest's bytes; false when there were none. */
  delete(digest: string): Promise<boolean>;
}

export const digestPattern = /^[0-9a-f]{64}$/;
