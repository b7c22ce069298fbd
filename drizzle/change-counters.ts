import { bigint, mysqlTable, varchar } from 'drizzle-orm/mysql-core'

// Named counters that a kind of change bumps in its own transaction, so that a row written by
// every such change exists (src/repositories/change-counters.ts):
// - `admins`: every demotion or deletion of an admin, before it checks that another admin
//   remains (API.md §12). On one server its row lock queues those transactions; on a Galera
//   cluster, where a SELECT … FOR UPDATE on one node does not stop a write on another, two such
//   transactions through two nodes both write this row, so certification lets one commit and
//   fails the other: the last admin can never be removed twice.
// - `signing_keys`: every insert, rotation and revocation of a signing key. The instances poll
//   this one row to learn that the key table changed: a probe that cannot miss a change, whatever
//   the clocks of the node that wrote it (MAX(updated_at) could).
export const changeCounters = mysqlTable('change_counters', {
  name: varchar('name', { length: 32 }).primaryKey(),
  value: bigint('value', { mode: 'number', unsigned: true }).notNull(),
})
