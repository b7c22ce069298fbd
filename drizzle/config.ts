import { defineConfig } from 'drizzle-kit'

// Only `generate` is used: `push`/`pull` fail against MariaDB. Migrations are applied at start
// by drizzle-orm's migrate() (src/db/prepare.ts).
export default defineConfig({
  dialect: 'mysql',
  schema: './drizzle/schema.ts',
  out: './migrations',
})
