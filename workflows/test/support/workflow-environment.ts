import type { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { testTemporalCli } from '@gef/deploy';

/** A search attribute key, as `defineSearchAttributeKey` makes them. */
type SearchAttributeKey = ReturnType<typeof defineSearchAttributeKey>;

const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** The workflows bundled as a worker bundles them, the bundler kept quiet. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: require.resolve('../../src/index.ts'), logger: quiet });
}

/**
 * A Temporal test server of the machine's CLI (never a download) with the search attributes
 * given, and the workflows bundled, for a test file. The worker's log is kept to errors:
 * failing activities are the point of many tests.
 */
export async function startWorkflowEnvironment(
  searchAttributes: SearchAttributeKey[] = [],
): Promise<{ env: TestWorkflowEnvironment; bundle: WorkflowBundleWithSourceMap }> {
  Runtime.install({ logger: new DefaultLogger('ERROR', () => undefined) });
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: testTemporalCli() }, searchAttributes } });
  return { env, bundle: await bundleWorkflows() };
}
