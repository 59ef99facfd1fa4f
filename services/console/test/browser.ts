import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { PuppeteerNode } from 'puppeteer-core';
import { repoRoot } from '@ampflow/testing';

/**
 * puppeteer-core, loadable by jest. puppeteer-core 25 ships ES modules only, and jest runs tests as CommonJS
 * (loading ES modules from there needs `--experimental-vm-modules` for the whole run). esbuild, which builds the
 * page anyway, bundles puppeteer-core once into one CommonJS file under node_modules/.cache (per version), which
 * jest loads as it is.
 */
export async function loadPuppeteer(): Promise<PuppeteerNode> {
  const root = repoRoot();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { version } = require(join(root, 'node_modules/puppeteer-core/package.json')) as { version: string };
  const dir = join(root, 'node_modules', '.cache', 'ampflow-console');
  const file = join(dir, `puppeteer-core-${version}.cjs`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    await build({
      stdin: { contents: "module.exports = require('puppeteer-core');", resolveDir: root },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node22',
      outfile: `${file}.tmp`,
      logLevel: 'warning',
    });
    renameSync(`${file}.tmp`, file);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require(file) as PuppeteerNode & { default?: PuppeteerNode };
  return loaded.default ?? loaded;
}

/** Headless Chromium from Debian's `chromium` package (CHROMIUM_PATH to use another). */
export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(
      `no Chromium at ${path}: install Debian's chromium package (npm test does when it may: apt-get install chromium) or set CHROMIUM_PATH`,
    );
  }
  return path;
}
