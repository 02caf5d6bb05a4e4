/** Jest: unit tests per workspace, end-to-end tests against the real stack in test/. */
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true, module: 'commonjs', target: 'ES2022', esModuleInterop: true, sourceMap: true } }],
};

module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/{services,workflows,deploy,protos}/**/test/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '/dist/'],
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/harness/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/test/harness/healthy-stack.ts'],
      globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
    },
  ],
};
