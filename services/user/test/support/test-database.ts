import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { openDatabase } from '@gef/common/orm';
import { startTestPostgres } from '@gef/deploy';
import { entities } from '../../src/entities';
import { migrations } from '../../src/migrations';

/** The user service's database, migrated, on a PostgreSQL of the test's own; `close` stops both. */
export async function openTestDatabase(): Promise<{ orm: MikroORM; url: string; close: () => Promise<void> }> {
  const pg = await startTestPostgres('gef_user');
  try {
    const orm = await openDatabase({ url: pg.url, entities, migrations, logger: createLogger('user-test', 'silent') });
    return {
      orm,
      url: pg.url,
      close: async () => {
        await orm.close();
        await pg.stop();
      },
    };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}
