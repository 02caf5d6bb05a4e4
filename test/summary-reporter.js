// Prints the run's closing line in the plain form CI reads: "N passed, N failed". When a test
// file fails against a stack the harness started, it also prints what the stack's parts logged
// at warning level and above (and any line that is not a log record, such as a crash's stack
// trace) while that file ran: the stack's logs go with the stack, and CI keeps only what is
// printed.
'use strict';

const { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

/** Most lines printed for one failed file, and most characters of one line. */
const maxLines = 60;
const maxLineChars = 2000;
/** Most bytes of one part's log read for one file (its end). */
const maxBytes = 8 * 1024 * 1024;

/** The stack's log directory, while the harness's stack file names one. */
function logDir() {
  const file = process.env.GEF_TEST_STACK_FILE;
  if (!file || !existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')).logDir;
  } catch {
    return undefined;
  }
}

/** Each part's log file with its size now. */
function logSizes(dir) {
  const sizes = new Map();
  if (!dir || !existsSync(dir)) return sizes;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.log')) continue;
    try {
      sizes.set(name, statSync(join(dir, name)).size);
    } catch {
      // gone meanwhile
    }
  }
  return sizes;
}

/** What `name` gained since it was `from` bytes long (its last `maxBytes`), as text. */
function readSince(dir, name, from) {
  const path = join(dir, name);
  const size = statSync(path).size;
  const start = Math.max(from > size ? 0 : from, size - maxBytes);
  const buffer = Buffer.alloc(size - start);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, start);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}

/**
 * A log line at warning level or above: a JSON record whose level says so (pino's numbers,
 * or words), or a line of text naming a warning or an error (Keycloak's and PostgreSQL's
 * logs, a crash's stack trace), or the launcher's mark of a part (re)started.
 */
function isProblem(line) {
  if (line.startsWith('{')) {
    const level = /"level":\s*(\d+|"[a-zA-Z]+")/.exec(line)?.[1];
    if (level === undefined) return false;
    return /^\d+$/.test(level) ? Number(level) >= 40 : /^"(warn|warning|error|fatal|dpanic|panic)"$/i.test(level);
  }
  return /^=== |\b(WARN|WARNING|ERROR|FATAL|PANIC)\b|Error\b|^\s+at /.test(line);
}

/** Warnings and errors the parts logged since `sizes` were taken (the last `maxLines`). */
function problemsSince(dir, sizes) {
  const found = [];
  for (const name of logSizes(dir).keys()) {
    let text;
    try {
      text = readSince(dir, name, sizes.get(name) ?? 0);
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (isProblem(line)) found.push(`${name}: ${line.slice(0, maxLineChars)}`);
    }
  }
  return found;
}

class SummaryReporter {
  constructor() {
    /** Log sizes when each running test file started, by its path. */
    this.started = new Map();
  }

  onTestFileStart(test) {
    const dir = logDir();
    if (dir) this.started.set(test.path, logSizes(dir));
  }

  onTestFileResult(test, result) {
    const sizes = this.started.get(test.path);
    this.started.delete(test.path);
    const dir = logDir();
    if (!sizes || !dir || (result.numFailingTests === 0 && !result.testExecError)) return;
    const found = problemsSince(dir, sizes);
    const shown = found.slice(-maxLines);
    process.stdout.write(
      `\nstack warnings and errors while ${test.path} ran (${found.length}${found.length > shown.length ? `, the last ${shown.length}` : ''}; logs in ${dir}):\n` +
        (shown.length > 0 ? `${shown.join('\n')}\n` : '(none)\n'),
    );
  }

  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const line = `${results.numPassedTests} passed, ${results.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`;
    process.stdout.write(`\nTests: ${line}\n`);
  }
}

module.exports = SummaryReporter;
