import { createLogger } from '@gef/common';
import { TokenLifetime } from '../src/revocations/token-lifetime';

const logger = createLogger('user-test', 'silent');

describe('TokenLifetime', () => {
  it('learns a longer lifespan only once the revocations in force are kept that long: a failed extension is tried again', async () => {
    const extended: number[] = [];
    let failNext = true;
    const lifetime = new TokenLifetime({
      configuredSeconds: 3600,
      keycloak: { longestAccessTokenLifespan: async () => 7200 },
      onLonger: async (seconds) => {
        if (failNext) {
          failNext = false;
          throw new Error('the database is away');
        }
        extended.push(seconds);
      },
      logger,
    });
    await expect(lifetime.refresh()).rejects.toThrow('the database is away');
    expect(lifetime.seconds()).toBe(3600);
    await lifetime.refresh();
    expect(lifetime.seconds()).toBe(7200);
    expect(extended).toEqual([7200]);
    // Nothing longer: nothing more to do.
    await lifetime.refresh();
    expect(extended).toEqual([7200]);
  });
});
