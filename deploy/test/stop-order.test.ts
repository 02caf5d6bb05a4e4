import { ALL_PARTS } from '../src/parts';
import { START_GROUPS, STOP_GROUPS } from '../src/stack';

describe('STOP_GROUPS', () => {
  const position = (part: string) => STOP_GROUPS.findIndex((group) => group.includes(part as never));

  test('names every part once', () => {
    expect(STOP_GROUPS.flat().sort()).toEqual([...ALL_PARTS].sort());
  });

  test('stops the runner first: the runs it drains still reach the API and the services', () => {
    expect(STOP_GROUPS[0]).toEqual(['runner']);
  });

  test('stops every other part before those it needed to start', () => {
    for (const [i, group] of START_GROUPS.entries()) {
      for (const earlier of START_GROUPS.slice(0, i).flat().filter((p) => p !== 'runner')) {
        for (const part of group) expect([part, earlier, position(part) < position(earlier)]).toEqual([part, earlier, true]);
      }
    }
  });
});
