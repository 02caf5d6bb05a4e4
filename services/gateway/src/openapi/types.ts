/**
 * The parts of OpenAPI 3.1 this gateway writes. Schemas are JSON Schema 2020-12 objects.
 * https://spec.openapis.org/oas/v3.1.0
 */

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'options' | 'head' | 'patch' | 'trace';
export const httpMethods: readonly HttpMethod[] = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export interface ReferenceObject {
  $ref: string;
  summary?: string;
  description?: string;
}

/** A JSON Schema (2020-12 dialect, as OpenAPI 3.1 uses). Kept open on purpose. */
export interface SchemaObject {
  $ref?: string;
  type?: string | string[];
  format?: string;
  title?: string;
  description?: string;
  enum?: unknown[];
  const?: unknown;
  examples?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  items?: SchemaObject;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  additionalProperties?: boolean | SchemaObject;
  allOf?: SchemaObject[];
  anyOf?: SchemaObject[];
  oneOf?: SchemaObject[];
  default?: unknown;
  contentMediaType?: string;
  contentEncoding?: string;
  [keyword: string]: unknown;
}

export interface ExampleObject {
  summary?: string;
  value: unknown;
}

export interface MediaTypeObject {
  schema?: SchemaObject;
  example?: unknown;
  examples?: Record<string, ExampleObject | ReferenceObject>;
}

export interface HeaderObject {
  description?: string;
  required?: boolean;
  schema: SchemaObject;
}

export interface ParameterObject {
  name: string;
  in: 'query' | 'header' | 'path' | 'cookie';
  description?: string;
  required?: boolean;
  deprecated?: boolean;
  schema: SchemaObject;
  style?: string;
  explode?: boolean;
  example?: unknown;
}

export interface RequestBodyObject {
  description?: string;
  required?: boolean;
  content: Record<string, MediaTypeObject>;
}

export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject | ReferenceObject>;
  content?: Record<string, MediaTypeObject>;
}

export type ResponsesObject = Record<string, ResponseObject | ReferenceObject>;

export type SecurityRequirementObject = Record<string, string[]>;

export interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  parameters?: (ParameterObject | ReferenceObject)[];
  requestBody?: RequestBodyObject | ReferenceObject;
  responses: ResponsesObject;
  /** `[]` means no authentication; absent means the document's default. */
  security?: SecurityRequirementObject[];
  deprecated?: boolean;
}

export type PathItemObject = Partial<Record<HttpMethod, OperationObject>> & {
  summary?: string;
  description?: string;
  parameters?: (ParameterObject | ReferenceObject)[];
};

export type PathsObject = Record<string, PathItemObject>;

export interface TagObject {
  name: string;
  description?: string;
}

export interface SecuritySchemeObject {
  type: 'http' | 'apiKey' | 'oauth2' | 'openIdConnect';
  scheme?: string;
  bearerFormat?: string;
  description?: string;
  openIdConnectUrl?: string;
}

export interface ComponentsObject {
  schemas?: Record<string, SchemaObject>;
  responses?: Record<string, ResponseObject>;
  parameters?: Record<string, ParameterObject>;
  headers?: Record<string, HeaderObject>;
  requestBodies?: Record<string, RequestBodyObject>;
  securitySchemes?: Record<string, SecuritySchemeObject>;
}

export interface OpenApiDocument {
  openapi: string;
  jsonSchemaDialect?: string;
  info: { title: string; version: string; description?: string; license?: { name: string; identifier?: string } };
  servers?: { url: string; description?: string }[];
  tags?: TagObject[];
  paths: PathsObject;
  components: ComponentsObject;
  security?: SecurityRequirementObject[];
}

/** What each resource contributes to the document: its tag, its paths, its own schemas. */
export interface OpenApiResource {
  tag: TagObject;
  paths: PathsObject;
  schemas?: Record<string, SchemaObject>;
}
