/** The development stack launcher: `startStack(options)` and what it is made of. */
export { createStack, startStack, START_GROUPS, StackRuntime, type Stack, type ExitListener } from './stack';
export {
  DEFAULT_PORTS,
  PORT_ENV,
  PART_PORTS,
  DATABASES,
  KEYCLOAK_VERSION,
  TEMPORAL_VERSION,
  resolveConfig,
  type StackConfig,
  type StackOptions,
  type StackPorts,
  type PortName,
} from './config';
export { ALL_PARTS, INFRASTRUCTURE_PARTS, SERVICE_PARTS, isPartName, parseParts, type PartName, type ServicePart } from './parts';
export { databaseUrl, serviceEnv, stackUrls, type StackUrls } from './env';
export { findFreePorts, freeStackPorts, isPortFree } from './ports';
export { childrenOf, processAlive } from './process';
export { LaunchError, PrerequisiteError, PartExitedError, oneLine } from './errors';
export { embeddedPostgresVersion } from './postgres';
export { securePrivateData, SHARED_DATA_ENTRIES, PRIVATE_DATA_DIRS } from './data-dir';
export { startTestPostgres, type TestPostgres } from './test-postgres';
export { testTemporalCli } from './test-temporal';
