// Wire numbers of the CRDT kinds (proto CrdtType). Kept apart from the kind modules so the codec
// can name them without importing any kind.

/** ONLY APPEND TO THIS LIST. */
export const CrdtType = { GCounter: 1, PNCounter: 2, LwwRegister: 3, MvRegister: 4, OrSet: 5, OrMap: 6, Deadline: 7 } as const;
export type CrdtType = (typeof CrdtType)[keyof typeof CrdtType];

export function isCrdtType(n: number): n is CrdtType {
  return n === 1 || n === 2 || n === 3 || n === 4 || n === 5 || n === 6 || n === 7;
}
