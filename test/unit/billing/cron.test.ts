import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { cronProblem, nextCronMatch, parseCron } from '../../../src/billing/cron.ts';
import { scheduleCron } from '../../../src/billing/worker.ts';
import { loadConfig } from '../../../src/config.ts';

// Schedules run in the process's local time zone; these tests pin it (each test file is its own process).
const originalTz = process.env.TZ;
beforeAll(() => {
  process.env.TZ = 'Asia/Shanghai';
});
afterAll(() => {
  process.env.TZ = originalTz;
});

/** The next `count` matches after `from`, as local ISO-like strings of the zone set in TZ. */
function nextMatches(expression: string, from: string, count = 3): string[] {
  const schedule = parseCron(expression);
  const out: string[] = [];
  let t = new Date(from).getTime();
  for (let i = 0; i < count; i++) {
    const next = nextCronMatch(schedule, t);
    if (next === null) throw new Error('no match');
    out.push(local(next));
    t = next;
  }
  return out;
}

function local(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

describe('SETTLE_CRON schedules', () => {
  it.each([
    ['* * * * *', '2026-09-01T08:00:30+08:00', ['2026-09-01 08:01:00', '2026-09-01 08:02:00', '2026-09-01 08:03:00']],
    ['*/2 * * * * *', '2026-09-01T08:00:00.500+08:00', ['2026-09-01 08:00:02', '2026-09-01 08:00:04', '2026-09-01 08:00:06']],
    ['* * * * * *', '2026-09-01T08:00:00+08:00', ['2026-09-01 08:00:01', '2026-09-01 08:00:02', '2026-09-01 08:00:03']],
    ['0 3 * * *', '2026-09-01T03:00:00+08:00', ['2026-09-02 03:00:00', '2026-09-03 03:00:00', '2026-09-04 03:00:00']],
    ['15,45 9-10 * * *', '2026-09-01T09:20:00+08:00', ['2026-09-01 09:45:00', '2026-09-01 10:15:00', '2026-09-01 10:45:00']],
    ['0-30/10 * * * *', '2026-09-01T08:25:00+08:00', ['2026-09-01 08:30:00', '2026-09-01 09:00:00', '2026-09-01 09:10:00']],
    ['0 22-2/2 * * *', '2026-09-01T12:00:00+08:00', ['2026-09-01 22:00:00', '2026-09-02 00:00:00', '2026-09-02 02:00:00']],
    ['0 0 1 1 *', '2026-09-01T00:00:00+08:00', ['2027-01-01 00:00:00', '2028-01-01 00:00:00', '2029-01-01 00:00:00']],
    ['0 0 1 jan,Jul *', '2026-09-01T00:00:00+08:00', ['2027-01-01 00:00:00', '2027-07-01 00:00:00', '2028-01-01 00:00:00']],
    ['30 2 * * mon-fri', '2026-09-04T12:00:00+08:00', ['2026-09-07 02:30:00', '2026-09-08 02:30:00', '2026-09-09 02:30:00']], // 09-04 is a Friday
    ['0 0 * * 7', '2026-09-01T00:00:00+08:00', ['2026-09-06 00:00:00', '2026-09-13 00:00:00', '2026-09-20 00:00:00']], // 7 = Sunday
    ['0 0 * * SUNDAY', '2026-09-01T00:00:00+08:00', ['2026-09-06 00:00:00', '2026-09-13 00:00:00', '2026-09-20 00:00:00']],
    ['0 0 ? * sun', '2026-09-01T00:00:00+08:00', ['2026-09-06 00:00:00', '2026-09-13 00:00:00', '2026-09-20 00:00:00']],
    ['0 0 31 * *', '2026-09-01T00:00:00+08:00', ['2026-10-31 00:00:00', '2026-12-31 00:00:00', '2027-01-31 00:00:00']],
    ['0 0 29 2 *', '2026-09-01T00:00:00+08:00', ['2028-02-29 00:00:00', '2032-02-29 00:00:00', '2036-02-29 00:00:00']],
  ])('"%s" after %s runs at %j', (expression, from, expected) => {
    expect(nextMatches(expression, from)).toEqual(expected);
  });

  it('needs both day fields to match, as node-cron did: "0 0 13 * fri" is Friday the 13th only', () => {
    expect(nextMatches('0 0 13 * fri', '2026-01-01T00:00:00+08:00')).toEqual(['2026-02-13 00:00:00', '2026-03-13 00:00:00', '2026-11-13 00:00:00']);
  });

  it('finds a match decades away (a Monday 29 February) without giving up', () => {
    expect(nextMatches('0 0 29 2 mon', '2026-01-01T00:00:00+08:00', 1)).toEqual(['2044-02-29 00:00:00']);
  });

  it('runs in local time: "0 3 * * *" is 03:00 in Beijing, 19:00 UTC the day before', () => {
    const next = nextCronMatch(parseCron('0 3 * * *'), Date.parse('2026-09-01T12:00:00Z'));
    expect(new Date(next!).toISOString()).toBe('2026-09-01T19:00:00.000Z');
  });

  it.each([
    ['', 'expected 5 or 6 fields, got 0'],
    ['* * * *', 'expected 5 or 6 fields, got 4'],
    ['* * * * * * *', 'expected 5 or 6 fields, got 7'],
    ['60 * * * *', 'minute "60": "60" is not a number in 0-59'],
    ['* 24 * * *', 'hour "24": "24" is not a number in 0-23'],
    ['* * 0 * *', 'day of month "0": "0" is not a number in 1-31'],
    ['* * * 13 *', 'month "13": "13" is not a month name or a number in 1-12'],
    ['* * * foo *', 'month "foo": "foo" is not a month name or a number in 1-12'],
    ['* * * * 8', 'day of week "8": "8" is not a weekday name or a number in 0-7'],
    ['*/0 * * * *', 'minute "*/0": step must be 1 or more'],
    ['5/15 * * * *', 'minute "5/15": a step needs * or a range before it (e.g. */5 or 0-30/5)'],
    ['* * L * *', 'day of month "L": "L" is not a number in 1-31'],
    ['* * 15W * *', 'day of month "15W": "15W" is not a number in 1-31'],
    ['* * * * 5#3', 'day of week "5#3": "5#3" is not a weekday name or a number in 0-7'],
    ['? * * * *', 'minute "?": "?" is not a number in 0-59'],
    ['1,,2 * * * *', 'minute "1,,2": "" is not a value, range or step'],
    ['0 0 30 2 *', '"0 0 30 2 *" matches no date'],
    ['0 0 31 4,6,9,11 *', '"0 0 31 4,6,9,11 *" matches no date'],
  ])('rejects "%s": %s', (expression, problem) => {
    expect(cronProblem(expression)).toBe(problem);
  });

  it('stops start-up on a bad SETTLE_CRON, saying what is wrong and what is accepted', () => {
    expect(() => loadConfig({ SETTLE_CRON: '*/5 * * * L' })).toThrow(
      /SETTLE_CRON: day of week "L": "L" is not a weekday name or a number in 0-7; expected a cron expression of 5 fields .* L, W and # are not supported/,
    );
    expect(loadConfig({ SETTLE_CRON: ' */2 * * * * * ' }).settle.cron).toBe('*/2 * * * * *');
  });
});

describe('SETTLE_CRON across a daylight-saving change (America/New_York)', () => {
  beforeAll(() => {
    process.env.TZ = 'America/New_York';
  });
  afterAll(() => {
    process.env.TZ = 'Asia/Shanghai';
  });

  it('skips a local time the spring-forward removes, and keeps the hourly beat', () => {
    // 2026-03-08 02:00 EST becomes 03:00 EDT.
    expect(nextMatches('30 2 * * *', '2026-03-07T12:00:00-05:00')).toEqual(['2026-03-09 02:30:00', '2026-03-10 02:30:00', '2026-03-11 02:30:00']);
    expect(nextMatches('0 * * * *', '2026-03-08T00:30:00-05:00')).toEqual(['2026-03-08 01:00:00', '2026-03-08 03:00:00', '2026-03-08 04:00:00']);
  });

  it('matches a local time the fall-back repeats on both occurrences, one real hour apart', () => {
    // 2026-11-01 02:00 EDT becomes 01:00 EST.
    const schedule = parseCron('30 1 * * *');
    const first = nextCronMatch(schedule, Date.parse('2026-11-01T00:00:00-04:00'))!;
    const second = nextCronMatch(schedule, first)!;
    expect(new Date(first).toISOString()).toBe('2026-11-01T05:30:00.000Z');
    expect(new Date(second).toISOString()).toBe('2026-11-01T06:30:00.000Z');
    expect(local(nextCronMatch(schedule, second)!)).toBe('2026-11-02 01:30:00');
  });
});

describe('scheduleCron', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ticks at each match and not between them', () => {
    vi.useFakeTimers({ now: new Date('2026-09-01T08:00:00.200+08:00') });
    const ticks: string[] = [];
    const task = scheduleCron(parseCron('*/2 * * * * *'), () => ticks.push(local(Date.now())));
    vi.advanceTimersByTime(1_700);
    expect(ticks).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(ticks).toEqual(['2026-09-01 08:00:02']);
    vi.advanceTimersByTime(4_000);
    expect(ticks).toEqual(['2026-09-01 08:00:02', '2026-09-01 08:00:04', '2026-09-01 08:00:06']);
    task.stop();
    vi.advanceTimersByTime(10_000);
    expect(ticks).toHaveLength(3);
  });

  it('reaches a match months away in hops of a day, without overflowing setTimeout', () => {
    vi.useFakeTimers({ now: new Date('2026-09-01T00:00:00+08:00') });
    let ticks = 0;
    const task = scheduleCron(parseCron('0 0 1 1 *'), () => ticks++);
    vi.advanceTimersByTime(Date.parse('2027-01-01T00:00:00+08:00') - Date.now() - 1);
    expect(ticks).toBe(0);
    vi.advanceTimersByTime(1);
    expect(ticks).toBe(1);
    task.stop();
  });

  it('ticks once, late, after missing matches (a blocked loop or a suspended machine), then keeps the beat', () => {
    let now = Date.parse('2026-09-01T08:00:00+08:00');
    const pending: (() => void)[] = [];
    let ticks = 0;
    const task = scheduleCron(parseCron('* * * * *'), () => ticks++, {
      now: () => now,
      setTimeout: (fn) => pending.push(fn),
      clearTimeout: () => undefined,
    });
    // The timer for 08:01 fires at 08:05:30.
    now = Date.parse('2026-09-01T08:05:30+08:00');
    pending.shift()!();
    expect(ticks).toBe(1);
    // The next one waits for 08:06, not for the matches it missed.
    now = Date.parse('2026-09-01T08:06:00+08:00');
    pending.shift()!();
    expect(ticks).toBe(2);
    task.stop();
  });

  it('waits again when its timer fires before the match (the wall clock was set back)', () => {
    let now = Date.parse('2026-09-01T08:00:00+08:00');
    const waits: number[] = [];
    const pending: (() => void)[] = [];
    let ticks = 0;
    const task = scheduleCron(parseCron('* * * * *'), () => ticks++, {
      now: () => now,
      setTimeout: (fn, ms) => {
        waits.push(ms);
        pending.push(fn);
      },
      clearTimeout: () => undefined,
    });
    now -= 30_000;
    pending.shift()!();
    expect(ticks).toBe(0);
    expect(waits).toEqual([60_000, 90_000]);
    task.stop();
  });
});
