/**
 * The Trends.Earth script CLI as its users install it (`trends-earth-cli` from PyPI, in a
 * virtual environment in the tool cache), driven one command at a time by tecli/drive.py.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

import { pythonVenv } from '../../harness/python-venv';
import { apiUrl } from './api';

const tecliDir = join(__dirname, '..', 'tecli');

/** Installs the CLI if needed; resolves with the Python of its virtual environment. */
export async function installTecli(): Promise<string> {
  return join(await pythonVenv('tecli', ['--no-deps', '-r', join(tecliDir, 'requirements.txt')]), 'bin', 'python');
}

export interface TrendsOptions {
  /** The CLI's working directory (a project directory for publish, info and logs). */
  cwd: string;
  /** The user's home: the CLI keeps its token in ~/.gef.yml there. */
  home: string;
  /** Answers to the CLI's prompts, in order. */
  answers?: string[];
}

/** Runs `trends <args>` against the stack's gateway; resolves with what it printed. */
export function trends(python: string, args: string[], options: TrendsOptions): Promise<string> {
  const answers = (options.answers ?? []).flatMap((a) => ['--answer', a]);
  const argv = [join(tecliDir, 'drive.py'), '--api', apiUrl(), '--home', options.home, ...answers, ...args];
  return new Promise((resolve, reject) => {
    execFile(python, argv, { cwd: options.cwd, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`trends ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(`${stdout}\n${stderr}`);
    });
  });
}
