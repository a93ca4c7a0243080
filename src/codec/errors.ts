// The one error every decoder throws for bad bytes, so callers catch exactly one type.

export class DecodeError extends Error {
  /** Byte offset in the input where the problem was found. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = "DecodeError";
    this.offset = offset;
  }
}
