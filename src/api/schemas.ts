import { z } from 'zod';
import { formatYuan, type Account, type Cycle, type LedgerEntry } from '../billing/billing.ts';
import { USERNAME_PATTERN } from '../billing/account-store.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import type { Session } from './session-store.ts';

/** The largest amount one request may move: one million yuan, as the money core allows. */
export const MAX_AMOUNT_FEN = 100_000_000;

const FEN_MESSAGE = 'must be an integer number of fen (分), e.g. 5000 for 50.00 yuan; never a decimal / 金额须为整数（分）';

/** Money in a request: a positive whole number of fen, never a float or a string. */
export const PositiveFen = z
  .int({ error: FEN_MESSAGE })
  .min(1, 'must be > 0 fen')
  .max(MAX_AMOUNT_FEN, `must be <= ${MAX_AMOUNT_FEN} fen`)
  .describe('Amount in fen (1 yuan = 100 fen), a positive integer');

/** A signed staff correction in fen (not zero). */
export const SignedFen = z
  .int({ error: FEN_MESSAGE })
  .min(-MAX_AMOUNT_FEN, `must be >= -${MAX_AMOUNT_FEN} fen`)
  .max(MAX_AMOUNT_FEN, `must be <= ${MAX_AMOUNT_FEN} fen`)
  .refine((v) => v !== 0, 'must not be 0')
  .describe('Amount in fen, positive to credit and negative to debit');

/** Money in a reply: integer fen; a yuan string sits beside it for display. */
export const Fen = z.int().describe('Integer fen (1 yuan = 100 fen)');
export const Yuan = z
  .string()
  .regex(/^-?\d+\.\d{2}$/)
  .describe('The same amount in yuan, formatted for display (e.g. "50.00"); never parse it for arithmetic');

export const Instant = z.iso.datetime().describe('An instant, ISO 8601 in UTC');

export const Username = z
  .string()
  .regex(USERNAME_PATTERN, 'must be 1-64 of letters, digits and . _ @ - (starting with a letter or digit)')
  .describe('The account name: a campus-card number, or an issued name for temporary staff');

export const AccountKind = z.enum(['student', 'staff', 'temporary']);
export const Area = z.enum(['dorm', 'office']);

export const Reason = z.string().trim().min(1, 'a reason is required / 请填写原因').max(500).describe('Why, in words a colleague will understand later');

export const UsernameParams = z.object({ username: Username });
export const IdParams = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

/** A page size; small by default, bounded so a list request stays cheap. */
export const Limit = z.coerce.number().int().min(1).max(500).default(50);

/**
 * An opaque keyset cursor (base64url of the last seen key). Pages stay stable while rows are added:
 * a cursor names a position in an immutable order, never an offset.
 */
export const Cursor = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'not a cursor from a previous page').describe('nextCursor from the previous page');

export function encodeCursor(key: number): string {
  return Buffer.from(String(key)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const n = Number(Buffer.from(cursor, 'base64url').toString());
  return Number.isSafeInteger(n) && n > 0 ? n : -1;
}

export function page<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  });
}

export const FieldErrorSchema = z.object({
  in: z.string(),
  path: z.string(),
  message: z.string(),
});

export const Problem = z
  .looseObject({
    type: z.string().describe('A URN naming the kind of problem'),
    title: z.string(),
    status: z.int(),
    detail: z.string().describe('What is wrong, for a person to read (Chinese and English where it helps)'),
    code: z.string().describe('Stable machine-readable code: invalid, unauthorized, forbidden, not_found, conflict, ...'),
    requestId: z.string().optional(),
    errors: z.array(FieldErrorSchema).optional().describe('Each bad field, for validation problems'),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

export const problemResponse = {
  description: 'RFC 9457 problem details (application/problem+json)',
  content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } },
};

/**
 * Beijing time is UTC+8 all year: China has observed no daylight saving time since 1991 (Asia/Shanghai in
 * the tz database), so a fixed offset gives the same wall-clock time as the zone for any instant from
 * 1992 on. A fixed offset instead of Intl.DateTimeFormat keeps ICU's locale and zone data out of the
 * service's memory (several MiB of resident pages, issue 5). test/unit/api/beijing-time.test.ts holds it
 * to the tz database.
 */
const BEIJING_OFFSET_MS = 8 * 3_600_000;

/** The ISO-8601 text of `at` shifted to Beijing wall-clock time: "2026-09-01T16:00:00.000Z" for 08:00 UTC. */
function beijingIso(at: Date): string {
  return new Date(at.getTime() + BEIJING_OFFSET_MS).toISOString();
}

/** An instant as Beijing wall-clock time, "2026-09-01 16:00:00": the school's time for people. */
export function formatBeijing(at: Date): string {
  const iso = beijingIso(at);
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

/** The Beijing date of an instant, "2026-09-01": the day a report counts it in. */
export function beijingDate(at: Date): string {
  return beijingIso(at).slice(0, 10);
}

export const LedgerEntryDto = z
  .object({
    id: z.int(),
    kind: z.enum(['top-up', 'settlement', 'adjustment', 'refund']),
    amountFen: Fen,
    amountYuan: Yuan,
    balanceAfterFen: Fen,
    balanceAfterYuan: Yuan,
    channel: z.string().nullable(),
    orderId: z.string().nullable(),
    cycleId: z.int().nullable(),
    actor: z.string().nullable(),
    reason: z.string().nullable(),
    effectiveAt: Instant,
    createdAt: Instant,
  })
  .meta({ id: 'LedgerEntry' });

export function toLedgerEntryDto(e: LedgerEntry): z.infer<typeof LedgerEntryDto> {
  return {
    id: e.id,
    kind: e.kind,
    amountFen: e.amountFen,
    amountYuan: formatYuan(e.amountFen),
    balanceAfterFen: e.balanceAfterFen,
    balanceAfterYuan: formatYuan(e.balanceAfterFen),
    channel: e.channel,
    orderId: e.orderId,
    cycleId: e.cycleId,
    actor: e.actor,
    reason: e.reason,
    effectiveAt: e.effectiveAt.toISOString(),
    createdAt: e.createdAt.toISOString(),
  };
}

export const AccountDto = z
  .object({
    id: z.int(),
    username: Username,
    kind: AccountKind,
    name: z.string().nullable(),
    status: z.enum(['active', 'disabled']),
    balanceFen: Fen,
    balanceYuan: Yuan,
    createdAt: Instant,
    updatedAt: Instant,
  })
  .meta({ id: 'Account' });

export function toAccountDto(a: Account): z.infer<typeof AccountDto> {
  return {
    id: a.id,
    username: a.username,
    kind: a.kind,
    name: a.displayName,
    status: a.status,
    balanceFen: a.balanceFen,
    balanceYuan: formatYuan(a.balanceFen),
    createdAt: a.createdAt.toISOString(),
    updatedAt: a.updatedAt.toISOString(),
  };
}

export const CycleDto = z
  .object({
    id: z.int(),
    seq: z.int().describe('1 for the account’s first cycle, then 2, 3, ...'),
    startedAt: Instant,
    endsAt: Instant.describe('The anniversary: the cycle is settled at this instant'),
    feeFen: Fen,
    feeYuan: Yuan,
    openedBy: z.enum(['login', 'renewal']),
    status: z.enum(['running', 'due', 'settled']).describe('due: ended, waiting for the settlement worker'),
    settledAt: Instant.nullable(),
  })
  .meta({ id: 'Cycle' });

export function toCycleDto(c: Cycle, now: Date): z.infer<typeof CycleDto> {
  const status = c.settledAt ? 'settled' : c.endsAt.getTime() <= now.getTime() ? 'due' : 'running';
  return {
    id: c.id,
    seq: c.seq,
    startedAt: c.startedAt.toISOString(),
    endsAt: c.endsAt.toISOString(),
    feeFen: c.feeFen,
    feeYuan: formatYuan(c.feeFen),
    openedBy: c.openedBy,
    status,
    settledAt: c.settledAt ? c.settledAt.toISOString() : null,
  };
}

export const SessionDto = z
  .object({
    id: z.int(),
    sessionId: z.string().describe('Acct-Session-Id as the NAS sent it'),
    username: z.string(),
    accountId: z.int().nullable(),
    nasId: z.int().nullable(),
    nasIp: z.string(),
    nasIdentifier: z.string().nullable(),
    nasPortId: z.string().nullable(),
    area: Area,
    framedIp: z.string().nullable(),
    callingStationId: z.string().nullable().describe('Usually the client MAC address'),
    startedAt: Instant.nullable(),
    updatedAt: Instant,
    stoppedAt: Instant.nullable(),
    online: z.boolean(),
    sessionSeconds: z.int(),
    inputOctets: z.int(),
    outputOctets: z.int(),
    terminateCause: z.string().nullable(),
  })
  .meta({ id: 'Session' });

export function toSessionDto(s: Session): z.infer<typeof SessionDto> {
  return {
    id: s.id,
    sessionId: s.sessionId,
    username: s.username,
    accountId: s.accountId,
    nasId: s.nasId,
    nasIp: s.nasIp,
    nasIdentifier: s.nasIdentifier,
    nasPortId: s.nasPortId,
    area: s.area,
    framedIp: s.framedIp,
    callingStationId: s.callingStationId,
    startedAt: s.startedAt ? s.startedAt.toISOString() : null,
    updatedAt: s.updatedAt.toISOString(),
    stoppedAt: s.stoppedAt ? s.stoppedAt.toISOString() : null,
    online: s.stoppedAt === null,
    sessionSeconds: s.sessionSeconds,
    inputOctets: s.inputOctets,
    outputOctets: s.outputOctets,
    terminateCause: s.terminateCause,
  };
}

export const DisconnectOutcomeDto = z
  .object({
    sessionId: z.int(),
    nasIp: z.string(),
    outcome: z.enum(['ack', 'nak', 'timeout', 'error']).describe('ack: the NAS ended the session; nak: it refused; timeout: no answer'),
    errorCause: z.int().nullable().describe('RFC 5176 Error-Cause from a NAK, e.g. 503 Session Context Not Found'),
    attempts: z.int(),
  })
  .meta({ id: 'DisconnectOutcome' });
