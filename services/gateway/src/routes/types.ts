import type { Request, Response } from 'express';
import type client from 'prom-client';
import type { Logger } from '@gef/common';
import type { execution, user } from '@gef/protos';
import type { Authenticator } from '../auth/authenticator';
import type { AnswerCache } from '../cache/answer-cache';
import type { ReadCache } from '../cache/read-cache';
import type { ServiceClients } from '../clients';
import type { SharedSlots } from '../cluster';
import type { Limits } from '../rate-limit/limits';
import type { Limiter } from '../rate-limit/rate-limiter';
import type { GatewayConfig } from '../config';
import type { OpenApiDocument, OpenApiResource } from '../openapi/types';

/** The methods a route may declare (HEAD follows GET; OPTIONS is answered for every path). */
export type RouteMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** What a route's handler may use. */
export interface RouteContext {
  config: GatewayConfig;
  logger: Logger;
  registry: client.Registry;
  /** The text GET /metrics answers (every worker's metrics, in a cluster). */
  metricsText: () => Promise<string>;
  clients: ServiceClients;
  /** The OpenAPI document the gateway serves. */
  openapi: OpenApiDocument;
  /** Verifies bearer tokens. */
  auth: Authenticator;
  /** Shared rate-limit counters and the configured limits. */
  limiter: Limiter;
  limits: Limits;
  /** Callers' own profiles by user id, dropped when the user service announces a change. */
  profiles: ReadCache<user.User>;
  /** Executions by id (one copy per caller), dropped when the execution service announces a change. */
  executions: ReadCache<execution.Execution>;
  /**
   * Pages of execution lists by owner (`owner:<user id>`, or `all` for lists of every
   * user), one copy per caller and query, dropped when an execution of the owner is
   * created, changes or is deleted.
   */
  executionPages: ReadCache<RenderedExecutionPage>;
  /** Whole answers of hot reads, served again before the app while what they were made from holds. */
  answers: AnswerCache;
  /** Slots counted over every process of this gateway (a cluster's workers); absent in a single process. */
  sharedSlots?: SharedSlots;
}

/** The body limit of routes anyone may call (logins, registration, password resets): their bodies are a few fields. */
export const anonymousBodyLimit = 64 * 1024;

/** The `executionPages` key of the lists of one owner's executions. */
export const ownerPagesKey = (userId: string): string => `owner:${userId.toLowerCase()}`;
/** The `executionPages` key of lists that may hold any user's executions. */
export const allPagesKey = 'all';

/** A page of an execution list as one caller sees it, each item already JSON (without embeds). */
export interface RenderedExecutionPage {
  items: string[];
  /** Each item's script and owner, for `include=script,user`. */
  refs: { scriptId: string; userId: string }[];
  page: number;
  perPage: number;
  total: number;
}

/** One operation: the single table that Express routing and the OpenAPI check both read. */
export interface RouteDef {
  method: RouteMethod;
  /** The OpenAPI path template, e.g. `/api/v1/script/{script}` (Express gets `:script`). */
  path: string;
  /** The OpenAPI operation this route implements (checked against the document in tests). */
  operationId: string;
  /** How the body is read: `json` into `req.body`; `none` (default) leaves it unread. */
  body?: 'none' | 'json';
  /**
   * The largest JSON body, as sent and once inflated, when smaller than the gateway's
   * BODY_LIMIT_BYTES: routes anyone may call read theirs before any check of who asks.
   */
  bodyLimit?: number;
  /** False for raw downloads: never compressed, whatever the client accepts. */
  compress?: boolean;
  handler: (req: Request, res: Response) => void | Promise<void>;
}

/**
 * A resource: its part of the OpenAPI document and its routes. Adding a resource is one
 * file in `routes/`, one in `openapi/`, and a line in `routes/index.ts`.
 */
export interface Resource {
  name: string;
  openapi: OpenApiResource;
  routes: (ctx: RouteContext) => RouteDef[];
}
