// Command names from their bytes, lower case, as strings made once: every command is looked up
// in the table and counted in the metrics by name, and building the string each time showed in
// profiles (the connection layer and the command table share this one cache).

/** Longest command name counted under its own label; longer ones are cut. */
export const commandLabelCharsMax = 32;
/** Command names seen, by a hash of their lower-cased bytes: naming a command costs no string building. */
const commandNames = new Map<number, string>();
/** Distinct names remembered; garbage names beyond it are built each time (and counted as unknown). */
const commandNamesMax = 512;

/** "set" from the bytes of a command name, lower case, cut to commandLabelCharsMax. */
export function commandName(arg: Uint8Array | undefined): string {
  if (arg === undefined) return "";
  const n = Math.min(arg.length, commandLabelCharsMax);
  let h = 0x811c9dc5 ^ n;
  for (let i = 0; i < n; i++) {
    const c = arg[i]!;
    h = Math.imul(h ^ (c >= 65 && c <= 90 ? c + 32 : c), 0x01000193);
  }
  const known = commandNames.get(h);
  if (known !== undefined && known.length === n && sameName(known, arg)) return known;
  let s = "";
  for (let i = 0; i < n; i++) {
    const c = arg[i]!;
    s += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c);
  }
  if (known === undefined && commandNames.size < commandNamesMax) commandNames.set(h, s);
  return s;
}

function sameName(name: string, arg: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = arg[i]!;
    if (name.charCodeAt(i) !== (c >= 65 && c <= 90 ? c + 32 : c)) return false;
  }
  return true;
}
