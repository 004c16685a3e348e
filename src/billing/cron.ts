/**
 * The settlement worker's schedule: a cron expression, parsed once and matched in the process's local
 * time zone (as node-cron, which this replaces, matched it). Pure: the instant to start from is passed in.
 *
 * Accepted: 5 fields (minute hour day-of-month month day-of-week) or 6 (a leading second field). Each
 * field is `*`, a number, a range `a-b` (wrapping when a > b, e.g. hours `22-2`), any of those with a
 * step `/n`, or a comma list of them. Months may be named (`jan`, `january`), days of the week too
 * (`mon`, `monday`); day of week 0 and 7 are both Sunday; `?` means `*` in the two day fields. A time
 * must match every field, day of month and day of week included (node-cron's rule, not Vixie cron's
 * "either day field"). Quartz's `L`, `W` and `#` are not accepted.
 */

export interface CronSchedule {
  readonly expression: string;
  /** Allowed values per field, indexed by value: seconds, minutes, hours, days of month (1-31), months (1-12), days of week (0-6, Sunday 0). */
  readonly second: readonly boolean[];
  readonly minute: readonly boolean[];
  readonly hour: readonly boolean[];
  readonly dayOfMonth: readonly boolean[];
  readonly month: readonly boolean[];
  readonly dayOfWeek: readonly boolean[];
}

/** Thrown by parseCron with what is wrong in words an operator can act on. */
export class CronSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CronSyntaxError';
  }
}

/** What the config error says is accepted. */
export const CRON_SYNTAX =
  'a cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), each *, a number, ' +
  'a range a-b, a step /n, or a comma list of them; month and weekday names allowed; L, W and # are not supported';

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  readonly question?: boolean;
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31, question: true },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  // 7 is Sunday too; folded onto 0 below.
  { name: 'day of week', min: 0, max: 7, names: WEEKDAYS, question: true },
];

/** A number or a name (full or its first three letters) of the field; NaN when it is neither. */
function valueOf(text: string, spec: FieldSpec): number {
  if (/^\d{1,2}$/.test(text)) return Number(text);
  const lower = text.toLowerCase();
  const i = spec.names?.findIndex((n) => lower === n || lower === n.slice(0, 3)) ?? -1;
  if (i < 0) return NaN;
  // Months are 1-based, weekdays 0-based.
  return spec.min === 1 ? i + 1 : i;
}

function parseField(text: string, spec: FieldSpec): boolean[] {
  const allowed = new Array<boolean>(spec.max + 1).fill(false);
  for (const item of text.split(',')) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(item);
    if (!m) throw new CronSyntaxError(`${spec.name} "${text}": "${item}" is not a value, range or step`);
    const [, base, stepText] = m;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!(step >= 1)) throw new CronSyntaxError(`${spec.name} "${text}": step must be 1 or more`);
    let first: number;
    let last: number;
    if (base === '*' || (base === '?' && spec.question)) {
      first = spec.min;
      last = spec.max === 7 ? 6 : spec.max;
    } else {
      const range = /^([^-]+)-([^-]+)$/.exec(base!);
      first = valueOf(range ? range[1]! : base!, spec);
      last = range ? valueOf(range[2]!, spec) : stepText === undefined ? first : NaN;
      if (!range && stepText !== undefined) throw new CronSyntaxError(`${spec.name} "${text}": a step needs * or a range before it (e.g. */5 or 0-30/5)`);
      for (const v of [first, last]) {
        if (Number.isNaN(v) || v < spec.min || v > spec.max) {
          const names = spec.names ? `a ${spec.name === 'month' ? 'month' : 'weekday'} name or ` : '';
          throw new CronSyntaxError(`${spec.name} "${text}": "${item}" is not ${names}a number in ${spec.min}-${spec.max}`);
        }
      }
    }
    // A range whose start is past its end wraps around the field (22-2 = 22, 23, 0, 1, 2).
    const size = spec.max - spec.min + 1;
    const span = (((last - first) % size) + size) % size;
    for (let offset = 0; offset <= span; offset += step) {
      let v = first + offset;
      if (v > spec.max) v -= size;
      allowed[v] = true;
    }
  }
  return allowed;
}

/** The Gregorian calendar repeats every 400 years: a schedule with no match in that span never matches. */
const SEARCH_DAYS = 146_097;

/**
 * Parses `expression` (see the module comment for the syntax). Throws CronSyntaxError saying which field is
 * wrong and why, including for a schedule no date can ever match (e.g. `0 0 30 2 *`).
 */
export function parseCron(expression: string): CronSchedule {
  const words = expression.trim().split(/\s+/);
  if (words.length !== 5 && words.length !== 6) throw new CronSyntaxError(`expected 5 or 6 fields, got ${words[0] === '' ? 0 : words.length}`);
  const fields = words.length === 5 ? ['0', ...words] : words;
  const [second, minute, hour, dayOfMonth, month, dayOfWeek] = fields.map((f, i) => parseField(f, FIELDS[i]!));
  if (dayOfWeek![7]) dayOfWeek![0] = true;
  dayOfWeek!.length = 7;
  const schedule: CronSchedule = { expression, second: second!, minute: minute!, hour: hour!, dayOfMonth: dayOfMonth!, month: month!, dayOfWeek: dayOfWeek! };
  if (nextCronMatch(schedule, Date.UTC(2000, 0, 1)) === null) throw new CronSyntaxError(`"${expression}" matches no date`);
  return schedule;
}

/** Why `expression` is not an accepted schedule, or null when it is. */
export function cronProblem(expression: string): string | null {
  try {
    parseCron(expression);
    return null;
  } catch (e) {
    if (e instanceof CronSyntaxError) return e.message;
    throw e;
  }
}

/**
 * The first instant strictly after `afterMs`, on a whole second, whose local time matches `schedule`; null
 * when none does within 400 years. Local fields are read from Date, so a daylight-saving change is followed:
 * a local time that a spring-forward skips does not occur and is not matched, and one that a fall-back
 * repeats matches on both occurrences.
 */
export function nextCronMatch(schedule: CronSchedule, afterMs: number): number | null {
  let t = Math.floor(afterMs / 1000) * 1000 + 1000;
  const lastDayMs = t + SEARCH_DAYS * 86_400_000;
  while (t <= lastDayMs) {
    const d = new Date(t);
    if (!schedule.month[d.getMonth() + 1]) {
      t = new Date(d.getFullYear(), d.getMonth() + 1, 1).getTime();
      continue;
    }
    if (!schedule.dayOfMonth[d.getDate()] || !schedule.dayOfWeek[d.getDay()]) {
      t = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime();
      continue;
    }
    // Within a day, step in elapsed time: offsets change by whole minutes, so minute and second
    // boundaries stay where they are, and time only moves forward across a daylight-saving change.
    const s = d.getSeconds();
    if (!schedule.hour[d.getHours()]) {
      t += (3600 - d.getMinutes() * 60 - s) * 1000;
      continue;
    }
    if (!schedule.minute[d.getMinutes()]) {
      t += (60 - s) * 1000;
      continue;
    }
    if (!schedule.second[s]) {
      t += 1000;
      continue;
    }
    return t;
  }
  return null;
}
