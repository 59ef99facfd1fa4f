import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * deploy/docker/Dockerfile against the npm workspaces, without Docker. Its build stage copies each workspace's
 * package.json before `npm ci`, so that the install layer survives source changes; a workspace left out of that
 * list makes `npm ci` refuse the tree (the lockfile names it) or, with `npm install`, quietly drops its
 * dependencies from the image. Here, not in a unit project, because it spans the repository.
 */

const root = join(__dirname, '../..');
const dockerfile = readFileSync(join(root, 'deploy/docker/Dockerfile'), 'utf8');

/** The root package.json's `workspaces`, expanded as npm does: each match that holds a package.json. */
function workspaces(): string[] {
  const patterns = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] })
    .workspaces;
  return patterns
    .flatMap((pattern) => {
      if (!pattern.endsWith('/*')) return [pattern];
      const parent = pattern.slice(0, -2);
      return readdirSync(join(root, parent), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => `${parent}/${entry.name}`);
    })
    .filter((dir) => existsSync(join(root, dir, 'package.json')))
    .sort();
}

/** Instructions of the build stage, continuation lines joined. */
function buildStage(): string[] {
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const from = instructions.findIndex((line) => /^FROM\s.+\sAS\s+build$/i.test(line));
  const next = instructions.findIndex((line, i) => i > from && /^FROM\s/i.test(line));
  expect(from).toBeGreaterThanOrEqual(0);
  return instructions.slice(from, next === -1 ? undefined : next);
}

describe('deploy/docker/Dockerfile', () => {
  const stage = buildStage();
  const install = stage.findIndex((line) => /^RUN\s.*\bnpm (ci|install)\b/.test(line));
  const beforeInstall = stage.slice(0, install);

  it('installs the dependencies once in the build stage, with npm ci', () => {
    expect(install).toBeGreaterThan(0);
    expect(stage[install]).toMatch(/\bnpm ci\b/);
    expect(stage.filter((line) => /\bnpm (ci|install)\b/.test(line))).toHaveLength(1);
  });

  it('copies the root manifests, the lockfile and .npmrc before the install', () => {
    const copy = beforeInstall.find((line) => /^COPY\s+package\.json\s/.test(line));
    expect(copy?.split(/\s+/).slice(1)).toEqual(['package.json', 'package-lock.json', '.npmrc', './']);
  });

  it("copies the package.json of exactly the root package.json's workspaces before the install", () => {
    const copied = beforeInstall.flatMap((line) => {
      const match = /^COPY\s+(\S+)\/package\.json\s+(\S+?)\/?$/.exec(line);
      if (!match) return [];
      expect({ line, to: match[2] }).toEqual({ line, to: match[1] });
      return [match[1]!];
    });
    expect(workspaces().length).toBeGreaterThan(0);
    expect(copied.sort()).toEqual(workspaces());
  });
});
