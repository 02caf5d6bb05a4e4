import type { Actor } from './actor';

/** A script as running it needs (from the script service's GetScriptForRun). */
export interface ScriptForRun {
  scriptId: string;
  slug: string;
  /** The script's name (for the owner's e-mail when the run ends). */
  name?: string;
  scriptUserId: string;
  version: number;
  /** SUCCESS when the current version is built. */
  status: string;
  digest: string;
  size: number;
  runtime: string;
  environmentHash: string;
  requirements: string;
  cpuLimit: number;
  memoryLimit: number;
  timeout: number;
  paramsSchema?: Record<string, unknown>;
}

/** The script service, as the run path sees it. */
export interface ScriptCatalog {
  /** The current version of a script the actor may see; NotFound otherwise. */
  scriptForRun(actor: Actor, idOrSlug: string): Promise<ScriptForRun>;
}
