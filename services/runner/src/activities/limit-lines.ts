import type { PythonOutcome } from '../runtimes/python/run-python';
import type { SandboxLimits } from '../sandbox/sandbox';

const mib = (bytes: number) => `${Math.round(bytes / 1024 ** 2)} MiB`;

/** What the run's sandbox saw that tells which limit ended it. */
export interface LimitEvidence {
  outcome: PythonOutcome | undefined;
  limits: SandboxLimits;
  /** Processes of the run the kernel killed for going past the run's memory limit. */
  oomKills: number;
  /** Bytes the run's files took on disk when it was stopped for it. */
  diskBytes?: number;
  /** Set when it was stopped for having more files and directories than this. */
  maxDiskEntries?: number;
  /** CPU seconds the run's processes had used together when it was stopped for it. */
  cpuSeconds?: number;
  maxDiskBytes: number;
}

/**
 * A log line saying in words which of the sandbox's limits a run went past, from what is
 * known of its end: an exit signal (SIGXCPU, SIGXFSZ, SIGKILL with the kernel's OOM kill in
 * the run's memory group), the error the script failed with (Python turns a refused
 * allocation into MemoryError, a write past the file size limit into EFBIG, a refused fork
 * into EAGAIN) or the runner's own disk and CPU checks. Undefined when no limit is the cause.
 */
export function limitLine(evidence: LimitEvidence): string | undefined {
  const { outcome, limits, oomKills } = evidence;
  if (evidence.maxDiskEntries !== undefined) {
    return `Disk quota exceeded: the script made more than ${evidence.maxDiskEntries.toLocaleString('en')} files and directories; the script was stopped`;
  }
  if (evidence.diskBytes !== undefined) {
    return `Disk quota exceeded: the script's files took ${mib(evidence.diskBytes)}, more than its limit of ${mib(evidence.maxDiskBytes)}; the script was stopped`;
  }
  if (evidence.cpuSeconds !== undefined) {
    return `CPU time limit exceeded: the script's processes used ${evidence.cpuSeconds.toFixed(1)} s of CPU time together, more than its limit of ${Math.ceil(limits.cpuSeconds)} s; the script was stopped`;
  }
  if (oomKills > 0) {
    return `Memory limit exceeded: the script's processes went past their limit of ${mib(limits.memoryBytes)} together; the kernel killed ${oomKills === 1 ? 'one of them' : `${oomKills} of them`}`;
  }
  if (outcome?.kind === 'exited') {
    if (outcome.signal === 'SIGXCPU') return `CPU time limit exceeded: the script used its ${Math.ceil(limits.cpuSeconds)} s of CPU time and was killed (SIGXCPU)`;
    if (outcome.signal === 'SIGXFSZ') return `File size limit exceeded: the script wrote past its limit of ${mib(limits.fileBytes)} for one file (SIGXFSZ)`;
    return undefined;
  }
  if (outcome?.kind !== 'failed') return undefined;
  const message = outcome.message;
  if (/\bMemoryError\b/.test(message)) return `Memory limit exceeded: the script could not allocate memory within its limit of ${mib(limits.memoryBytes)} (MemoryError)`;
  if (/\[Errno 27\]|File too large/.test(message)) return `File size limit exceeded: the script tried to write a file larger than its limit of ${mib(limits.fileBytes)}`;
  if (/^BlockingIOError: \[Errno 11\]|can't start new thread/.test(message)) {
    return `Too many processes: the script could not start another process or thread (its limit is ${limits.processes} processes and threads)`;
  }
  return undefined;
}
