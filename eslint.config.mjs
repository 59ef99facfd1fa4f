import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Boundaries (STYLE.md, "Rooms and doors"): services never import services, packages never import services.
 * Only `test/e2e/` may span services. The service names come from the folders, so a new service is covered.
 */
const services = readdirSync(join(import.meta.dirname, 'services'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);
const escape = (name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Import paths that reach into one of `names`: `@ampflow/<name>`, `.../services/<name>`, `../../<name>/...`. */
const intoServices = (names) => {
  const alternatives = names.map(escape).join('|');
  return `^@ampflow/(${alternatives})(/|$)|(^|/)services/(${alternatives})(/|$)|^(\\.\\./)+(${alternatives})(/|$)`;
};
const boundaries = [
  ...services.map((service) => ({
    files: [`services/${service}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: intoServices(services.filter((other) => other !== service)),
              message:
                'services never import other services: share code through packages/, or put a test that spans services in test/e2e/.',
            },
          ],
        },
      ],
    },
  })),
  {
    files: ['packages/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `${intoServices(services)}|(^|/)services(/|$)`,
              message: 'packages never import services: a package is what services share.',
            },
          ],
        },
      ],
    },
  },
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.ampflow/**', 'bench/results/**', 'reliability/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  ...boundaries,
  {
    files: ['**/*.js', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },
);
