// One lint setup for every workspace. Workflow code gets extra rules: it runs in
// Temporal's deterministic sandbox, so Node modules and activity implementations stay out.
const tseslint = require('typescript-eslint');
const { builtinModules } = require('node:module');

const nodeModules = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

module.exports = tseslint.config(
  {
    ignores: ['**/node_modules/**', '**/dist/**', 'protos/gen/**', 'coverage/**', '.data/**'],
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['workflows/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeModules.map((name) => ({ name, message: 'Workflow code runs in a deterministic sandbox: no Node modules.' })),
            { name: '@temporalio/activity', message: 'Activities run in workers, not in workflow code.' },
            { name: '@temporalio/client', message: 'Workflows do not use the client.' },
            { name: '@temporalio/worker', message: 'Workflows do not use the worker.' },
            { name: '@gef/common', message: '@gef/common uses Node; keep it out of workflows.' },
          ],
          patterns: [
            { group: ['./activities', '../activities'], allowTypeImports: true, message: 'Import activities as types only (proxyActivities).' },
            { group: ['@gef/*/src/**', 'services/**'], message: 'Workflows do not import service code.' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setInterval', message: 'Use Temporal timers (sleep, condition).' },
        { name: 'process', message: 'No process in workflow code.' },
        { name: 'require', message: 'No dynamic require in workflow code.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'crypto', property: 'randomUUID', message: 'Use uuid4() from @temporalio/workflow.' },
      ],
    },
  },
  {
    files: ['**/test/**/*.ts', 'test/**/*.ts', 'deploy/src/main.ts'],
    rules: { 'no-console': 'off' },
  },
);
