// Lint is part of `npm test`: any warning fails the build (--max-warnings 0).
// The architecture rules below keep the core pure (CONTRIBUTING.md, architecture point 2) and the
// libvirt RPC client independent of the rest of Tide.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** Layers the pure core must never reach into. */
const impureLayers = ['drivers', 'store', 'executor', 'sim', 'libvirt', 'lab', 'api', 'cli', 'daemon', 'config', 'data'];

export const coreRules = {
  'no-restricted-imports': ['error', {
    paths: [
      ...nodeBuiltins.map((name) => ({ name, message: 'core is pure: no node:* imports (CONTRIBUTING.md, architecture point 2).' })),
      { name: 'better-sqlite3', message: 'core is pure: no store.' },
      { name: 'ssh2', message: 'core is pure: no transport.' },
    ],
    patterns: [
      { group: ['node:*'], message: 'core is pure: no node:* imports.' },
      ...impureLayers.map((layer) => ({
        group: [`**/${layer}`, `**/${layer}/**`],
        message: `core is pure: it must not import the ${layer} layer.`,
      })),
    ],
  }],
  'no-restricted-globals': ['error',
    { name: 'Date', message: 'core must not read the clock: take `now` (or a Clock) as an argument.' },
    { name: 'performance', message: 'core must not read the clock.' },
    { name: 'process', message: 'core must not touch the process (env, argv, exit, hrtime).' },
    { name: 'setTimeout', message: 'core is synchronous and pure.' },
    { name: 'setInterval', message: 'core is synchronous and pure.' },
    { name: 'require', message: 'core is pure ESM.' },
    { name: 'fetch', message: 'core does no I/O.' },
  ],
  'no-restricted-properties': ['error',
    { object: 'Math', property: 'random', message: 'core randomness must be seeded: use core/util/rng.' },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/out/**', '.tide/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  { files: ['src/core/**/*.ts'], rules: coreRules },
  {
    files: ['src/libvirt/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['../core/**', '../../core/**', '../sim/**', '../drivers/**', '../executor/**', '../store/**', '../cli/**', '../api/**', '../config/**', '../lab/**'], message: 'the libvirt RPC client is standalone: no dependency on the rest of Tide.' }],
      }],
    },
  },
);
