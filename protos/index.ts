// The generated contracts of every GEF service, re-exported under one name per package.
export * as health from './gen/gef/health/v1/health_pb';
export * as user from './gen/gef/user/v1/user_pb';
export * as script from './gen/gef/script/v1/script_pb';
export * as execution from './gen/gef/execution/v1/execution_pb';
