import path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve(__dirname, '../..');
// The repository's flat config, passed in directly (Jest cannot load it by dynamic import).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const config = require('../../eslint.config.js');
const newEslint = () => new ESLint({ cwd: root, overrideConfigFile: true, overrideConfig: config });

async function lintWorkflow(code: string): Promise<string[]> {
  const eslint = newEslint();
  const [result] = await eslint.lintText(code, { filePath: path.join(root, 'workflows/src/example.ts') });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('the workflow lint rule', () => {
  it('refuses Node modules and activity implementations in workflow code', async () => {
    const messages = await lintWorkflow(
      "import fs from 'node:fs';\nimport { Context } from '@temporalio/activity';\nexport const a = [fs, Context];\n",
    );
    expect(messages.filter((m) => m.includes('no-restricted-imports'))).toHaveLength(2);
  }, 60_000);

  it('refuses value imports of activities but allows type imports', async () => {
    const bad = await lintWorkflow("import { x } from './activities';\nexport const y = x;\n");
    expect(bad.some((m) => m.includes('no-restricted-imports'))).toBe(true);
    const good = await lintWorkflow("import type { UserActivities } from './activities';\nexport type Y = UserActivities;\n");
    expect(good).toEqual([]);
  }, 60_000);

  it('accepts the real workflow files', async () => {
    const fs = await import('node:fs');
    const dir = path.join(root, 'workflows/src');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    const eslint = newEslint();
    for (const file of files) {
      const filePath = path.join(dir, file);
      const [result] = await eslint.lintText(fs.readFileSync(filePath, 'utf8'), { filePath });
      expect((result?.messages ?? []).map((m) => `${file}: ${m.message}`)).toEqual([]);
    }
  }, 60_000);
});
