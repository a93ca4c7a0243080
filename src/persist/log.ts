// The logger the persistence layer reports through; the node passes its own.

export type PersistLogLevel = "info" | "warn" | "error";
export type PersistLog = (level: PersistLogLevel, message: string, fields?: Readonly<Record<string, string | number>>) => void;

export const silentLog: PersistLog = () => undefined;
