export { loadConfig, configShape, type GatewayConfig } from './config';
export { createGateway, closeGateway, defaultTimeouts, type Gateway, type GatewayDeps, type ServerTimeouts } from './server';
export { resources } from './routes';
export type { Resource, RouteDef, RouteContext } from './routes/types';
