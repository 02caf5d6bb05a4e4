import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261128000001 } from './Migration20261128000001';
import { Migration20261128000002 } from './Migration20261128000002';
import { Migration20261128000003 } from './Migration20261128000003';
import { Migration20261201000001 } from './Migration20261201000001';
import { Migration20261201000002 } from './Migration20261201000002';
import { Migration20261201000003 } from './Migration20261201000003';

/** The script service's migrations, oldest first. */
export const migrations: MigrationObject[] = [
  { name: 'Migration20261128000001', class: Migration20261128000001 },
  { name: 'Migration20261128000002', class: Migration20261128000002 },
  { name: 'Migration20261128000003', class: Migration20261128000003 },
  { name: 'Migration20261201000001', class: Migration20261201000001 },
  { name: 'Migration20261201000002', class: Migration20261201000002 },
  { name: 'Migration20261201000003', class: Migration20261201000003 },
];
