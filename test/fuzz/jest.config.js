// `npm run test:fuzz`: the fuzz suite (test/fuzz/) against a stack of its own, started and
// stopped by the e2e harness. With GEF_TEST_STACK_FILE set (a stack.json the harness wrote),
// it fuzzes that running stack instead.
const path = require('node:path');

const ownStack = !process.env.GEF_TEST_STACK_FILE;
const rootDir = path.join(__dirname, '..', '..');

module.exports = {
  rootDir,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    {
      displayName: 'fuzz',
      rootDir,
      testEnvironment: 'node',
      transform: {
        '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true, module: 'commonjs', target: 'ES2022', esModuleInterop: true, sourceMap: true } }],
      },
      testMatch: ['<rootDir>/test/fuzz/**/*.test.ts'],
      ...(ownStack
        ? { globalSetup: '<rootDir>/test/harness/global-setup.ts', globalTeardown: '<rootDir>/test/harness/global-teardown.ts' }
        : {}),
    },
  ],
};
