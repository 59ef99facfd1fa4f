// Bundles the page's script (client/main.ts, chart.js included) and copies its stylesheet into dist/public, the
// folder the console serves under /assets. One esbuild call, no network: part of the repository build
// (scripts/setup.sh). esbuild only strips types; `tsc -p client/tsconfig.json` checks them.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'public');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, 'client', 'main.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'iife',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync(join(root, 'client', 'app.css'), join(out, 'app.css'));
