/** Bounds on what an uploaded archive may be and cost to check. */
export interface ArchiveLimits {
  /** Compressed bytes (the upload limit). */
  maxCompressedBytes: number;
  /** Bytes after gunzip (the tar stream). */
  maxInflatedBytes: number;
  /** Members, directories and links included. */
  maxMembers: number;
  /** Wall time for the whole check. */
  timeoutMs: number;
  /** `configuration.json` is read into memory up to this size. */
  maxConfigurationBytes: number;
  /** `requirements.txt` is read into memory up to this size. */
  maxRequirementsBytes: number;
}

export const defaultArchiveLimits: ArchiveLimits = {
  maxCompressedBytes: 50 * 1024 * 1024,
  maxInflatedBytes: 500 * 1024 * 1024,
  maxMembers: 10_000,
  timeoutMs: 60_000,
  maxConfigurationBytes: 1024 * 1024,
  maxRequirementsBytes: 64 * 1024,
};

/** `52428800` → `50 MB`. */
export function formatBytes(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  if (mb >= 1) return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
  const kb = bytes / 1024;
  if (kb >= 1) return `${Number.isInteger(kb) ? kb : kb.toFixed(1)} KB`;
  return `${bytes} bytes`;
}
