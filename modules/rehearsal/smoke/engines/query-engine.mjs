// Stand-in for Prisma's native query engine binary (offline, where it cannot be downloaded): the
// HTTP server prisma-client-py spawns (`query-engine -p PORT`, datamodel in PRISMA_DML_PATH),
// answered by the same engine commit compiled to WebAssembly over node-postgres. prisma-client-py
// sends GraphQL, which that engine does not take (its constructor fixes the JSON protocol):
// graphql.mjs translates each request and its answer.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindAdapter } from '@prisma/driver-adapter-utils';
import { models, request, Untranslatable } from './graphql.mjs';

const require = createRequire(import.meta.url);
const wasmDir = require.resolve('@prisma/query-engine-wasm/package.json').replace(/package\.json$/, 'postgresql/');
const bg = await import(wasmDir + 'query_engine_bg.js');
const { version } = JSON.parse(readFileSync(wasmDir + '../package.json', 'utf8'));
const commit = version.split('.').pop();

const args = process.argv.slice(2);
if (args.includes('--version')) {
  console.log(`query-engine ${commit}`);
  process.exit(0);
}
const { instance } = await WebAssembly.instantiate(readFileSync(wasmDir + 'query_engine_bg.wasm'),
  { './query_engine_bg.js': bg });
bg.__wbg_set_wasm(instance.exports);

const datamodel = readFileSync(process.env.PRISMA_DML_PATH, 'utf8');
const overrides = process.env.OVERWRITE_DATASOURCES ? JSON.parse(process.env.OVERWRITE_DATASOURCES) : [];
const url = overrides.length ? overrides[0].url : process.env.DATABASE_URL;
// Postgres's `name` and `name[]` (pg_catalog's identifiers, e.g. pg_views.viewname) the native
// engine reads as text and text[]; this commit's adapter refuses them (UnsupportedNativeDataType).
const AS_TEXT = { 19: [25, (v) => v], 1003: [1009, pg.types.getTypeParser(1009)] };
class Adapter extends PrismaPg {
  async performIO(query) {
    const result = await super.performIO(query);
    for (const [i, field] of (result.ok ? result.value.fields : []).entries()) {
      const [text, parse] = AS_TEXT[field.dataTypeID] || [];
      if (!text) continue;
      field.dataTypeID = text;
      for (const row of result.value.rows) row[i] = row[i] === null ? null : parse(row[i]);
    }
    return result;
  }
}

const pool = new pg.Pool({ connectionString: url });
const adapter = bindAdapter(new Adapter(pool));
const engine = new bg.QueryEngine({ datamodel, logLevel: 'error', logQueries: false },
  (line) => process.stderr.write(line + '\n'), adapter);
const schema = models(datamodel);

// The engine reports a driver error as P2036 with an id; the native engine says what it was.
function explained(out) {
  return out.replace(/"Error in external connector \(id (\d+)\)"/g, (text, id) => {
    const found = adapter.errorRegistry.consumeError(Number(id))?.error;
    return found ? JSON.stringify(`${text.slice(1, -1)}: ${found.message || JSON.stringify(found)}`) : text;
  });
}

// The native engine logs in when it starts, and stops if it cannot; the adapter would wait for a query.
try {
  await pool.query('SELECT 1');
  await engine.connect('{}');
} catch (err) {
  process.stderr.write(`query-engine stand-in: cannot connect: ${JSON.parse(explained(JSON.stringify(String(err.message))))}\n`);
  process.exit(1);
}

async function query(body, tx) {
  const [json, back] = request(body, schema);
  return back(explained(await engine.query(json, '{}', tx)));
}

const routes = {
  'GET /status': async () => '{"status":"ok"}',
  'GET /metrics': async () => '{"counters":[],"gauges":[],"histograms":[]}',
  'POST /': query,
  'POST /transaction/start': async (body) => explained(await engine.startTransaction(body, '{}')),
};
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const path = req.url.split('?')[0];
    const tx = req.headers['x-transaction-id'] || undefined;
    const done = path.match(/^\/transaction\/([^/]+)\/(commit|rollback)$/);
    const route = done ? () => engine[`${done[2]}Transaction`](done[1], '{}') : routes[`${req.method} ${path}`];
    try {
      const out = route ? await route(Buffer.concat(chunks).toString('utf8'), tx) : null;
      res.writeHead(route ? 200 : 404, { 'Content-Type': 'application/json' });
      res.end(out ?? '{"errors":[{"error":"not found"}]}');
    } catch (err) {
      const message = err instanceof Untranslatable ? `the query-engine stand-in cannot translate this request: ${err.message}`
        : String(err);
      process.stderr.write(`${message}\n`);
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ error: message, user_facing_error: { is_panic: false, message } }] }));
    }
  });
});
const port = Number(args[args.indexOf('-p') + 1]);
server.listen(port, '127.0.0.1');
const stop = async () => { server.close(); await engine.disconnect('{}'); await pool.end(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
