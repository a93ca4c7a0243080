// Log sequence numbers are their own type so that a count, an offset or a tick can never be
// passed where a WAL position is meant.

declare const lsnBrand: unique symbol;
/** Position of a WAL record: 1 for the first record ever written, +1 per record, never reused. */
export type Lsn = number & { readonly [lsnBrand]: true };

/** The LSN before any record: a store that has never written anything has lastLsn = lsnNone. */
export const lsnNone = 0 as Lsn;
export const lsnFirst = 1 as Lsn;
/** LSNs stay exact doubles and fit the u64 on disk. */
export const lsnMax = Number.MAX_SAFE_INTEGER as Lsn;

export function asLsn(n: number): Lsn {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not an LSN: ${n}`);
  return n as Lsn;
}

export function nextLsn(lsn: Lsn, by = 1): Lsn {
  return asLsn(lsn + by);
}
