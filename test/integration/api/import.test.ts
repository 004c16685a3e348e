import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../../src/billing/password.ts';
import { auth, PHC, startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api?.close());

function importFile(body: string | Buffer, contentType: string, query = '') {
  return api.app.inject({
    method: 'POST',
    url: `/api/v1/accounts/import${query}`,
    headers: { ...auth(api.tokens.admin), 'content-type': contentType },
    payload: body,
  });
}

async function accountCount(): Promise<number> {
  const r = await api.t.db.selectFrom('accounts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

describe('account import', () => {
  it('imports CSV with pre-hashed passwords, quoted fields, Chinese names, a BOM and CRLF', async () => {
    const csv = `\uFEFFusername,kind,name,passwordHash\r\n2026001,student,"张三, 信息学院","${PHC}"\r\n2026002,Staff,"Li ""Lee"" Si","${PHC}"\r\nvisitor.wang,temporary,,"${PHC}"\r\n`;
    const r = await importFile(csv, 'text/csv');
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ dryRun: false, total: 3, imported: 3, hashed: 0, rejected: 0, rejects: [] });
    const rows = await api.t.db.selectFrom('accounts').select(['username', 'kind', 'display_name']).where('username', 'in', ['2026001', '2026002', 'visitor.wang']).orderBy('username').execute();
    expect(rows).toEqual([
      { username: '2026001', kind: 'student', display_name: '张三, 信息学院' },
      { username: '2026002', kind: 'staff', display_name: 'Li "Lee" Si' },
      { username: 'visitor.wang', kind: 'temporary', display_name: null },
    ]);
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'account.import').executeTakeFirstOrThrow();
    expect(audit.after).toMatchObject({ imported: 3, usernames: ['2026001', '2026002', 'visitor.wang'] });
  });

  it('imports a JSON array, hashing plaintext passwords so the student can log in with them', async () => {
    const body = JSON.stringify([
      { username: 'j1', kind: 'student', name: '王五', password: 'dorm-pass-1' },
      { username: 'j2', kind: 'student', passwordHash: PHC },
    ]);
    const r = await importFile(body, 'application/json');
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({ imported: 2, hashed: 1 });
    const j1 = await api.t.db.selectFrom('accounts').select('password_hash').where('username', '=', 'j1').executeTakeFirstOrThrow();
    expect(j1.password_hash).toMatch(/^\$argon2id\$/);
    expect(await verifyPassword(j1.password_hash, 'dorm-pass-1')).toBe(true);
  });

  it('imports NDJSON, one account per line', async () => {
    const body = `{"username":"nd1","kind":"staff","passwordHash":"${PHC}"}\n\n{"username":"nd2","kind":"student","passwordHash":"${PHC}"}`;
    const r = await importFile(body, 'application/x-ndjson');
    expect(r.statusCode).toBe(201);
    expect(r.json().imported).toBe(2);
  });

  it('imports nothing when any row is bad, and reports each bad row with its line and field', async () => {
    await api.billing.createAccount({ username: 'taken1', kind: 'student', passwordHash: PHC });
    const before = await accountCount();
    const csv = [
      'username,kind,name,password,passwordHash',
      `ok1,student,,,"${PHC}"`,
      `bad name,student,,,"${PHC}"`,
      `ok2,alien,,,"${PHC}"`,
      'ok3,student,,short,',
      `ok4,student,,longenough,"${PHC}"`,
      'ok5,student,,,',
      `ok1,student,,,"${PHC}"`,
      `taken1,student,,,"${PHC}"`,
      'ok6,student',
      `ok7,student,,,not-a-hash`,
    ].join('\n');
    const r = await importFile(csv, 'text/csv');
    expect(r.statusCode).toBe(422);
    const body = r.json();
    expect(body).toMatchObject({ code: 'import_rejected', total: 10, imported: 0, rejected: 9 });
    const byRow = Object.fromEntries(body.rejects.map((x: { row: number; errors: { field: string; message: string }[] }) => [x.row, x.errors.map((e) => e.field)]));
    expect(byRow).toEqual({
      2: ['username'],
      3: ['kind'],
      4: ['password'],
      5: ['password'],
      6: ['password'],
      7: ['username'],
      8: ['username'],
      9: ['(row)'],
      10: ['passwordHash'],
    });
    expect(body.rejects.find((x: { row: number }) => x.row === 2).line).toBe(3);
    expect(body.rejects.find((x: { row: number }) => x.row === 7).errors[0].message).toContain('repeats row 1');
    expect(body.rejects.find((x: { row: number }) => x.row === 8).errors[0].message).toContain('already exists');
    expect(await accountCount()).toBe(before);
  });

  it('checks without writing on a dry run', async () => {
    const before = await accountCount();
    const r = await importFile(`username,kind,passwordHash\ndry1,student,"${PHC}"\n`, 'text/csv', '?dryRun=true');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ dryRun: true, total: 1, imported: 0, rejected: 0 });
    expect(await accountCount()).toBe(before);
  });

  it.each([
    ['an unknown CSV column', 'username,kind,balance\nx,student,100\n', 'text/csv', 400],
    ['a file that is not UTF-8', Buffer.from([0x75, 0x73, 0x65, 0x72, 0x6e, 0x61, 0x6d, 0x65, 0x0a, 0xff, 0xfe, 0x0a]), 'text/csv', 400],
    ['a truncated JSON array', `[{"username":"t1","kind":"student","passwordHash":"${PHC}"}`, 'application/json', 400],
    ['a JSON object instead of an array', '{"username":"t1"}', 'application/json', 400],
    ['an unsupported media type', 'username\nx\n', 'application/xml', 415],
  ])('refuses %s as a whole', async (_what, body, type, status) => {
    const before = await accountCount();
    const r = await importFile(body, type);
    expect(r.statusCode).toBe(status);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(await accountCount()).toBe(before);
  });

  it('reports a JSON element that is not valid JSON as a rejected row', async () => {
    const r = await importFile(`[{"username":"e1","kind":"student","passwordHash":"${PHC}"}, {"username": tru}]`, 'application/json');
    expect(r.statusCode).toBe(422);
    expect(r.json().rejects).toEqual([expect.objectContaining({ row: 2, errors: [{ field: '(row)', message: 'not valid JSON' }] })]);
  });

  it('imports 100,000 pre-hashed rows in one call within seconds, and none of them when the last row is bad', async () => {
    const rows = Array.from({ length: 100_000 }, (_, i) => `s${2_026_000_000 + i},student,学生${i},"${PHC}"`);
    const header = 'username,kind,name,passwordHash';
    const before = await accountCount();

    const bad = await importFile([header, ...rows, 'oops!,student,,'].join('\n'), 'text/csv');
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ total: 100_001, rejected: 1, rejects: [expect.objectContaining({ row: 100_001 })] });
    expect(await accountCount()).toBe(before);

    const started = performance.now();
    const good = await importFile([header, ...rows].join('\n'), 'text/csv');
    const seconds = (performance.now() - started) / 1000;
    expect(good.statusCode).toBe(201);
    expect(good.json()).toMatchObject({ imported: 100_000, rejected: 0 });
    expect(await accountCount()).toBe(before + 100_000);
    expect(seconds).toBeLessThan(30);
  }, 120_000);
});
