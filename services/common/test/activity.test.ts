import { CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { stillWanted } from '../src/activity';

const environment = () => new MockActivityEnvironment({ attempt: 1 }, { logger: new DefaultLogger('ERROR') });

describe('stillWanted', () => {
  it('heartbeats at each step while the attempt is wanted', async () => {
    const env = environment();
    let beats = 0;
    env.on('heartbeat', () => beats++);
    await env.run(async () => {
      for (let step = 0; step < 3; step++) stillWanted();
    });
    expect(beats).toBe(3);
  });

  it('stops the work at the first step after Temporal cancels the attempt', async () => {
    const env = environment();
    let steps = 0;
    const work = env.run(async () => {
      for (;;) {
        stillWanted();
        steps++;
        if (steps === 2) env.cancel('TIMED_OUT');
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    await expect(work).rejects.toBeInstanceOf(CancelledFailure);
    expect(steps).toBe(2);
  });
});
