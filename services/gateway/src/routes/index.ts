import { authResource } from './auth';
import { docsResource } from './docs';
import { executionsResource } from './executions';
import { healthResource } from './health';
import { metricsResource } from './metrics';
import { passwordPageResource } from './password-page';
import { pingResource } from './ping';
import { scriptsResource } from './scripts';
import type { Resource } from './types';
import { usersResource } from './users';

/** Every resource the gateway serves: its routes and its part of the OpenAPI document. */
export const resources: readonly Resource[] = [pingResource, healthResource, metricsResource, docsResource, authResource, usersResource, passwordPageResource, scriptsResource, executionsResource];
