import { Fixture, isRoot } from './support/run-script-fixture';

const configuration = JSON.stringify({ name: 'log channel test' });

/** The numbers of the `line <n>` lines, in the order they arrived. */
const numbered = (lines: { text: string }[]) => lines.flatMap((l) => (/^line (\d+)$/.exec(l.text) ? [Number(/^line (\d+)$/.exec(l.text)![1])] : []));
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

// The shim's log channel with the real python3: lines are buffered in the script's process
// and written in groups, so each way a process can end must still deliver every line once.
describe('the Python shim log channel', () => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off').init();
  });
  afterAll(() => fixture.cleanup());

  const run = (main: string, options: Parameters<Fixture['run']>[1] = {}) => fixture.run({ 'configuration.json': configuration, 'src/main.py': main }, options);

  it('delivers 20,000 lines of a run once and in order, with its result after them', async () => {
    const r = await run('def run(params, logger):\n    for i in range(20000):\n        logger.info("line %d", i)\n    return "OK"\n');
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '"OK"' });
    expect(numbered(r.lines)).toEqual(upTo(20000));
    expect(r.lines.every((l) => l.level === 'INFO')).toBe(true);
  }, 60_000);

  it('survives whatever a script writes to the channel itself, and reads on', async () => {
    const main = [
      'import os',
      'def run(params, logger):',
      '    logger.info("line 0")',
      '    os.write(3, b"null\\n")',
      '    os.write(3, b"[1, 2]\\n")',
      '    os.write(3, b\'{"t":"log","m":{"toString":1,"valueOf":1}}\\n\')',
      '    os.write(3, b\'{"t":"progress","v":"50"}\\n\')',
      '    os.write(3, b\'{"t":"result","v":\' + b"[" * 200000 + b"]" * 200000 + b"}\\n")',
      '    logger.info("line 1")',
      '    return "OK"',
    ].join('\n');
    const r = await run(main);
    // The forged result came first: too deep to store, it fails the run instead of the runner.
    expect(r.outcome).toEqual({ kind: 'failed', message: "the script's result is nested deeper than 32 levels" });
    expect(numbered(r.lines)).toEqual([0, 1]);
    expect(r.lines).toEqual(
      expect.arrayContaining([
        { level: 'WARNING', text: 'unreadable message from the runtime: null' },
        { level: 'WARNING', text: 'unreadable message from the runtime: [1, 2]' },
        { level: 'INFO', text: '{"toString":1,"valueOf":1}' },
      ]),
    );
  }, 60_000);

  it('fails a run whose returned result nests deeper than the platform stores, and keeps one that does not', async () => {
    const nested = (n: number) => `def run(params, logger):\n    v = "leaf"\n    for _ in range(${n}):\n        v = {"k": [v]}\n    return v\n`;
    const deep = await run(nested(20));
    expect(deep.outcome).toEqual({ kind: 'failed', message: "the script's result is nested deeper than 32 levels" });
    const fine = await run(nested(15));
    expect(fine.outcome).toMatchObject({ kind: 'result' });
    expect(JSON.parse((fine.outcome as { resultJson: string }).resultJson)).toHaveProperty('k');
  }, 60_000);

  it('keeps a wall-clock timeout longer than a Node timer holds', async () => {
    const r = await run('import time\ndef run(params, logger):\n    time.sleep(1)\n    return "OK"\n', { timeoutMs: 30 * 24 * 3600 * 1000 });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '"OK"' });
  }, 60_000);

  it('delivers the lines written right before an exception, then the traceback', async () => {
    const r = await run('def run(params, logger):\n    for i in range(5000):\n        logger.info("line %d", i)\n    raise RuntimeError("after the lines")\n');
    expect(r.outcome).toEqual({ kind: 'failed', message: 'RuntimeError: after the lines' });
    expect(numbered(r.lines)).toEqual(upTo(5000));
    expect(r.lines.at(-1)).toEqual({ level: 'ERROR', text: expect.stringContaining('RuntimeError: after the lines') });
  }, 60_000);

  it('delivers the lines written right before os._exit', async () => {
    const r = await run('import os\ndef run(params, logger):\n    for i in range(5000):\n        logger.info("line %d", i)\n    print("printed last")\n    os._exit(3)\n');
    expect(r.outcome).toEqual({ kind: 'exited', code: 3, signal: null });
    expect(numbered(r.lines)).toEqual(upTo(5000));
    expect(r.lines.at(-1)).toEqual({ level: 'INFO', text: 'printed last' });
  }, 60_000);

  it('delivers the lines written right before a SIGTERM, and the process still ends by it', async () => {
    const main = 'import os, signal, time\ndef run(params, logger):\n    for i in range(5000):\n        logger.info("line %d", i)\n    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(30)\n';
    const r = await run(main);
    expect(r.outcome).toEqual({ kind: 'exited', code: null, signal: 'SIGTERM' });
    expect(numbered(r.lines)).toEqual(upTo(5000));
  }, 60_000);

  it('delivers the lines written right before the CPU time limit ends the script (SIGXCPU)', async () => {
    const main = 'def run(params, logger):\n    for i in range(3000):\n        logger.info("line %d", i)\n    while True:\n        pass\n';
    const r = await run(main, { limits: { cpuSeconds: 2 } });
    expect(r.outcome).toEqual({ kind: 'exited', code: null, signal: 'SIGXCPU' });
    expect(numbered(r.lines)).toEqual(upTo(3000));
  }, 60_000);

  it('delivers the lines written before the wall-clock timeout stops the script', async () => {
    const main = 'import time\ndef run(params, logger):\n    for i in range(3000):\n        logger.info("line %d", i)\n    while True:\n        time.sleep(0.001)\n';
    const r = await run(main, { timeoutMs: 2000 });
    expect(r.outcome).toEqual({ kind: 'timeout', killed: false });
    expect(numbered(r.lines)).toEqual(upTo(3000));
  }, 60_000);

  it('keeps the lines of forked children apart: each once, none of the parent repeated', async () => {
    const main = [
      'import multiprocessing, logging',
      'def child(k):',
      '    for i in range(200):',
      '        print("child", k, i)',
      'def run(params, logger):',
      '    for i in range(1000):',
      '        logger.info("line %d", i)',
      '    procs = [multiprocessing.get_context("fork").Process(target=child, args=(k,)) for k in range(3)]',
      '    for p in procs:',
      '        p.start()',
      '    for p in procs:',
      '        p.join()',
      '    for i in range(1000, 2000):',
      '        logger.info("line %d", i)',
      '    return [p.exitcode for p in procs]',
    ].join('\n');
    const r = await run(main);
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '[0,0,0]' });
    expect(numbered(r.lines)).toEqual(upTo(2000));
    for (const k of [0, 1, 2]) {
      const child = r.lines.filter((l) => l.text.startsWith(`child ${k} `)).map((l) => Number(l.text.split(' ')[2]));
      expect(child).toEqual(upTo(200));
    }
  }, 60_000);

  it('keeps the logging API: levels, setLevel, %-formatting, exc_info, a handler the script adds, a bad format', async () => {
    const main = [
      'import logging, threading',
      'class Keep(logging.Handler):',
      '    def __init__(self):',
      '        super().__init__()',
      '        self.seen = []',
      '    def emit(self, record):',
      '        self.seen.append((record.levelname, record.getMessage(), record.funcName))',
      'def run(params, logger):',
      '    logger.setLevel(logging.INFO)',
      '    logger.debug("hidden")',
      '    logger.info("%s and %d", "text", 7)',
      '    logger.info("%(a)s-%(b)s", {"a": 1, "b": 2})',
      '    logger.log(logging.WARNING, "via log")',
      '    logger.warn("old warn")',
      '    logger.info("bad %d", "not a number")',
      '    try:',
      '        {}["k"]',
      '    except KeyError:',
      '        logger.error("with exc_info", exc_info=True)',
      '    logger.setLevel(logging.DEBUG)',
      '    logger.debug("shown")',
      '    keep = Keep()',
      '    logger.addHandler(keep)',
      '    logger.info("to both")',
      '    logger.removeHandler(keep)',
      '    threads = [threading.Thread(target=lambda k=k: [logger.info("t%d %d", k, i) for i in range(500)]) for k in range(4)]',
      '    for t in threads:',
      '        t.start()',
      '    for t in threads:',
      '        t.join()',
      '    return keep.seen',
    ].join('\n');
    const r = await run(main);
    expect(r.outcome.kind).toBe('result');
    expect(JSON.parse((r.outcome as { resultJson: string }).resultJson)).toEqual([["INFO", "to both", "run"]]);
    const plain = r.lines.filter((l) => !/^t\d /.test(l.text));
    expect(plain.map((l) => [l.level, l.text.split('\n')[0]])).toEqual([
      ['INFO', 'text and 7'],
      ['INFO', '1-2'],
      ['WARNING', 'via log'],
      ['WARNING', 'old warn'],
      // logging's own report of the bad format goes to stderr (WARNING lines), the run goes on.
      ...plain.slice(4, plain.findIndex((l) => l.level === 'ERROR')).map((l) => ['WARNING', l.text.split('\n')[0]]),
      ['ERROR', 'with exc_info'],
      ['DEBUG', 'shown'],
      ['INFO', 'to both'],
    ]);
    expect(plain.slice(4).some((l) => l.level === 'WARNING' && l.text.includes('--- Logging error ---'))).toBe(true);
    expect(plain.find((l) => l.level === 'ERROR')!.text).toContain("KeyError: 'k'");
    for (const k of [0, 1, 2, 3]) {
      expect(r.lines.filter((l) => l.text.startsWith(`t${k} `)).map((l) => Number(l.text.split(' ')[1]))).toEqual(upTo(500));
    }
  }, 60_000);
});
