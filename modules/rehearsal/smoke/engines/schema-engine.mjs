// Stand-in for Prisma's native schema engine binary (offline, where it cannot be downloaded): what
// `prisma migrate deploy` asks of it. `schema-engine cli --datasource URL can-connect-to-database`
// exits 0 when the database answers; otherwise JSON-RPC 2.0, one message a line on stdin/stdout:
// listMigrationDirectories and applyMigrations, recorded in `_prisma_migrations` as the engine does.
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';

const COMMIT = '393aa359c9ad4a4bb28630fb5613f9c281cde053'; // prisma-client-py 0.15.0's engine
const args = process.argv.slice(2);
const fail = (code, message) => {
  process.stderr.write('\n' + JSON.stringify({ level: 'ERROR', target: 'schema_engine::logger',
    fields: { error_code: code, message } }) + '\n');
  process.exit(1);
};

// The datasource's URL: `url = env("NAME")` in the schema files given with --datamodels.
function schemaUrl() {
  const files = args.filter((a) => a.endsWith('.prisma'));
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  const name = (text.match(/url\s*=\s*env\("([^"]+)"\)/) || [])[1];
  if (!name || !process.env[name]) fail('P1012', `no datasource url in ${files.join(', ')} (env ${name})`);
  return process.env[name];
}

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`;

const directories = (path) => readdirSync(path)
  .filter((n) => statSync(join(path, n)).isDirectory()).sort();

async function applyMigrations(client, { migrationsDirectoryPath }) {
  await client.query(MIGRATIONS_TABLE);
  const rows = (await client.query('SELECT migration_name, finished_at, rolled_back_at FROM "_prisma_migrations"')).rows;
  const failed = rows.filter((r) => !r.finished_at && !r.rolled_back_at).map((r) => r.migration_name);
  if (failed.length) throw Object.assign(new Error(`failed migrations: ${failed}`), { code: 'P3009' });
  const done = new Set(rows.filter((r) => r.finished_at).map((r) => r.migration_name));
  const applied = [];
  for (const name of directories(migrationsDirectoryPath).filter((n) => !done.has(n))) {
    const script = readFileSync(join(migrationsDirectoryPath, name, 'migration.sql'), 'utf8');
    const id = randomUUID();
    await client.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ($1, $2, $3)',
      [id, createHash('sha256').update(script).digest('hex'), name]);
    try {
      await client.query(script); // the whole script at once, as the engine sends it
    } catch (err) {
      await client.query('UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1', [id, String(err)]);
      throw Object.assign(new Error(`Migration ${name} failed: ${err.message}`), { code: 'P3018' });
    }
    await client.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
    applied.push(name);
  }
  return { appliedMigrationNames: applied };
}

const methods = {
  getDatabaseVersion: async (client) => (await client.query('SELECT version()')).rows[0].version,
  listMigrationDirectories: async (client, { migrationsDirectoryPath }) =>
    ({ migrations: directories(migrationsDirectoryPath) }),
  applyMigrations,
};

if (args.includes('--version')) {
  console.log(`schema-engine-cli ${COMMIT}`);
} else if (args[0] === 'cli') {
  const url = args[args.indexOf('--datasource') + 1];
  const command = args[args.length - 1];
  if (command !== 'can-connect-to-database') fail('P1000', `the stand-in has no cli command ${command}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect().catch((err) => fail('P1001', `Can't reach database server: ${err.message}`));
  await client.end();
} else {
  // The schema files' datasource, connected when a method needs it: `prisma migrate diff` (the
  // proxy's start-up check) starts the engine without schema files, and is refused by name.
  let client;
  const connected = async () => {
    if (!client) {
      client = new pg.Client({ connectionString: schemaUrl() });
      await client.connect().catch((err) => fail('P1001', `Can't reach database server: ${err.message}`));
    }
    return client;
  };
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    const method = methods[request.method];
    let reply;
    try {
      if (!method) throw Object.assign(new Error(`the stand-in does not implement ${request.method}`), { code: 'P1000' });
      reply = { result: await method(await connected(), request.params || {}) };
    } catch (err) {
      reply = { error: { code: 4466, message: 'An error happened. Check the data field for details.',
        data: { is_panic: false, message: err.message, error_code: err.code, meta: {} } } };
    }
    process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: request.id, ...reply }) + '\n');
  }
  await client?.end();
}
