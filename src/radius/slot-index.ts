/**
 * An open-addressing table of slot + 1 (0 = empty) over a caller's arrays of entries: probed linearly from a
 * home the caller computes for a slot, and kept dense by backward-shift deletion so no tombstones
 * accumulate. The account view, the credential cache and the reply cache each keep their entries in typed
 * arrays (off the GC's books) and index them with one of these; lookups read `table` and `mask` directly
 * and compare keys in the caller's own layout.
 */
export class SlotIndex {
  table = new Int32Array(0);
  mask = -1;

  constructor(private readonly home: (slot: number) => number) {}

  /** Empties the table and sizes it for `capacity` slots at most half full; returns the old table. */
  reset(capacity: number): Int32Array {
    const old = this.table;
    let n = 4;
    while (n < capacity * 2) n *= 2;
    this.table = new Int32Array(n);
    this.mask = n - 1;
    return old;
  }

  insert(slot: number): void {
    let i = this.home(slot) & this.mask;
    while (this.table[i] !== 0) i = (i + 1) & this.mask;
    this.table[i] = slot + 1;
  }

  /** Points the entry at `position` (from a lookup) to `slot`, whose key is the same. */
  replace(position: number, slot: number): void {
    this.table[position] = slot + 1;
  }

  delete(slot: number): void {
    const table = this.table;
    const mask = this.mask;
    let i = this.home(slot) & mask;
    while (table[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const home = this.home(table[j]! - 1) & mask;
      // The entry at j moves back to the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        table[i] = table[j]!;
        i = j;
      }
    }
    table[i] = 0;
  }
}
