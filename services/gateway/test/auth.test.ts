import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import type { Request } from 'express';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import pino from 'pino';
import { user } from '@gef/protos';
import { Authenticator, platformRole } from '../src/auth/authenticator';
import { RevocationCache } from '../src/auth/revocation-cache';
import { HttpError } from '../src/http-errors';

const realm = 'gef';
let jwksServer: http.Server;
let keycloakUrl: string;
let privateKey: KeyLike;
let otherKey: KeyLike;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  otherKey = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  jwksServer = http.createServer((req, res) => {
    if (req.url === `/realms/${realm}/protocol/openid-connect/certs`) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  keycloakUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  jwksServer.closeAllConnections();
  await new Promise((r) => jwksServer.close(r));
});

const userId = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';

async function token(overrides: Record<string, unknown> = {}, options: { key?: KeyLike; exp?: number; iat?: number; iss?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ realm_access: { roles: ['default-roles-gef', 'USER', 'ADMIN'] }, sid: 'session-1', azp: 'gef-api', typ: 'Bearer', ...overrides })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setSubject(userId)
    .setIssuer(options.iss ?? `${keycloakUrl}/realms/${realm}`)
    .setAudience(['gef-api', 'account'])
    .setIssuedAt(options.iat ?? now)
    .setExpirationTime(options.exp ?? now + 300)
    .sign(options.key ?? privateKey);
}

/** A request with these Authorization headers (Node's `headers` keeps the first of them). */
const req = (...authorization: (string | undefined)[]) => {
  const sent = authorization.filter((value) => value !== undefined);
  return { headers: sent.length === 0 ? {} : { authorization: sent[0] }, headersDistinct: sent.length === 0 ? {} : { authorization: sent } } as unknown as Request;
};

async function failure(p: Promise<unknown>): Promise<{ status: number; error: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, error: err.error };
    throw err;
  }
  throw new Error('expected a refusal');
}

function authenticator(revocations?: RevocationCache) {
  return Authenticator.fromSettings({ url: keycloakUrl, realm, clientId: 'gef-api' }, revocations);
}

describe('the authenticator', () => {
  it('accepts a valid Keycloak token and takes the highest role', async () => {
    const principal = await authenticator().require(req(`Bearer ${await token()}`));
    expect(principal).toEqual({ kind: 'user', userId, role: 'ADMIN', sessionId: 'session-1', issuedAt: expect.any(Number), expiresAt: expect.any(Number) });
    expect(principal.expiresAt).toBeGreaterThan(principal.issuedAt);
    // What an event stream re-checks: the token holds until it expires.
    expect(authenticator().stillHolds(principal)).toBe(true);
    expect(authenticator().stillHolds({ ...principal, expiresAt: Math.floor(Date.now() / 1000) - 1 })).toBe(false);
  });

  it.each([
    ['no header', undefined, 'authorization_required'],
    ['not bearer', 'Basic dXNlcjpwYXNz', 'invalid_token'],
    ['garbage', 'Bearer not-a-jwt', 'invalid_token'],
  ])('refuses %s', async (_name, header, error) => {
    expect(await failure(authenticator().require(req(header)))).toEqual({ status: 401, error });
  });

  it.each([[''], ['   '], ['Bearer'], ['Bearer '], ['bearer \t']])('takes the empty header %j for no token: anonymous where allowed, authorization_required elsewhere', async (header) => {
    expect(await authenticator().optional(req(header))).toBeUndefined();
    expect(await failure(authenticator().require(req(header)))).toEqual({ status: 401, error: 'authorization_required' });
  });

  it('answers 503, not a 401, to a valid token while the realm keys cannot be had', async () => {
    const keycloakDown = Authenticator.fromSettings({ url: 'http://127.0.0.1:9', realm, clientId: 'gef-api' }, undefined);
    expect(await failure(keycloakDown.require(req(`Bearer ${await token()}`)))).toEqual({ status: 503, error: 'unavailable' });
    // Keys answered with an error status, or something that is no key set.
    for (const path of ['/broken-500', '/not-json']) {
      const odd = http.createServer((r, res) => {
        if (path === '/broken-500') {
          res.writeHead(500);
          res.end('down');
        } else {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end('<html>maintenance</html>');
        }
      });
      await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
      try {
        const url = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
        const a = Authenticator.fromSettings({ url, realm, clientId: 'gef-api' }, undefined);
        const t = await token({}, { iss: `${url}/realms/${realm}` });
        expect(await failure(a.require(req(`Bearer ${t}`)))).toEqual({ status: 503, error: 'unavailable' });
      } finally {
        odd.closeAllConnections();
        await new Promise((r) => odd.close(r));
      }
    }
    // A token that is itself wrong is still a 401 while the keys are up.
    expect(await failure(authenticator().require(req(`Bearer ${await token({}, { key: otherKey })}`)))).toEqual({ status: 401, error: 'invalid_token' });
  });

  it('accepts the public issuer Keycloak names itself by when one is set (keys still fetched where the gateway reaches it), and then only it', async () => {
    const issuer = 'https://login.example.org/realms/gef';
    const a = Authenticator.fromSettings({ url: keycloakUrl, realm, clientId: 'gef-api', issuer }, undefined);
    expect(await a.require(req(`Bearer ${await token({}, { iss: issuer })}`))).toMatchObject({ kind: 'user', userId });
    expect(await failure(a.require(req(`Bearer ${await token()}`)))).toEqual({ status: 401, error: 'invalid_token' });
  });

  it('refuses a request with more than one Authorization header, valid tokens or not', async () => {
    const valid = `Bearer ${await token()}`;
    for (const headers of [[valid, valid], [valid, 'Bearer other'], ['Bearer other', valid]]) {
      await expect(authenticator().require(req(...headers))).rejects.toMatchObject({ status: 401, error: 'invalid_token', message: 'More than one Authorization header' });
    }
  });

  it('refuses expired, foreign, mis-addressed and mis-signed tokens', async () => {
    const a = authenticator();
    const past = Math.floor(Date.now() / 1000) - 3600;
    expect(await failure(a.require(req(`Bearer ${await token({}, { iat: past - 60, exp: past })}`)))).toEqual({ status: 401, error: 'token_expired' });
    expect(await failure(a.require(req(`Bearer ${await token({}, { iss: 'http://elsewhere/realms/gef' })}`)))).toEqual({ status: 401, error: 'invalid_token' });
    expect(await failure(a.require(req(`Bearer ${await token({}, { key: otherKey })}`)))).toEqual({ status: 401, error: 'invalid_token' });
    const foreign = await new SignJWT({ azp: 'other-client' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(userId)
      .setIssuer(`${keycloakUrl}/realms/${realm}`)
      .setAudience('account')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    expect(await failure(a.require(req(`Bearer ${foreign}`)))).toEqual({ status: 401, error: 'invalid_token' });
  });

  it('refuses revoked users (tokens issued before the cut-off) and sessions', async () => {
    const now = Date.now();
    const revocations: user.Revocation[] = [
      create(user.RevocationSchema, {
        id: 1n,
        target: { case: 'userId', value: userId },
        notBefore: timestampFromDate(new Date(Math.ceil(now / 1000) * 1000)),
        expiresAt: timestampFromDate(new Date(now + 3_600_000)),
      }),
      create(user.RevocationSchema, {
        id: 2n,
        target: { case: 'sessionId', value: 'session-gone' },
        notBefore: timestampFromDate(new Date(now)),
        expiresAt: timestampFromDate(new Date(now + 3_600_000)),
      }),
    ];
    const transport = createRouterTransport((router) => {
      router.service(user.UserService, {
        async *watchRevocations() {
          for (const revocation of revocations) yield create(user.WatchRevocationsResponseSchema, { revocation });
          // Caught up: every revocation in force was sent.
          yield create(user.WatchRevocationsResponseSchema, {});
          await new Promise((r) => setTimeout(r, 60_000).unref());
        },
      });
    });
    const cache = new RevocationCache(createClient(user.UserService, transport), pino({ level: 'silent' }));
    await cache.start(2000);
    try {
      expect(cache.isConnected).toBe(true);
      const a = authenticator(cache);
      const before = Math.floor(now / 1000) - 1;
      expect(await failure(a.require(req(`Bearer ${await token({}, { iat: before })}`)))).toEqual({ status: 401, error: 'token_revoked' });
      expect(await failure(a.require(req(`Bearer ${await token({ sid: 'session-gone' }, { iat: Math.ceil(now / 1000) + 1 })}`)))).toEqual({
        status: 401,
        error: 'token_revoked',
      });
      const later = await a.require(req(`Bearer ${await token({ sid: 'session-2' }, { iat: Math.ceil(now / 1000) + 1 })}`));
      expect(later.userId).toBe(userId);
    } finally {
      cache.stop();
    }
  });

  it('keeps a revocation sent again with a later expiry (tokens found to live longer) until that expiry', async () => {
    const now = Date.now();
    const notBefore = timestampFromDate(new Date(Math.ceil(now / 1000) * 1000));
    const first = create(user.RevocationSchema, { id: 1n, target: { case: 'userId', value: userId }, notBefore, expiresAt: timestampFromDate(new Date(now + 3_600_000)) });
    const session = create(user.RevocationSchema, { id: 2n, target: { case: 'sessionId', value: 's-long' }, notBefore, expiresAt: timestampFromDate(new Date(now + 3_600_000)) });
    const longer = (r: typeof first) => create(user.RevocationSchema, { ...r, expiresAt: timestampFromDate(new Date(now + 5 * 3_600_000)) });
    const transport = createRouterTransport((router) => {
      router.service(user.UserService, {
        async *watchRevocations() {
          for (const revocation of [first, session]) yield create(user.WatchRevocationsResponseSchema, { revocation });
          yield create(user.WatchRevocationsResponseSchema, {});
          for (const revocation of [longer(first), longer(session)]) yield create(user.WatchRevocationsResponseSchema, { revocation });
          // An older one arriving late changes nothing it should not.
          yield create(user.WatchRevocationsResponseSchema, { revocation: first });
          await new Promise((r) => setTimeout(r, 60_000).unref());
        },
      });
    });
    const cache = new RevocationCache(createClient(user.UserService, transport), pino({ level: 'silent' }));
    await cache.start(2000);
    const clock = jest.spyOn(Date, 'now');
    try {
      await new Promise((r) => setTimeout(r, 50));
      const before = Math.floor(now / 1000) - 1;
      clock.mockReturnValue(now + 2 * 3_600_000);
      (cache as unknown as { sweep(): void }).sweep();
      expect(cache.isRevoked(userId, '', before)).toBe(true);
      expect(cache.isRevoked(randomUUID(), 's-long', before)).toBe(true);
      clock.mockReturnValue(now + 6 * 3_600_000);
      (cache as unknown as { sweep(): void }).sweep();
      expect(cache.isRevoked(userId, '', before)).toBe(false);
      expect(cache.isRevoked(randomUUID(), 's-long', before)).toBe(false);
    } finally {
      clock.mockRestore();
      cache.stop();
    }
  });

  it('answers 503 until it has heard every revocation in force, then refuses the revoked tokens', async () => {
    const now = Date.now();
    const revoked = create(user.RevocationSchema, {
      id: 1n,
      target: { case: 'userId', value: userId },
      notBefore: timestampFromDate(new Date(Math.ceil(now / 1000) * 1000)),
      expiresAt: timestampFromDate(new Date(now + 3_600_000)),
    });
    let catchUp!: () => void;
    const caughtUp = new Promise<void>((resolve) => (catchUp = resolve));
    const transport = createRouterTransport((router) => {
      router.service(user.UserService, {
        async *watchRevocations() {
          yield create(user.WatchRevocationsResponseSchema, { revocation: revoked });
          await caughtUp;
          yield create(user.WatchRevocationsResponseSchema, {});
          await new Promise((r) => setTimeout(r, 60_000).unref());
        },
      });
    });
    const cache = new RevocationCache(createClient(user.UserService, transport), pino({ level: 'silent' }));
    // Never caught up: the gateway goes on after its wait, and answers 503 meanwhile.
    await cache.start(200);
    try {
      expect({ connected: cache.isConnected, trustworthy: cache.trustworthy }).toEqual({ connected: false, trustworthy: false });
      const a = authenticator(cache);
      const before = Math.floor(now / 1000) - 1;
      const after = Math.ceil(now / 1000) + 1;
      expect(await failure(a.require(req(`Bearer ${await token({}, { iat: after })}`)))).toEqual({ status: 503, error: 'unavailable' });
      catchUp();
      for (let i = 0; i < 200 && !cache.isConnected; i++) await new Promise((r) => setTimeout(r, 5));
      expect(cache.trustworthy).toBe(true);
      expect(await failure(a.require(req(`Bearer ${await token({}, { iat: before })}`)))).toEqual({ status: 401, error: 'token_revoked' });
      expect((await a.require(req(`Bearer ${await token({}, { iat: after })}`))).userId).toBe(userId);
    } finally {
      cache.stop();
    }
  });

  it('answers 503 when the revocations were never heard at all (the user service unreachable at start)', async () => {
    const transport = createRouterTransport((router) => {
      router.service(user.UserService, {
        async *watchRevocations() {
          throw new Error('connect ECONNREFUSED');
        },
      });
    });
    const cache = new RevocationCache(createClient(user.UserService, transport), pino({ level: 'silent' }));
    await cache.start(100);
    try {
      expect(cache.trustworthy).toBe(false);
      expect(await failure(authenticator(cache).require(req(`Bearer ${await token()}`)))).toEqual({ status: 503, error: 'unavailable' });
    } finally {
      cache.stop();
    }
  });

  it('maps realm roles to the platform role', () => {
    expect(platformRole(['offline_access', 'USER'])).toBe('USER');
    expect(platformRole(['SUPERADMIN', 'ADMIN'])).toBe('SUPERADMIN');
    expect(platformRole([])).toBe('USER');
  });
});
