import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261128000001 } from './Migration20261128000001';
import { Migration20261128000002 } from './Migration20261128000002';
import { Migration20261128000003 } from './Migration20261128000003';
import { Migration20261128000004 } from './Migration20261128000004';
import { Migration20261128000005 } from './Migration20261128000005';
import { Migration20261128000006 } from './Migration20261128000006';
import { Migration20261128000007 } from './Migration20261128000007';
import { Migration20261128000008 } from './Migration20261128000008';
import { Migration20261129000009 } from './Migration20261129000009';
import { Migration20261130000010 } from './Migration20261130000010';
import { Migration20261201000011 } from './Migration20261201000011';
import { Migration20261202000012 } from './Migration20261202000012';
import { Migration20261203000013 } from './Migration20261203000013';
import { Migration20261204000014 } from './Migration20261204000014';

/** The execution service's migrations, oldest first. */
export const migrations: MigrationObject[] = [
  { name: 'Migration20261128000001', class: Migration20261128000001 },
  { name: 'Migration20261128000002', class: Migration20261128000002 },
  { name: 'Migration20261128000003', class: Migration20261128000003 },
  { name: 'Migration20261128000004', class: Migration20261128000004 },
  { name: 'Migration20261128000005', class: Migration20261128000005 },
  { name: 'Migration20261128000006', class: Migration20261128000006 },
  { name: 'Migration20261128000007', class: Migration20261128000007 },
  { name: 'Migration20261128000008', class: Migration20261128000008 },
  { name: 'Migration20261129000009', class: Migration20261129000009 },
  { name: 'Migration20261130000010', class: Migration20261130000010 },
  { name: 'Migration20261201000011', class: Migration20261201000011 },
  { name: 'Migration20261202000012', class: Migration20261202000012 },
  { name: 'Migration20261203000013', class: Migration20261203000013 },
  { name: 'Migration20261204000014', class: Migration20261204000014 },
];
