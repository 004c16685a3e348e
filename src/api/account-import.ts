import os from 'node:os';
import { sql, type Kysely, type Transaction } from 'kysely';
import { z } from 'zod';
import type { AccountKind, Database } from '../db/schema.ts';
import { ApiProblem } from './problem.ts';

/** Rows one import may hold: a year's intake with room to spare. */
export const MAX_IMPORT_ROWS = 200_000;
/** Bytes one import may send (a 100k-row file with hashes is about 15 MB). */
export const MAX_IMPORT_BYTES = 64 * 1024 * 1024;
/** Plaintext passwords one import may hash: argon2id costs ~30 ms of CPU each, so more would take too long for one request. */
export const MAX_PLAINTEXT_ROWS = 20_000;
/** Rejects listed in the report; the count covers them all. */
export const MAX_LISTED_REJECTS = 1000;

/** One data row of an import as parsed, before validation. */
export interface RawRow {
  /** 1-based position among the data rows. */
  readonly row: number;
  /** Physical line of a CSV or NDJSON row, for the person fixing the file. */
  readonly line: number | null;
  readonly values: Record<string, unknown> | null;
  /** Set when the row could not even be parsed. */
  readonly parseError?: string;
}

export interface RowReject {
  readonly row: number;
  readonly line: number | null;
  readonly username: string | null;
  readonly errors: { field: string; message: string }[];
}

export interface ValidRow {
  readonly username: string;
  readonly kind: AccountKind;
  readonly name: string | null;
  readonly password: string | null;
  readonly passwordHash: string | null;
}

/** Reads a request body as text chunks, refusing more than `maxBytes`; multi-byte characters may span chunks. */
export async function* textChunks(body: AsyncIterable<Buffer | string>, maxBytes = MAX_IMPORT_BYTES): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let bytes = 0;
  let first = true;
  try {
    for await (const chunk of body) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      bytes += buf.length;
      if (bytes > maxBytes) throw new ApiProblem(413, 'too_large', `the import is larger than ${maxBytes} bytes; split it / 文件过大，请拆分`);
      let text = decoder.decode(buf, { stream: true });
      if (first && text.length > 0) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      if (text) yield text;
    }
    const rest = decoder.decode();
    if (rest) yield rest;
  } catch (e) {
    if (e instanceof TypeError && /encoded data|decode/i.test(e.message)) {
      throw new ApiProblem(400, 'invalid', 'the file is not valid UTF-8 (save it as CSV UTF-8) / 文件须为 UTF-8 编码');
    }
    throw e;
  }
}

/** RFC 4180 records (quoted fields, "" escapes, CRLF or LF), streamed; each with its starting line. */
export async function* parseCsvRecords(chunks: AsyncIterable<string>): AsyncGenerator<{ line: number; fields: string[] }> {
  const special = /[",\r\n]/g;
  let field = '';
  let fields: string[] = [];
  let inQuotes = false;
  let afterQuote = false;
  let skipLf = false;
  let line = 1;
  let recordLine = 1;
  let quotedOpenLine = 0;
  for await (const s of chunks) {
    const out: { line: number; fields: string[] }[] = [];
    let i = 0;
    while (i < s.length) {
      if (skipLf) {
        skipLf = false;
        if (s[i] === '\n') {
          i++;
          continue;
        }
      }
      if (inQuotes) {
        const q = s.indexOf('"', i);
        const part = q === -1 ? s.slice(i) : s.slice(i, q);
        for (let k = part.indexOf('\n'); k !== -1; k = part.indexOf('\n', k + 1)) line++;
        field += part;
        if (q === -1) break;
        inQuotes = false;
        afterQuote = true;
        i = q + 1;
        continue;
      }
      if (afterQuote) {
        afterQuote = false;
        if (s[i] === '"') {
          field += '"';
          inQuotes = true;
          i++;
          continue;
        }
      }
      special.lastIndex = i;
      const m = special.exec(s);
      const j = m ? m.index : s.length;
      field += s.slice(i, j);
      if (!m) break;
      i = j + 1;
      const c = m[0];
      if (c === '"') {
        if (field === '') {
          inQuotes = true;
          quotedOpenLine = line;
        } else {
          field += '"';
        }
      } else if (c === ',') {
        fields.push(field);
        field = '';
      } else {
        if (c === '\r') skipLf = true;
        fields.push(field);
        if (!(fields.length === 1 && fields[0] === '')) out.push({ line: recordLine, fields });
        fields = [];
        field = '';
        line++;
        recordLine = line;
      }
    }
    yield* out;
  }
  if (inQuotes) throw new ApiProblem(400, 'invalid', `unterminated quoted field opened on line ${quotedOpenLine} / 引号未闭合`);
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    yield { line: recordLine, fields };
  }
}

const COLUMN_ALIASES: Record<string, string> = {
  username: 'username',
  user: 'username',
  account: 'username',
  kind: 'kind',
  type: 'kind',
  name: 'name',
  display_name: 'name',
  displayname: 'name',
  password: 'password',
  password_hash: 'passwordHash',
  passwordhash: 'passwordHash',
};

/** CSV with a header row (username, kind, name, password or passwordHash) as raw rows. */
export async function* csvRows(chunks: AsyncIterable<string>): AsyncGenerator<RawRow> {
  let columns: string[] | null = null;
  let row = 0;
  for await (const rec of parseCsvRecords(chunks)) {
    if (columns === null) {
      const names = rec.fields.map((f) => f.trim().toLowerCase());
      const unknown = names.filter((n) => !(n in COLUMN_ALIASES));
      if (unknown.length > 0) {
        throw new ApiProblem(400, 'invalid', `unknown CSV column(s): ${unknown.join(', ')}; expected username, kind, name, password or passwordHash / 未知列`);
      }
      columns = names.map((n) => COLUMN_ALIASES[n]!);
      const dup = columns.find((c, i) => columns!.indexOf(c) !== i);
      if (dup) throw new ApiProblem(400, 'invalid', `CSV column ${dup} appears twice`);
      if (!columns.includes('username')) throw new ApiProblem(400, 'invalid', 'the CSV header must name a username column');
      continue;
    }
    row++;
    if (rec.fields.length !== columns.length) {
      const hint = rec.fields.length > columns.length ? ' (quote values that contain commas, such as a passwordHash: "$argon2id$v=19$m=...,t=...,p=...$...")' : '';
      yield { row, line: rec.line, values: null, parseError: `expected ${columns.length} fields, found ${rec.fields.length}${hint}` };
      continue;
    }
    const values: Record<string, unknown> = {};
    columns.forEach((c, k) => {
      const v = rec.fields[k]!;
      // Empty cells are absent values; the username keeps its exact text for the report.
      if (v !== '') values[c] = c === 'kind' ? v.trim().toLowerCase() : v;
    });
    yield { row, line: rec.line, values };
  }
  if (columns === null) throw new ApiProblem(400, 'invalid', 'the file is empty: expected a header row and account rows');
}

/** NDJSON: one JSON object per line. */
export async function* ndjsonRows(chunks: AsyncIterable<string>): AsyncGenerator<RawRow> {
  let pending = '';
  let line = 0;
  let row = 0;
  const parse = (text: string, at: number): RawRow | null => {
    if (text.trim() === '') return null;
    row++;
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return { row, line: at, values: null, parseError: 'each line must be a JSON object' };
      return { row, line: at, values: v as Record<string, unknown> };
    } catch {
      return { row, line: at, values: null, parseError: 'not valid JSON' };
    }
  };
  for await (const s of chunks) {
    pending += s;
    let nl = pending.indexOf('\n');
    const out: RawRow[] = [];
    while (nl !== -1) {
      line++;
      const r = parse(pending.slice(0, nl), line);
      if (r) out.push(r);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
    yield* out;
  }
  line++;
  const last = parse(pending, line);
  if (last) yield last;
}

/**
 * A JSON array of objects, streamed: each top-level element is cut out by tracking strings and
 * nesting, then parsed on its own, so 100k rows never sit in one JSON.parse.
 */
export async function* jsonArrayRows(chunks: AsyncIterable<string>): AsyncGenerator<RawRow> {
  let started = false;
  let done = false;
  let depth = 0;
  let inString = false;
  let escape = false;
  let buf = '';
  let row = 0;
  const emit = (text: string): RawRow => {
    row++;
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return { row, line: null, values: null, parseError: 'each element must be an object' };
      return { row, line: null, values: v as Record<string, unknown> };
    } catch {
      return { row, line: null, values: null, parseError: 'not valid JSON' };
    }
  };
  for await (const s of chunks) {
    const out: RawRow[] = [];
    let segStart = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (!started || done) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (!started && c === 0x5b /* [ */) {
          started = true;
          depth = 1;
          segStart = i + 1;
          continue;
        }
        throw new ApiProblem(400, 'invalid', done ? 'unexpected data after the JSON array' : 'a JSON import must be an array of account objects: [{"username": ...}, ...]');
      }
      if (inString) {
        if (escape) escape = false;
        else if (c === 0x5c /* \ */) escape = true;
        else if (c === 0x22 /* " */) inString = false;
        continue;
      }
      if (c === 0x22) inString = true;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (depth === 1 && c === 0x5d) {
          buf += s.slice(segStart, i);
          if (buf.trim() !== '') out.push(emit(buf));
          else if (row > 0) throw new ApiProblem(400, 'invalid', 'trailing comma in the JSON array');
          buf = '';
          done = true;
          depth = 0;
          continue;
        }
        depth--;
      } else if (c === 0x2c /* , */ && depth === 1) {
        buf += s.slice(segStart, i);
        if (buf.trim() === '') throw new ApiProblem(400, 'invalid', 'empty element in the JSON array');
        out.push(emit(buf));
        buf = '';
        segStart = i + 1;
      }
    }
    if (started && !done) buf += s.slice(segStart);
    yield* out;
  }
  if (!started) throw new ApiProblem(400, 'invalid', 'the body is empty: expected a JSON array of accounts');
  if (!done) throw new ApiProblem(400, 'invalid', 'the JSON array is not closed (truncated upload?)');
}

/**
 * Validates rows as they stream in: each field, usernames repeated within the file, and the row and
 * plaintext limits. Rejects are collected, never thrown, so one call reports every bad row.
 */
export async function validateRows(
  rows: AsyncIterable<RawRow>,
  rowSchema: z.ZodType<ValidRow>,
): Promise<{ valid: ValidRow[]; validRowNumbers: number[]; rejects: RowReject[]; rejected: number; total: number; plaintext: number }> {
  const valid: ValidRow[] = [];
  const validRowNumbers: number[] = [];
  const rejects: RowReject[] = [];
  let rejected = 0;
  let total = 0;
  let plaintext = 0;
  const seen = new Map<string, number>();
  const reject = (r: RowReject) => {
    rejected++;
    if (rejects.length < MAX_LISTED_REJECTS) rejects.push(r);
  };
  for await (const raw of rows) {
    total++;
    if (total > MAX_IMPORT_ROWS) throw new ApiProblem(413, 'too_large', `an import may hold at most ${MAX_IMPORT_ROWS} rows; split the file / 单次最多导入 ${MAX_IMPORT_ROWS} 行`);
    const username = typeof raw.values?.username === 'string' ? raw.values.username : null;
    if (raw.values === null) {
      reject({ row: raw.row, line: raw.line, username, errors: [{ field: '(row)', message: raw.parseError ?? 'unreadable row' }] });
      continue;
    }
    const parsed = rowSchema.safeParse(raw.values);
    if (!parsed.success) {
      reject({
        row: raw.row,
        line: raw.line,
        username,
        errors: parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(row)', message: i.message })),
      });
      continue;
    }
    const v = parsed.data;
    const first = seen.get(v.username);
    if (first !== undefined) {
      reject({ row: raw.row, line: raw.line, username: v.username, errors: [{ field: 'username', message: `repeats row ${first} of this file / 与第 ${first} 行重复` }] });
      continue;
    }
    seen.set(v.username, raw.row);
    if (v.password !== null) plaintext++;
    valid.push(v);
    validRowNumbers.push(raw.row);
  }
  return { valid, validRowNumbers, rejects, rejected, total, plaintext };
}

/** Usernames among `usernames` that already have an account (accounts' unique index, in chunks). */
export async function existingUsernames(db: Kysely<Database>, usernames: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < usernames.length; i += 20_000) {
    const chunk = usernames.slice(i, i + 20_000);
    const r = await sql<{ username: string }>`SELECT username FROM accounts WHERE username = ANY(${chunk}::text[])`.execute(db);
    for (const row of r.rows) found.add(row.username);
  }
  return found;
}

/**
 * Hashes plaintext passwords in parallel, never more at once than the threads that run them (the
 * libuv pool, and the CPUs): more would only queue and starve other work of the pool.
 */
export async function hashAll(rows: ValidRow[], hash: (password: string) => Promise<string>): Promise<string[]> {
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const concurrency = Math.max(1, Math.min(poolSize, os.availableParallelism()));
  const out = new Array<string>(rows.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < rows.length; i = next++) {
      const r = rows[i]!;
      out[i] = r.passwordHash ?? (await hash(r.password!));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

/**
 * Inserts the accounts with multi-row inserts (unnest of arrays, 10k rows a statement) in the caller's
 * transaction; returns each new account's id by username.
 */
export async function insertAccounts(trx: Transaction<Database>, rows: readonly ValidRow[], hashes: readonly string[]): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (let i = 0; i < rows.length; i += 10_000) {
    const chunk = rows.slice(i, i + 10_000);
    const r = await sql<{ id: number; username: string }>`
      INSERT INTO accounts (username, kind, display_name, password_hash)
      SELECT * FROM unnest(${chunk.map((c) => c.username)}::text[], ${chunk.map((c) => c.kind)}::text[],
                           ${chunk.map((c) => c.name)}::text[], ${hashes.slice(i, i + 10_000)}::text[])
      RETURNING id, username`.execute(trx);
    for (const row of r.rows) ids.set(row.username, row.id);
  }
  return ids;
}

/** Stores sealed CHAP credentials for the rows that came with a plaintext password, 10k a statement. */
export async function storeChapCredentials(
  trx: Transaction<Database>,
  rows: readonly ValidRow[],
  hashes: readonly string[],
  ids: ReadonlyMap<string, number>,
  seal: (accountId: number, passwordHash: string, password: string) => Buffer,
): Promise<number> {
  const sealed: { id: number; credential: Buffer }[] = [];
  rows.forEach((r, i) => {
    if (r.password === null) return;
    const id = ids.get(r.username)!;
    sealed.push({ id, credential: seal(id, hashes[i]!, r.password) });
  });
  for (let i = 0; i < sealed.length; i += 10_000) {
    const chunk = sealed.slice(i, i + 10_000);
    await sql`
      UPDATE accounts a SET chap_credential = u.credential
      FROM unnest(${chunk.map((c) => c.id)}::bigint[], ${chunk.map((c) => c.credential)}::bytea[]) AS u(id, credential)
      WHERE a.id = u.id`.execute(trx);
  }
  return sealed.length;
}
