import { Migration } from '@mikro-orm/migrations';

/**
 * Registrations under way: `CreateUser` writes the address's row before it creates the login
 * in Keycloak, and removes it in the transaction that writes the profile. A row that outlives
 * its request by minutes marks a registration that died between the two (the process killed,
 * Keycloak's answer lost): the login it may have left in Keycloak is removed by the next
 * registration of that address, or by the service's sweep at start. `attempt` names the
 * request that holds the row, so that one that took a dead row over is not undone by it.
 * `uncertain`: the request failed not knowing whether Keycloak made the login (its answer
 * never came, and the login was not there yet): the address waits until the row is dead.
 */
export class Migration20261201000003 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists user_registration (
        email text primary key,
        attempt uuid not null,
        started_at timestamptz not null default now(),
        uncertain boolean not null default false
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists user_registration;');
  }
}
