// `npm run test:faults`: the fault suite (test/faults/) against a stack of its own, started
// and stopped by the e2e harness. Files stop, kill and restart parts of that stack (one file
// at a time, each leaving the stack whole), so they run in band.
const path = require('node:path');

const rootDir = path.join(__dirname, '..', '..');

module.exports = {
  rootDir,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    {
      displayName: 'faults',
      rootDir,
      testEnvironment: 'node',
      transform: {
        '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true, module: 'commonjs', target: 'ES2022', esModuleInterop: true, sourceMap: true } }],
      },
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      globalSetup: '<rootDir>/test/harness/global-setup.ts',
      globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
    },
  ],
};
