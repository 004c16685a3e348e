/** The one source of "now"; pure code never reads it, shells pass `now` down. */
export interface Clock {
  now(): Date;
  readonly simulated: boolean;
}

export const systemClock: Clock = {
  now: () => new Date(),
  simulated: false,
};

/**
 * A clock an operator moves by hand (like Stripe's test clocks), on only with SIMULATED_CLOCK.
 * It never moves backwards, so a cycle can never be settled before it was opened.
 */
export class SimulatedClock implements Clock {
  readonly simulated = true;
  #nowMs: number;

  constructor(startAt: Date) {
    this.#nowMs = startAt.getTime();
  }

  now(): Date {
    return new Date(this.#nowMs);
  }

  advance(seconds: number): Date {
    if (!Number.isSafeInteger(seconds) || seconds < 0) {
      throw new RangeError('seconds must be a non-negative integer');
    }
    this.#nowMs += seconds * 1000;
    return this.now();
  }

  set(at: Date): Date {
    if (at.getTime() < this.#nowMs) throw new RangeError('the simulated clock never moves backwards');
    this.#nowMs = at.getTime();
    return this.now();
  }
}
