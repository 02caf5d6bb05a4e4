/**
 * A light mixed load for the fault suite: workers looping over logins, uploads, runs and
 * log appends, recording every answer and every write the API accepted (HTTP 200), so a
 * test can check that none of them was lost and what was answered while a part was down.
 */
import { randomBytes } from 'node:crypto';
import { api, type ApiResponse } from '../e2e/helpers/api';
import { cliArchive, upload } from '../e2e/helpers/archives';
import { sleep } from './helpers';

export type OpKind = 'login' | 'upload' | 'run' | 'log';

export interface Answer {
  kind: OpKind;
  at: number;
  /** HTTP status, or 0 when the request failed without an answer (connection refused, reset…). */
  status: number;
  text: string;
  /** What the request failed with when there was no answer. */
  error?: string;
}

export interface LoadTargets {
  /** A USER's e-mail and password (logins). */
  email: string;
  password: string;
  /** That USER's token (uploads, runs). */
  token: string;
  /** A built script of that user, run by the load. */
  scriptSlug: string;
  /** An ADMIN's token and an execution it appends log lines to. */
  adminToken: string;
  logExecutionId: string;
}

export class MixedLoad {
  readonly answers: Answer[] = [];
  readonly acceptedRuns: string[] = [];
  readonly acceptedUploads: string[] = [];
  readonly acceptedLines: string[] = [];
  private stopped = false;
  private workers: Promise<void>[] = [];
  private readonly tag = randomBytes(3).toString('hex');
  private n = 0;

  constructor(
    private readonly targets: LoadTargets,
    private readonly pauseMs = 50,
  ) {}

  start(workers = 4): void {
    const kinds: OpKind[] = ['login', 'upload', 'run', 'log'];
    for (let w = 0; w < workers; w++) this.workers.push(this.loop(kinds[w % kinds.length]!));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
  }

  /** Answers since `from` (ms since the epoch). */
  since(from: number, kind?: OpKind): Answer[] {
    return this.answers.filter((a) => a.at >= from && (kind === undefined || a.kind === kind));
  }

  private async loop(kind: OpKind): Promise<void> {
    while (!this.stopped) {
      await this.once(kind);
      // Logins stay under the contract's per-account limit (60 a minute).
      await sleep(kind === 'login' ? Math.max(this.pauseMs, 1100) : this.pauseMs);
    }
  }

  /** One operation of a kind; records its answer. */
  async once(kind: OpKind): Promise<Answer> {
    const t = this.targets;
    const n = ++this.n;
    let res: ApiResponse | undefined;
    let error: string | undefined;
    let accepted: ((r: ApiResponse) => void) | undefined;
    try {
      switch (kind) {
        case 'login':
          res = await api('POST', '/auth', { body: { email: t.email, password: t.password } });
          break;
        case 'upload': {
          const name = `Fault Load ${this.tag} ${n}`;
          res = await upload(t.token, cliArchive(name), `${name}.tar.gz`);
          accepted = (r) => this.acceptedUploads.push(r.body.data.id);
          break;
        }
        case 'run':
          res = await api('POST', `/api/v1/script/${t.scriptSlug}/run`, { token: t.token, body: { n } });
          accepted = (r) => this.acceptedRuns.push(r.body.data.id);
          break;
        case 'log': {
          const text = `load line ${this.tag} ${n}`;
          res = await api('POST', `/api/v1/execution/${t.logExecutionId}/log`, { token: t.adminToken, body: { text, level: 'INFO' } });
          accepted = () => this.acceptedLines.push(text);
          break;
        }
      }
    } catch (err) {
      error = String((err as { cause?: unknown }).cause ?? err);
    }
    if (res?.status === 200) accepted?.(res);
    const answer: Answer = { kind, at: Date.now(), status: res?.status ?? 0, text: res?.text.slice(0, 300) ?? '', ...(error ? { error } : {}) };
    this.answers.push(answer);
    return answer;
  }
}
