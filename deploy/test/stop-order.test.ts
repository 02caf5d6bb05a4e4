import { ALL_PARTS } from '../src/parts';
import { START_GROUPS, STOP_GROUPS } from '../src/stack';

describe('STOP_GROUPS', () => {
  const position = (part: string) => STOP_GROUPS.findIndex((group) => group.includes(part as never));

  test('names every part once', () => {
    expect(STOP_GROUPS.flat().sort()).toEqual([...ALL_PARTS].sort());
  });

  test('stops each part before those it needed to start', () => {
    for (const [i, group] of START_GROUPS.entries()) {
      for (const earlier of START_GROUPS.slice(0, i).flat()) {
        for (const part of group) expect([part, position(part) < position(earlier)]).toEqual([part, true]);
      }
    }
  });

  test('stops the runner before the services that record the runs it drains', () => {
    for (const service of ['user', 'script', 'execution']) expect(position('runner')).toBeLessThan(position(service));
  });
});
