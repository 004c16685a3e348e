/** When the next cycle starts after a settlement: at the anniversary, or at the next dorm login. */
export type Renewal = 'continuous' | 'on-login';

/** The price of dormitory service: fixed on a cycle when it starts. */
export interface Tariff {
  readonly id: number;
  readonly feeFen: number;
  readonly cycleSeconds: number;
  readonly thresholdFen: number;
  readonly renewal: Renewal;
  readonly effectiveFrom: Date;
}

export type TariffTerms = Omit<Tariff, 'id' | 'effectiveFrom'>;

/**
 * The tariff in force at `at`: the latest one whose effectiveFrom <= at, or the earliest known when
 * `at` predates them all. A change applies only to cycles that start after it (domain rules).
 */
export function tariffAt(tariffs: readonly Tariff[], at: Date): Tariff {
  if (tariffs.length === 0) throw new Error('no tariff configured');
  let best: Tariff | undefined;
  let earliest = tariffs[0]!;
  for (const t of tariffs) {
    if (t.effectiveFrom.getTime() < earliest.effectiveFrom.getTime()) earliest = t;
    if (t.effectiveFrom.getTime() <= at.getTime()) {
      if (!best || t.effectiveFrom.getTime() > best.effectiveFrom.getTime() || (t.effectiveFrom.getTime() === best.effectiveFrom.getTime() && t.id > best.id)) {
        best = t;
      }
    }
  }
  return best ?? earliest;
}

/** True when the configured terms differ from the tariff in force, so a new tariff row is due. */
export function tariffChanged(current: Tariff | undefined, terms: TariffTerms): boolean {
  return (
    !current ||
    current.feeFen !== terms.feeFen ||
    current.cycleSeconds !== terms.cycleSeconds ||
    current.thresholdFen !== terms.thresholdFen ||
    current.renewal !== terms.renewal
  );
}
