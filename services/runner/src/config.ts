import path from 'node:path';
import { z } from 'zod';
import { baseConfigShape, parseConfig, port } from '@gef/common';

export const configShape = {
  ...baseConfigShape,
  METRICS_PORT: port(9104),
  SCRIPT_SERVICE_URL: z.string().url().default('http://127.0.0.1:50052'),
  EXECUTION_SERVICE_URL: z.string().url().default('http://127.0.0.1:50053'),
  GEF_DATA_DIR: z.string().min(1).default(path.resolve(__dirname, '../../../.data')),
  PYTHON: z.string().min(1).default('python3'),
  RUNNER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  PIP_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(900),
};

/**
 * Variables passed on to venv and pip: what finds the interpreter (PATH, pyenv), the
 * locale, temporary directory, proxies and pip's own settings. Nothing else of the
 * runner's environment reaches them.
 */
const toolVariables = /^(PATH|HOME|LANG|LC_[A-Z]+|TMPDIR|PYENV_[A-Z_]+|PIP_[A-Z_]+|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE)$/;

export type RunnerConfig = ReturnType<typeof loadConfig>;

/**
 * The runner's configuration. It holds no database credentials: it reaches the platform
 * only through Temporal and the services' RPCs.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  const config = parseConfig(configShape, env);
  const toolEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && toolVariables.test(key)) toolEnv[key] = value;
  }
  toolEnv['PIP_DISABLE_PIP_VERSION_CHECK'] = '1';
  toolEnv['PIP_NO_INPUT'] = '1';
  return { ...config, toolEnv };
}
