import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { exportedWorkflowNames, historiesDir, historyFiles } from './replay/histories';
import { bundleWorkflows } from './support/workflow-environment';

/**
 * Workflows in flight during a deploy resume on the new code by replaying their history:
 * a change that alters a workflow's commands without `patched()` fails their workflow task
 * for ever. Every history in `replay/histories/` (recorded by `npm run record-histories`
 * from the code of its day, old ones kept) must replay on the current bundle. Offline: no
 * Temporal server.
 */
describe('workflow histories replay on the current code', () => {
  const files = historyFiles();
  let workflowBundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    // A nondeterministic history is reported by the test, not in the worker's log.
    Runtime.install({ logger: new DefaultLogger('ERROR', () => undefined) });
    workflowBundle = await bundleWorkflows();
  }, 120_000);

  /** The core's own words (`[TMPRL1100] Nondeterminism error: …`) when it gave them. */
  function briefly(message: string): string {
    return /\[TMPRL\d+\][^"]*/.exec(message)?.[0] ?? message;
  }

  /** The workflow type a history ran (its first event). */
  function workflowTypeOf(file: string): string | undefined {
    const json = JSON.parse(fs.readFileSync(path.join(historiesDir, file), 'utf8'));
    return json?.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  }

  it('has histories named <workflow>-<case>-<tag>.json of every exported workflow', () => {
    expect(files.length).toBeGreaterThan(0);
    const types = new Map(files.map((file) => [file, workflowTypeOf(file)]));
    for (const [file, type] of types) {
      expect({ file, startsWithItsWorkflow: type !== undefined && file.startsWith(`${type}-`) }).toEqual({ file, startsWithItsWorkflow: true });
    }
    // The workflows are found as the exported async functions: make sure that still finds them.
    expect(exportedWorkflowNames()).toEqual(expect.arrayContaining(['buildScript', 'deleteUser', 'runExecution', 'sendPasswordLink']));
    const recorded = new Set(types.values());
    expect(exportedWorkflowNames().filter((name) => !recorded.has(name))).toEqual([]);
  });

  it('replays every stored history without nondeterminism', async () => {
    const failures: string[] = [];
    const histories = files.map((file) => ({
      // The workflow id is only a label here: the file, so a failure names it.
      workflowId: file,
      history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(historiesDir, file), 'utf8'))),
    }));
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${briefly(result.error.message)}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  }, 60_000);
});
