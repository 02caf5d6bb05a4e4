import { createHash } from 'node:crypto';

/** The key of an environment: sha256 of the runtime and its normalised requirements. */
export function environmentHash(runtime: string, normalisedRequirements: string[]): string {
  const text = [`runtime ${runtime}`, ...normalisedRequirements].join('\n');
  return createHash('sha256').update(`${text}\n`).digest('hex');
}
