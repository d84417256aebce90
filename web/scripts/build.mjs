// Builds the console into dist/app: one bundle of the TypeScript sources and the styles,
// with content hashes in their names, and index.html pointing at them. The Go package in
// this directory embeds dist/ (see embed.go).
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'app');

await rm(out, { recursive: true, force: true });
await mkdir(join(out, 'assets'), { recursive: true });
const result = await build({
  entryPoints: { app: join(root, 'src', 'main.ts') },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['es2022'],
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
const css = await build({
  entryPoints: { app: join(root, 'src', 'style.css') },
  bundle: true,
  minify: true,
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
const outputs = (m) => Object.keys(m.outputs).map((p) => basename(p));
const js = outputs(result.metafile).find((f) => f.endsWith('.js'));
const style = outputs(css.metafile).find((f) => f.endsWith('.css'));
if (!js || !style) throw new Error('build produced no script or no stylesheet');
const html = (await readFile(join(root, 'src', 'index.html'), 'utf8'))
  .replace('__SCRIPT__', `/assets/${js}`)
  .replace('__STYLE__', `/assets/${style}`);
await writeFile(join(out, 'index.html'), html);
console.log(`built dist/app: ${js}, ${style}`);
