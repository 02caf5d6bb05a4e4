import { limitLine } from '../src/activities/limit-lines';

const limits = { memoryBytes: 300 * 1024 ** 2, cpuSeconds: 8, processes: 256, openFiles: 1024, fileBytes: 128 * 1024 ** 2 };
const base = { limits, oomKills: 0, maxDiskBytes: 512 * 1024 ** 2 };

describe('limitLine', () => {
  it('names the limit a run went past, in words', () => {
    expect(limitLine({ ...base, outcome: { kind: 'failed', message: 'MemoryError' } })).toMatch(/^Memory limit exceeded: .*300 MiB/);
    expect(limitLine({ ...base, oomKills: 2, outcome: { kind: 'exited', code: null, signal: 'SIGKILL' } })).toMatch(/^Memory limit exceeded: .*together; the kernel killed 2 of them/);
    expect(limitLine({ ...base, outcome: { kind: 'exited', code: null, signal: 'SIGXCPU' } })).toMatch(/^CPU time limit exceeded: .*8 s/);
    expect(limitLine({ ...base, outcome: { kind: 'failed', message: 'OSError: [Errno 27] File too large' } })).toMatch(/^File size limit exceeded: .*128 MiB/);
    expect(limitLine({ ...base, outcome: { kind: 'exited', code: null, signal: 'SIGXFSZ' } })).toMatch(/^File size limit exceeded/);
    expect(limitLine({ ...base, outcome: { kind: 'failed', message: 'BlockingIOError: [Errno 11] Resource temporarily unavailable' } })).toMatch(/^Too many processes: .*256/);
    expect(limitLine({ ...base, outcome: { kind: 'failed', message: "RuntimeError: can't start new thread" } })).toMatch(/^Too many processes/);
    expect(limitLine({ ...base, diskBytes: 600 * 1024 ** 2, outcome: { kind: 'stopped', reason: 'disk quota', killed: false } })).toMatch(/^Disk quota exceeded: .*600 MiB.*512 MiB/);
    expect(limitLine({ ...base, diskBytes: 0, maxDiskEntries: 200_000, outcome: { kind: 'stopped', reason: 'disk quota', killed: false } })).toBe(
      'Disk quota exceeded: the script made more than 200,000 files and directories; the script was stopped',
    );
    expect(limitLine({ ...base, cpuSeconds: 12.34, outcome: { kind: 'stopped', reason: 'cpu limit', killed: false } })).toMatch(
      /^CPU time limit exceeded: the script's processes used 12\.3 s of CPU time together, more than its limit of \d+ s/,
    );
  });

  it('says nothing when no limit ended the run', () => {
    expect(limitLine({ ...base, outcome: { kind: 'failed', message: 'ValueError: boom' } })).toBeUndefined();
    expect(limitLine({ ...base, outcome: { kind: 'exited', code: 3, signal: null } })).toBeUndefined();
    expect(limitLine({ ...base, outcome: { kind: 'result', resultJson: '"OK"' } })).toBeUndefined();
    expect(limitLine({ ...base, outcome: { kind: 'timeout', killed: true } })).toBeUndefined();
  });
});
