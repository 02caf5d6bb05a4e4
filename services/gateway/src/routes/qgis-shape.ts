import type { Response } from 'express';
import type { RawJson } from '../raw-json';

/**
 * The Trends.Earth QGIS plugin loads executions and scripts with marshmallow schemas
 * (te_schemas' `Job` and `RemoteScript`) that refuse any key they do not know and any status
 * outside their enums: one key the contract adds (`updated_at`, `attempt`, a script's
 * `version`, …) and the plugin drops the job, or fails after a run that was accepted.
 * Requests from the plugin get what those schemas load: the keys of the API it was written
 * against, the contract's statuses folded into its own. Every other client gets the
 * contract's representation. docs/clients.md has the details.
 */

/** `X-TE-Client: type=qgis_plugin; version=…` (the plugin's own header), or `qgis_plugin/2.2.4 (…)`. */
const pluginHeader = /(?:^|[;\s])type\s*=\s*qgis_plugin\b|^\s*qgis_plugin\//i;
/** QGIS's network stack ends every User-Agent with `QGIS/<version>/<os>`. */
const qgisAgent = /(?:^|[\s(])QGIS\/\d/;

/**
 * Whether a request comes from the QGIS plugin. The answer depends on it: `Vary` says so,
 * for a cache between client and gateway.
 */
export function fromQgisPlugin(res: Response): boolean {
  res.vary('User-Agent');
  res.vary('X-TE-Client');
  const headers = res.req.headers;
  const client = headers['x-te-client'];
  if (typeof client === 'string' && pluginHeader.test(client)) return true;
  const agent = headers['user-agent'];
  return typeof agent === 'string' && qgisAgent.test(agent);
}

type Json = Record<string, unknown>;

const executionKeys = ['id', 'script_id', 'user_id', 'start_date', 'end_date', 'status', 'progress', 'params', 'results', 'logs', 'user'] as const;
const scriptKeys = ['id', 'name', 'slug', 'description', 'created_at', 'updated_at', 'user_id', 'status', 'public', 'logs', 'user'] as const;

/** The plugin's job statuses have no CANCELLING: the run is still running until it is CANCELLED. */
const executionStatuses: Readonly<Record<string, string>> = { CANCELLING: 'RUNNING' };
/** The plugin's script statuses are SUCCESS, FAIL and BUILDING: a script waiting for its build is building. */
const scriptStatuses: Readonly<Record<string, string>> = { PENDING: 'BUILDING' };

function pick(from: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const key of keys) if (key in from) out[key] = from[key];
  return out;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * An execution (as the contract shows it) as the plugin's `Job` schema loads it; `raw`, the
 * answer's JSON held as text, if its params and results are (`RawJson`).
 */
export function qgisExecution(json: object | null, raw?: Pick<RawJson, 'holdsObject'>): Json | null {
  if (!isObject(json)) return null;
  const out = pick(json, executionKeys);
  const status = out['status'];
  if (typeof status === 'string') out['status'] = executionStatuses[status] ?? status;
  // The plugin's results field loads an object only (it reads `type`): no results yet, or
  // results a runtime sent as another JSON type (a list, a number), show as an empty
  // object, else the plugin would drop the job. They stay readable in download-results.
  if ('results' in out && !isObject(out['results']) && !raw?.holdsObject(out['results'])) out['results'] = {};
  if ('script' in json) out['script'] = qgisScript(json['script'] as object | null);
  return out;
}

/** A script (as the contract shows it) as the plugin's `RemoteScript` schema loads it. */
export function qgisScript(json: object | null): Json | null {
  if (!isObject(json)) return null;
  const out = pick(json, scriptKeys);
  const status = out['status'];
  if (typeof status === 'string') out['status'] = scriptStatuses[status] ?? status;
  const cpu = json['cpu_limit'];
  out['cpu_reservation'] = null;
  // Whole numbers only (the schema's field is an integer); a fraction of a CPU is left out.
  out['cpu_limit'] = typeof cpu === 'number' && Number.isInteger(cpu) ? cpu : null;
  out['memory_reservation'] = null;
  out['memory_limit'] = json['memory_limit'] ?? null;
  if (Array.isArray(json['executions'])) out['executions'] = (json['executions'] as object[]).map((e) => qgisExecution(e));
  return out;
}

/** An execution as the caller's client reads it (`raw`: as for qgisExecution). */
export function executionFor(res: Response, json: object | null, raw?: Pick<RawJson, 'holdsObject'>): object | null {
  return fromQgisPlugin(res) ? qgisExecution(json, raw) : json;
}

/** A script as the caller's client reads it. */
export function scriptFor(res: Response, json: object | null): object | null {
  return fromQgisPlugin(res) ? qgisScript(json) : json;
}
