/**
 * Who may call the service (its real server, h2c on port 0, over a real PostgreSQL): the
 * requests say who their caller is, so only the platform's parts may send any. The
 * platform's key reaches every RPC, a runner's key only the runners' RPCs, no key or
 * another key nothing; health answers anyone.
 */
import { randomUUID } from 'node:crypto';
import { Code } from '@connectrpc/connect';
import { serviceClient } from '@gef/common';
import { execution, health } from '@gef/protos';
import { startRealServer, testKeys, type RealServer } from './support/real-server';
import { caller, failure, type ServiceFixture } from './support/service-fixture';

describe('service keys', () => {
  let real: RealServer;
  let f: ServiceFixture;
  let executionId: string;
  let userId: string;
  const clientWith = (serviceKey?: string) => serviceClient(execution.ExecutionService, real.url, serviceKey ? { serviceKey } : {});

  beforeAll(async () => {
    real = await startRealServer('gef_execution_service_keys_test');
    f = real.f;
    userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    executionId = (await real.rpc.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!.id;
  }, 120_000);

  afterAll(() => real?.stop(), 60_000);

  it("the platform's key reaches every RPC", async () => {
    const got = await real.rpc.getExecution({ id: executionId, caller: caller(userId) });
    expect(got.execution?.id).toBe(executionId);
  });

  it.each([
    ['no key', undefined],
    ['a wrong key', 'not-the-key-0123456789'],
    ['a key that only starts like it', `${testKeys.service}x`],
  ])('%s: refused, whatever the request says of its caller (Unavailable: a part set up wrong, not a client to log out)', async (_, key) => {
    const superadmin = caller(randomUUID(), 'SUPERADMIN');
    const read = await failure(clientWith(key).getExecution({ id: executionId, caller: superadmin }));
    expect(read.code).toBe(Code.Unavailable);
    // Nor the runners' RPCs, which hand out a run's tokens.
    const attempt = await failure(clientWith(key).startExecutionAttempt({ executionId, attempt: 1, runner: 'intruder' }));
    expect(attempt.code).toBe(Code.Unavailable);
  });

  it("a runner's key reaches the runners' RPCs only", async () => {
    const runner = clientWith(testKeys.runner);
    const report = await runner.reportRunner({ instance: randomUUID(), runner: 'runner-test', slots: 4, busy: 0, stopping: false });
    expect(report.everySeconds).toBeGreaterThan(0);
    const read = await failure(runner.getExecution({ id: executionId, caller: caller(randomUUID(), 'SUPERADMIN') }));
    expect({ code: read.code, message: read.rawMessage }).toEqual({
      code: Code.PermissionDenied,
      message: "gef.execution.v1.ExecutionService/GetExecution is not a runner's to call",
    });
    const run = await failure(runner.runScript({ caller: caller(userId), idOrSlug: randomUUID(), params: {} }));
    expect(run.code).toBe(Code.PermissionDenied);
  });

  it('health answers without a key', async () => {
    const res = await serviceClient(health.HealthService, real.url).check({});
    expect(res.service).toBe('execution');
  });
});
