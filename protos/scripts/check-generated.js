// Fails when the committed code in gen/ differs from what `buf generate` makes now.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const buf = require.resolve('@bufbuild/buf/bin/buf');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-gen-'));

function listFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath ?? d.path, d.name)))
    .sort();
}

try {
  execFileSync(process.execPath, [buf, 'lint'], { cwd: root, stdio: 'inherit' });
  const template = fs.readFileSync(path.join(root, 'buf.gen.yaml'), 'utf8').replace(/out: gen/, `out: ${out}`);
  execFileSync(process.execPath, [buf, 'generate', '--template', template], { cwd: root, stdio: 'inherit' });
  const committed = listFiles(path.join(root, 'gen'));
  const fresh = listFiles(out);
  const problems = [];
  for (const f of new Set([...committed, ...fresh])) {
    const a = path.join(root, 'gen', f);
    const b = path.join(out, f);
    if (!fs.existsSync(a)) problems.push(`missing from gen/: ${f}`);
    else if (!fs.existsSync(b)) problems.push(`stale file in gen/: ${f}`);
    else if (!fs.readFileSync(a).equals(fs.readFileSync(b))) problems.push(`out of date: gen/${f}`);
  }
  if (problems.length > 0) {
    console.error(`Generated code is not up to date; run \`npm run generate\`:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`protos: ${committed.length} generated files up to date`);
} finally {
  fs.rmSync(out, { recursive: true, force: true });
}
