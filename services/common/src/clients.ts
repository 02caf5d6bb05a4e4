import { createClient, type Client, type Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import type { DescService } from '@bufbuild/protobuf';

const transports = new Map<string, Transport>();

/** One HTTP/2 transport per base URL per process, reused by every client. */
export function transportFor(baseUrl: string): Transport {
  let transport = transports.get(baseUrl);
  if (!transport) {
    transport = createGrpcTransport({
      baseUrl,
      pingIntervalMs: 10_000,
      pingIdleConnection: true,
      idleConnectionTimeoutMs: 60_000,
      defaultTimeoutMs: 30_000,
    });
    transports.set(baseUrl, transport);
  }
  return transport;
}

/** A typed client of another service. */
export function serviceClient<S extends DescService>(service: S, baseUrl: string): Client<S> {
  return createClient(service, transportFor(baseUrl));
}
