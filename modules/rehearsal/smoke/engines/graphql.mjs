// prisma-client-py sends Prisma's GraphQL protocol; the WebAssembly engine speaks only the JSON
// protocol. This translates the one document shape prisma-client-py's query builder renders
// (prisma/_builder.py: `query|mutation { result: <action><Model> (args) { selection } }`, alone
// or in a `{"batch": [...]}`) into JSON-protocol requests, and their answers back into what the
// GraphQL protocol returned: data under the document's alias, and plain DateTime, BigInt, Decimal,
// Bytes and Json values instead of `$type`-tagged ones. Anything else is refused by name.

export class Untranslatable extends Error {}

const ACTION = /^(findUnique|findFirst|findMany|createOne|createMany|updateOne|updateMany|deleteOne|deleteMany|upsertOne|aggregate|groupBy)(\w+?)(OrThrow)?$/;
const RAW = new Set(['executeRaw', 'queryRaw']);
const TAGGED = new Set(['DateTime', 'BigInt', 'Decimal', 'Bytes', 'Json']);
const JSON_FILTERS = new Set(['equals', 'not']); // a Json field's filters that take a JSON value
// Commas are insignificant in GraphQL (prisma-client-py renders a list as `[,\n "a",\n "b",\n]`).
const TOKEN = /[\s,]*(?:([{}()[\]:])|("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([A-Za-z_]\w*))/y;

// Each model's fields from the datamodel: name -> 'Json', a related model's name, or 'scalar'.
export function models(datamodel) {
  const found = new Map();
  for (const [, name] of datamodel.matchAll(/^model\s+(\w+)\s*\{/gm)) found.set(name, new Map());
  for (const [, name, body] of datamodel.matchAll(/^model\s+(\w+)\s*\{([\s\S]*?)^\}/gm)) {
    for (const [, field, type] of body.matchAll(/^\s*(\w+)\s+(\w+)/gm)) {
      found.get(name).set(field, type === 'Json' || found.has(type) ? type : 'scalar');
    }
  }
  return found;
}

class Reader {
  constructor(text) {
    this.text = text;
    this.at = 0;
  }

  near() {
    return `“${this.text.slice(this.at, this.at + 40).replace(/[\s,]+/g, ' ').trim()}…”`;
  }

  peek() {
    TOKEN.lastIndex = this.at;
    const m = TOKEN.exec(this.text);
    if (!m) return this.text.slice(this.at).replace(/[\s,]/g, '') ? { bad: true } : { end: true };
    return { punct: m[1], string: m[2], number: m[3], name: m[4], next: TOKEN.lastIndex };
  }

  take(expected) {
    const t = this.peek();
    if (t.bad || t.end || (expected && t.punct !== expected && t.name !== expected)) {
      throw new Untranslatable(`expected ${expected || 'a token'} at ${this.near()}`);
    }
    this.at = t.next;
    return t;
  }

  // name: value ... up to `close`; names are bare words, values JSON literals, objects or lists.
  fields(close) {
    const out = {};
    while (this.peek().punct !== close) {
      const { name } = this.take();
      if (!name) throw new Untranslatable(`expected a field name at ${this.near()}`);
      this.take(':');
      out[name] = this.value();
    }
    this.take(close);
    return out;
  }

  value() {
    const t = this.take();
    if (t.string) return JSON.parse(t.string);
    if (t.number) {
      const n = Number(t.number);
      // Beyond 2^53 only a BigInt column can take it: keep every digit.
      return Number.isSafeInteger(n) || /[.eE]/.test(t.number) ? n : { $type: 'BigInt', value: t.number };
    }
    if (t.name === 'true' || t.name === 'false') return t.name === 'true';
    if (t.name === 'null') return null;
    if (t.punct === '{') return this.fields('}');
    if (t.punct === '[') {
      const list = [];
      while (this.peek().punct !== ']') list.push(this.value());
      this.take(']');
      return list;
    }
    throw new Untranslatable(`unexpected ${t.punct || t.name} in a value`);
  }

  // { field  field(args) { ... }  field { ... } }: selected scalars are `true`, the rest nested.
  selection() {
    const out = {};
    this.take('{');
    while (this.peek().punct !== '}') {
      const { name } = this.take();
      if (!name) throw new Untranslatable(`expected a field to select at ${this.near()}`);
      const nested = {};
      if (this.peek().punct === '(') nested.arguments = (this.take('('), this.fields(')'));
      if (this.peek().punct === '{') nested.selection = this.selection();
      out[name] = Object.keys(nested).length ? { selection: {}, ...nested } : true;
    }
    this.take('}');
    return out;
  }
}

// prisma-client-py renders a Json value as a string of JSON; the JSON protocol would store that
// string as a JSON string, so it goes as a tagged Json value wherever the model has a Json field.
function tagJson(value, model, schema) {
  if (Array.isArray(value)) return value.map((v) => tagJson(v, model, schema));
  if (value === null || typeof value !== 'object' || value.$type) return value;
  const fields = schema.get(model) || new Map();
  return Object.fromEntries(Object.entries(value).map(([key, v]) => {
    const type = fields.get(key);
    if (type === 'Json') return [key, jsonValue(v)];
    return [key, tagJson(v, schema.has(type) ? type : model, schema)];
  }));
}

function jsonValue(value) {
  if (typeof value === 'string') return { $type: 'Json', value };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) =>
    [k, JSON_FILTERS.has(k) && typeof v === 'string' ? { $type: 'Json', value: v } : v]));
}

function tagSelection(selection, model, schema) {
  return Object.fromEntries(Object.entries(selection).map(([field, s]) => {
    if (s === true) return [field, s];
    const related = (schema.get(model) || new Map()).get(field);
    const inner = schema.has(related) ? related : model;
    return [field, { ...s, ...(s.arguments && { arguments: tagJson(s.arguments, inner, schema) }),
      selection: tagSelection(s.selection, inner, schema) }];
  }));
}

// One GraphQL document -> [alias, JSON-protocol request].
export function translate(document, schema) {
  const r = new Reader(document);
  const operation = r.take().name;
  if (operation !== 'query' && operation !== 'mutation') throw new Untranslatable(`not a query or mutation: ${operation}`);
  r.take('{');
  const alias = r.take().name;
  r.take(':');
  const field = r.take().name;
  const args = r.peek().punct === '(' ? (r.take('('), r.fields(')')) : {};
  const selection = r.peek().punct === '{' ? r.selection() : {};
  r.take('}');
  if (!r.peek().end) throw new Untranslatable('more than one field in a document');
  if (RAW.has(field)) return [alias, { action: field, query: { arguments: args, selection } }];
  const m = field.match(ACTION);
  if (!m || !schema.has(m[2])) throw new Untranslatable(`no model action ${field}`);
  const [, action, modelName, orThrow] = m;
  return [alias, { modelName, action: action + (orThrow || ''),
    query: { arguments: tagJson(args, modelName, schema), selection: tagSelection(selection, modelName, schema) } }];
}

export function untag(value) {
  if (Array.isArray(value)) return value.map(untag);
  if (value === null || typeof value !== 'object') return value;
  if (typeof value.$type === 'string') {
    if (!TAGGED.has(value.$type)) throw new Untranslatable(`an answer with a ${value.$type} value`);
    return value.value;
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, untag(v)]));
}

// A JSON-protocol answer `{"data": {"<action><Model>": value}}` under the document's alias.
function answer(result, alias) {
  if (!result.data) return result;
  const values = Object.values(result.data);
  return { ...result, data: { [alias]: untag(values[0]) } };
}

// prisma-client-py's request body -> [JSON-protocol body, how to map the engine's answer back].
export function request(body, schema) {
  const parsed = JSON.parse(body);
  if (Array.isArray(parsed.batch)) {
    const pairs = parsed.batch.map((q) => translate(q.query, schema));
    const json = { batch: pairs.map(([, q]) => q), ...(parsed.transaction && { transaction: {} }) };
    return [JSON.stringify(json), (out) => {
      const result = JSON.parse(out);
      if (!result.batchResult) return out;
      return JSON.stringify({ ...result, batchResult: result.batchResult.map((item, i) => answer(item, pairs[i][0])) });
    }];
  }
  if (typeof parsed.query !== 'string') throw new Untranslatable('a request without a GraphQL query');
  const [alias, json] = translate(parsed.query, schema);
  return [JSON.stringify(json), (out) => JSON.stringify(answer(JSON.parse(out), alias))];
}
