import { describe, expect, it } from 'vitest';
import { beijingDate, formatBeijing } from '../../../src/api/schemas.ts';

/** The tz database's answer, through ICU: what the fixed UTC+8 offset stands in for. */
const zone = new Intl.DateTimeFormat('sv-SE', {
  timeZone: 'Asia/Shanghai',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

describe('Beijing time as staff and students read it', () => {
  it.each([
    ['2026-09-01T08:00:00Z', '2026-09-01 16:00:00', '2026-09-01'],
    ['2026-09-01T15:59:59.999Z', '2026-09-01 23:59:59', '2026-09-01'],
    ['2026-09-01T16:00:00Z', '2026-09-02 00:00:00', '2026-09-02'],
    ['2026-12-31T16:00:00Z', '2027-01-01 00:00:00', '2027-01-01'],
    ['2028-02-28T16:00:00Z', '2028-02-29 00:00:00', '2028-02-29'],
    ['2026-07-15T03:30:00+08:00', '2026-07-15 03:30:00', '2026-07-15'],
  ])('shows %s as %s, on Beijing day %s', (instant, wallClock, day) => {
    expect(formatBeijing(new Date(instant))).toBe(wallClock);
    expect(beijingDate(new Date(instant))).toBe(day);
  });

  it('agrees with the tz database (Asia/Shanghai) for instants from 1992 to 2100: China has kept UTC+8 without DST since 1991', () => {
    const from = Date.parse('1992-01-01T00:00:00Z');
    const to = Date.parse('2100-01-01T00:00:00Z');
    let seed = 7;
    const instants: number[] = [];
    for (let i = 0; i < 5_000; i++) {
      seed = (seed * 48_271) % 2_147_483_647;
      instants.push(from + Math.floor((seed / 2_147_483_647) * (to - from)));
    }
    // Every Beijing midnight and the seconds around it, a year of them.
    for (let t = Date.parse('2026-01-01T16:00:00Z'); t < Date.parse('2027-01-01T16:00:00Z'); t += 86_400_000) instants.push(t - 1, t, t + 1);
    for (const t of instants) {
      const at = new Date(t);
      expect(formatBeijing(at), at.toISOString()).toBe(zone.format(at));
      expect(beijingDate(at), at.toISOString()).toBe(zone.format(at).slice(0, 10));
    }
  });

  it('is only an assumption before 1992: Beijing kept summer time 1986-1991, which the fixed offset ignores', () => {
    const summer1990 = new Date('1990-07-01T00:00:00Z');
    expect(zone.format(summer1990)).toBe('1990-07-01 09:00:00');
    expect(formatBeijing(summer1990)).toBe('1990-07-01 08:00:00');
  });
});
