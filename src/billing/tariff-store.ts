import { sql } from 'kysely';
import type { Db } from '../db/connection.ts';
import type { TariffRow } from '../db/schema.ts';
import { tariffChanged, type Tariff, type TariffTerms } from './tariff.ts';

function toTariff(r: TariffRow): Tariff {
  return {
    id: r.id,
    feeFen: r.fee_fen,
    cycleSeconds: r.cycle_seconds,
    thresholdFen: r.threshold_fen,
    renewal: r.renewal,
    effectiveFrom: r.effective_from,
  };
}

export async function listTariffs(db: Db): Promise<Tariff[]> {
  const rows = await db.selectFrom('tariffs').selectAll().orderBy('effective_from').orderBy('id').execute();
  return rows.map(toTariff);
}

/**
 * Records the configured terms as the tariff in force from `now` when they differ from the latest
 * one; running cycles keep the fee they started with. Serialised by an advisory lock so instances
 * starting together insert one row.
 */
export async function ensureTariff(db: Db, terms: TariffTerms, now: Date): Promise<Tariff[]> {
  await db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(7263001)`.execute(trx);
    const latest = await trx
      .selectFrom('tariffs')
      .selectAll()
      .orderBy('effective_from', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (tariffChanged(latest ? toTariff(latest) : undefined, terms)) {
      const from = latest && latest.effective_from.getTime() > now.getTime() ? latest.effective_from : now;
      await trx
        .insertInto('tariffs')
        .values({
          fee_fen: terms.feeFen,
          cycle_seconds: terms.cycleSeconds,
          threshold_fen: terms.thresholdFen,
          renewal: terms.renewal,
          effective_from: latest ? from : new Date(0),
        })
        .execute();
    }
  });
  return listTariffs(db);
}
