import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

describe('workflows bundle', () => {
  it('bundles without Node modules, as a worker does', async () => {
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.resolve(__dirname, '../src/index.ts'),
      logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    expect(code).toContain('deleteUser');
    expect(code.length).toBeGreaterThan(1000);
  }, 120_000);

  it('refuses workflow code that imports a Node module', async () => {
    const fs = await import('node:fs/promises');
    const os = await import('node:os');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gef-wf-'));
    const file = path.join(dir, 'bad.ts');
    await fs.writeFile(file, "import fs from 'node:fs';\nexport async function bad(): Promise<string> { return String(fs.existsSync('/')); }\n");
    await expect(
      bundleWorkflowCode({
        workflowsPath: file,
        logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      }),
    ).rejects.toThrow();
    await fs.rm(dir, { recursive: true, force: true });
  }, 120_000);
});
