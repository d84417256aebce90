// Runs the unit tests (src/**/*.test.ts) with node's own test runner, after bundling each
// with esbuild (node 18 and 20 cannot run TypeScript themselves).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const tests = (await readdir(src)).filter((f) => f.endsWith('.test.ts'));
if (tests.length === 0) throw new Error('no tests found in src/');
const out = await mkdtemp(join(tmpdir(), 'vigil-console-test-'));
try {
  await build({
    entryPoints: tests.map((f) => join(src, f)),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ['node18'],
    outdir: out,
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
  const files = tests.map((f) => join(out, f.replace(/\.ts$/, '.mjs')));
  const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  await rm(out, { recursive: true, force: true });
}
