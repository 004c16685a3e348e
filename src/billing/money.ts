import { AppError } from '../errors.ts';

/** Throws unless `fen` is a safe integer: money is integer fen end to end, never a float. */
export function assertFen(fen: number, field = 'amountFen'): number {
  if (!Number.isSafeInteger(fen)) throw new AppError('invalid', `${field} must be an integer number of fen`);
  return fen;
}

/**
 * Formats fen as a yuan string with two decimals ("20.00", "-0.50") using integer arithmetic only,
 * for display beside the integer amount.
 */
export function formatYuan(fen: number): string {
  assertFen(fen);
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  const yuan = Math.trunc(abs / 100);
  const cents = abs % 100;
  return `${sign}${yuan}.${cents < 10 ? '0' : ''}${cents}`;
}
