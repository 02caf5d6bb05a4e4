import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, createRouterTransport } from '@connectrpc/connect';
import { health, user } from '@gef/protos';
import pino from 'pino';
import { isDeadlock, isDependencyUnavailable, NotFound, PermissionDenied, reasonHeader, toConnectError } from '../src/errors';
import { errorInterceptor } from '../src/interceptors';

/** A health service behind the error interceptor whose Check throws what `failure` gives. */
function failingHealth(logger: pino.Logger, failure: () => unknown) {
  const transport = createRouterTransport(
    (router) => {
      router.service(health.HealthService, {
        check: () => {
          throw failure();
        },
      });
    },
    { router: { interceptors: [errorInterceptor(logger)] } },
  );
  return createClient(health.HealthService, transport);
}

describe('the error vocabulary', () => {
  it('maps each domain error to its Connect code and keeps the reason', () => {
    const err = toConnectError(new NotFound('Script not found', 'not_found'));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe('Script not found');
    expect(err.metadata.get(reasonHeader)).toBe('not_found');
    expect(toConnectError(new PermissionDenied('nope')).code).toBe(Code.PermissionDenied);
  });

  it('hides anything unknown behind a bare Internal error', () => {
    const err = toConnectError(new Error('relation "secret_table" does not exist at 10.0.0.5'));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe('Internal error');
  });

  it('crosses an RPC boundary through the server interceptor', async () => {
    const logged: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    let fail: Error = new NotFound('gone', 'not_found');
    const client = failingHealth(logger, () => fail);
    await expect(client.check(create(health.CheckRequestSchema))).rejects.toMatchObject({
      code: Code.NotFound,
      rawMessage: 'gone',
    });
    expect(logged).toHaveLength(0);

    fail = new Error('password=hunter2 connection refused');
    const caught = await client.check({}).catch((e: unknown) => e);
    expect(caught).toBeInstanceOf(ConnectError);
    expect((caught as ConnectError).code).toBe(Code.Internal);
    expect((caught as ConnectError).rawMessage).not.toContain('hunter2');
    expect(logged).toHaveLength(1);
  });

  it('translates errors a streaming handler throws mid-stream', async () => {
    const logger = pino({ level: 'silent' });
    const transport = createRouterTransport(
      (router) => {
        router.service(user.UserService, {
          async *watchRevocations() {
            throw new NotFound('no such stream', 'not_found');
          },
        });
      },
      { router: { interceptors: [errorInterceptor(logger)] } },
    );
    const client = createClient(user.UserService, transport);
    const read = async () => {
      for await (const _ of client.watchRevocations({})) {
        // nothing arrives
      }
    };
    await expect(read()).rejects.toMatchObject({ code: Code.NotFound, rawMessage: 'no such stream' });
  });
});

describe('a dependency that is away', () => {
  const withCode = (message: string, code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { code, ...extra });

  it('is Unavailable (503), whatever shape the driver gives it', () => {
    const cases: unknown[] = [
      withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      withCode('terminating connection due to administrator command', '57P01'),
      withCode('the database system is starting up', '57P03'),
      new Error('Connection terminated unexpectedly'),
      new Error('Client was closed and is not queryable'),
      // knex, when the connection of an open transaction died: it was rolled back.
      Object.assign(new Error('Transaction query already complete, run with DEBUG=knex:tx for more info'), { name: 'DriverException' }),
      new Error('server closed the connection unexpectedly'),
      new Error('This socket has been ended by the other party'),
      new Error('Knex: Timeout acquiring a connection. The pool is probably full.'),
      Object.assign(new Error('wrapped'), { name: 'ConnectionException' }),
      Object.assign(new Error('query failed'), { previous: withCode('connection failure', '08006') }),
      new Error('fetch failed', { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED') }),
      new Error('14 UNAVAILABLE: Connection refused'),
      Object.assign(new Error('Keycloak token failed with HTTP 500'), { unavailable: true }),
      // nodemailer, when the mail server is not there or drops the connection.
      withCode('connect ECONNREFUSED 127.0.0.1:1025', 'ESOCKET', { command: 'CONN' }),
      withCode('Greeting never received', 'ETIMEDOUT', { command: 'CONN' }),
      withCode('Connection closed unexpectedly', 'ECONNECTION'),
      // The database giving up on a statement another try may pass.
      withCode('canceling statement due to statement timeout', '57014'),
      withCode('terminating connection due to idle-in-transaction timeout', '25P03'),
      withCode('could not obtain lock on row in relation "execution"', '55P03'),
      withCode('deadlock detected', '40P01'),
      withCode('could not serialize access due to concurrent update', '40001'),
    ];
    for (const err of cases) {
      expect(isDependencyUnavailable(err)).toBe(true);
      const connect = toConnectError(err);
      expect(connect.code).toBe(Code.Unavailable);
      expect(connect.rawMessage).not.toMatch(/127\.0\.0\.1|5432|Knex/);
    }
  });

  it('answers a deadlock as Unavailable too, and logs it as an error (a lock-order bug), other refusals as warnings', async () => {
    const logged: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line) as { level: number; msg: string }) });
    let fail: unknown = withCode('deadlock detected', '40P01');
    const client = failingHealth(logger, () => fail);
    await expect(client.check({})).rejects.toMatchObject({ code: Code.Unavailable });
    fail = Object.assign(new Error('wrapped'), { sqlState: '40P01' });
    await expect(client.check({})).rejects.toMatchObject({ code: Code.Unavailable });
    fail = withCode('canceling statement due to statement timeout', '57014');
    await expect(client.check({})).rejects.toMatchObject({ code: Code.Unavailable });
    expect(logged.map((l) => [l.level, l.msg])).toEqual([
      [50, 'deadlock in the database (statements taking locks in different orders)'],
      [50, 'deadlock in the database (statements taking locks in different orders)'],
      [40, 'dependency unavailable'],
    ]);
    expect(isDeadlock(withCode('could not serialize access due to concurrent update', '40001'))).toBe(false);
  });

  it('leaves other failures Internal', () => {
    for (const err of [new Error('boom'), withCode('duplicate key value violates unique constraint', '23505'), withCode('syntax error', '42601'), 'text']) {
      expect(isDependencyUnavailable(err)).toBe(false);
      expect(toConnectError(err).code).toBe(Code.Internal);
    }
  });
});

describe('a value the database refuses as invalid input', () => {
  const pgError = (message: string, code: string) => Object.assign(new Error(message), { code, severity: 'ERROR', where: 'SQL statement "select …"' });

  it('is InvalidArgument (400) with a message of its own, never the database text', () => {
    const cases: [unknown, RegExp][] = [
      [pgError('LIKE pattern must not end with escape character', '22025'), /like pattern in the request is not valid/i],
      // MikroORM's wrapper copies the driver's code; knex's keeps it on `previous`.
      [Object.assign(new Error('select … - LIKE pattern must not end with escape character'), { name: 'DriverException', code: '22025', sqlState: '22025' }), /like pattern/i],
      [Object.assign(new Error('query failed'), { previous: pgError('invalid input syntax for type uuid: "x"', '22P02') }), /value in the request is not valid/],
      [new Error('wrapped', { cause: pgError('value too long for type character varying(100)', '22001') }), /too long/],
      [pgError('date/time field value out of range: "2026-13-01"', '22008'), /date in the request/],
    ];
    for (const [err, message] of cases) {
      const connect = toConnectError(err);
      expect(connect.code).toBe(Code.InvalidArgument);
      expect(connect.rawMessage).toMatch(message);
      expect(connect.rawMessage).not.toMatch(/select|varying|uuid|LIKE pattern must/);
      expect(connect.metadata.get(reasonHeader)).toBe('invalid_argument');
    }
  });

  it('crosses the server interceptor as InvalidArgument, logged as a warning', async () => {
    const logged: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const transport = createRouterTransport(
      (router) => {
        router.service(health.HealthService, {
          check: () => {
            throw pgError('LIKE pattern must not end with escape character', '22025');
          },
        });
      },
      { router: { interceptors: [errorInterceptor(logger)] } },
    );
    await expect(createClient(health.HealthService, transport).check({})).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect(logged).toEqual([expect.objectContaining({ level: 40, msg: 'the database refused a value of the request' })]);
  });

  it('leaves data exceptions no request value causes Internal', () => {
    for (const code of ['22012', '22000', '2200G']) expect(toConnectError(pgError('x', code)).code).toBe(Code.Internal);
  });
});
