import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { formatYuan } from '../../billing/billing.ts';
import type { ApiDeps } from '../app.ts';
import { ApiProblem } from '../problem.ts';
import { arrears, cyclesDue, onlineCounts, revenueDaily, SCHOOL_TIME_ZONE } from '../report-store.ts';
import { AccountKind, Area, beijingDate, Cursor, decodeCursor, encodeCursor, Fen, Instant, Limit, Yuan } from '../schemas.ts';

const Day = z.iso.date({ error: 'must be a date YYYY-MM-DD' });
const DAY_MS = 86_400_000;

function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

const RevenueDay = z.object({
  day: z.string().describe('A Beijing date (Asia/Shanghai), YYYY-MM-DD'),
  settlementFen: Fen.describe('Cycle fees settled that day: the revenue'),
  settlementYuan: Yuan,
  settlements: z.int(),
  topUpFen: Fen,
  topUpYuan: Yuan,
  topUps: z.int(),
  refundFen: Fen,
  refundYuan: Yuan,
  adjustmentFen: Fen.describe('Net staff adjustments (signed)'),
  adjustmentYuan: Yuan,
});

export const reportRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db, billing } = deps;

  app.get(
    '/reports/revenue-daily',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['reports'],
        summary: 'Settlement revenue per day (Beijing days), with top-ups, refunds and adjustments',
        description: 'Defaults to the last 30 days up to today; at most 366 days per request. Days with nothing show zeros.',
        querystring: z.object({ from: Day.optional(), to: Day.optional() }),
        response: {
          200: z.object({ timeZone: z.literal(SCHOOL_TIME_ZONE), from: z.string(), to: z.string(), days: z.array(RevenueDay), totalSettlementFen: Fen, totalSettlementYuan: Yuan }),
        },
      },
    },
    async (req) => {
      const to = req.query.to ?? beijingDate(deps.clock.now());
      const from = req.query.from ?? addDays(to, -29);
      const span = (Date.parse(to) - Date.parse(from)) / DAY_MS;
      if (span < 0) throw new ApiProblem(400, 'invalid', '`from` must not be after `to`');
      if (span > 365) throw new ApiProblem(400, 'invalid', 'at most 366 days per request');
      const days = await revenueDaily(db, from, to);
      const total = days.reduce((s, d) => s + Number(d.settlementFen), 0);
      return {
        timeZone: SCHOOL_TIME_ZONE,
        from,
        to,
        days: days.map((d) => ({
          day: d.day,
          settlementFen: Number(d.settlementFen),
          settlementYuan: formatYuan(Number(d.settlementFen)),
          settlements: Number(d.settlements),
          topUpFen: Number(d.topUpFen),
          topUpYuan: formatYuan(Number(d.topUpFen)),
          topUps: Number(d.topUps),
          refundFen: Number(d.refundFen),
          refundYuan: formatYuan(Number(d.refundFen)),
          adjustmentFen: Number(d.adjustmentFen),
          adjustmentYuan: formatYuan(Number(d.adjustmentFen)),
        })),
        totalSettlementFen: total,
        totalSettlementYuan: formatYuan(total),
      };
    },
  );

  app.get(
    '/reports/arrears',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['reports'],
        summary: 'Accounts in arrears (欠费): no running cycle and a balance below the threshold',
        description: 'Active accounts only. By default only accounts that had a cycle before; `includeNeverUsed=true` adds the rest.',
        querystring: z.object({
          includeNeverUsed: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
          cursor: Cursor.optional(),
          limit: Limit,
        }),
        response: {
          200: z.object({
            thresholdFen: Fen,
            thresholdYuan: Yuan,
            total: z.int(),
            items: z.array(
              z.object({
                username: z.string(),
                kind: AccountKind,
                name: z.string().nullable(),
                balanceFen: Fen,
                balanceYuan: Yuan,
                shortfallFen: Fen,
                shortfallYuan: Yuan,
                lastCycleEndedAt: Instant.nullable(),
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (req) => {
      const afterId = decodeCursor(req.query.cursor);
      if (afterId === -1) throw new ApiProblem(400, 'invalid', 'cursor is not one this API returned');
      const now = deps.clock.now();
      const thresholdFen = billing.tariffNow(now).thresholdFen;
      const { limit } = req.query;
      const r = await arrears(db, { thresholdFen, now, includeNeverUsed: req.query.includeNeverUsed, afterId, limit: limit + 1 });
      const items = r.items.slice(0, limit);
      return {
        thresholdFen,
        thresholdYuan: formatYuan(thresholdFen),
        total: r.total,
        items: items.map((a) => ({
          username: a.username,
          kind: a.kind,
          name: a.displayName,
          balanceFen: a.balanceFen,
          balanceYuan: formatYuan(a.balanceFen),
          shortfallFen: thresholdFen - a.balanceFen,
          shortfallYuan: formatYuan(thresholdFen - a.balanceFen),
          lastCycleEndedAt: a.lastCycleEndedAt ? a.lastCycleEndedAt.toISOString() : null,
        })),
        nextCursor: r.items.length > limit ? encodeCursor(items.at(-1)!.id) : null,
      };
    },
  );

  app.get(
    '/reports/cycles-due',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['reports'],
        summary: 'Running cycles whose anniversary falls in the next hours (default 24), overdue ones first',
        description: '`renews` tells whether the balance after the fee still reaches the threshold (continuous renewal).',
        querystring: z.object({
          hours: z.coerce.number().int().min(1).max(24 * 31).default(24),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000),
        }),
        response: {
          200: z.object({
            until: Instant,
            total: z.int(),
            totalFeeFen: Fen,
            totalFeeYuan: Yuan,
            truncated: z.boolean(),
            items: z.array(
              z.object({
                username: z.string(),
                cycleId: z.int(),
                seq: z.int(),
                startedAt: Instant,
                endsAt: Instant,
                feeFen: Fen,
                feeYuan: Yuan,
                balanceFen: Fen,
                balanceYuan: Yuan,
                renews: z.boolean(),
              }),
            ),
          }),
        },
      },
    },
    async (req) => {
      const now = deps.clock.now();
      const until = new Date(now.getTime() + req.query.hours * 3_600_000);
      const tariff = billing.tariffNow(now);
      const r = await cyclesDue(db, until, req.query.limit);
      return {
        until: until.toISOString(),
        total: r.total,
        totalFeeFen: r.feeFen,
        totalFeeYuan: formatYuan(r.feeFen),
        truncated: r.total > r.items.length,
        items: r.items.map((c) => ({
          username: c.username,
          cycleId: c.cycleId,
          seq: c.seq,
          startedAt: c.startedAt.toISOString(),
          endsAt: c.endsAt.toISOString(),
          feeFen: c.feeFen,
          feeYuan: formatYuan(c.feeFen),
          balanceFen: c.balanceFen,
          balanceYuan: formatYuan(c.balanceFen),
          renews: tariff.renewal === 'continuous' && c.balanceFen - c.feeFen >= tariff.thresholdFen,
        })),
      };
    },
  );

  app.get(
    '/reports/online',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['reports'],
        summary: 'Online sessions and accounts per area, and sessions per NAS',
        response: {
          200: z.object({
            total: z.int(),
            areas: z.array(z.object({ area: Area, sessions: z.int(), accounts: z.int() })),
            byNas: z.array(z.object({ nasId: z.int().nullable(), nasName: z.string().nullable(), nasIp: z.string(), area: Area, sessions: z.int() })),
          }),
        },
      },
    },
    async () => {
      const r = await onlineCounts(db);
      return { total: r.areas.reduce((s, a) => s + a.sessions, 0), ...r };
    },
  );
};
