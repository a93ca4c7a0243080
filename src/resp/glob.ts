// Redis's glob matching (KEYS, SCAN MATCH, SSCAN/HSCAN MATCH, CONFIG GET), ported byte for byte
// from stringmatchlen in Redis 7.0's util.c so a pattern selects exactly the keys Redis would.

/** Redis stops matching (no match) below this recursion depth: abusive patterns cost bounded work. */
const globNestingMax = 1000;

/** -1 past either end, as the NUL after a Redis sds string reads as "no such character". */
function at(b: Uint8Array, i: number): number {
  return i < b.length ? (b[i] as number) : -1;
}

/** C's `char` is signed on x86: ranges over bytes >= 0x80 compare as Redis compares them. */
function signed(c: number): number {
  return c < 0 ? c : (c << 24) >> 24;
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

interface MatchState {
  skipLongerMatches: boolean;
}

function matchFrom(p: Uint8Array, pi: number, s: Uint8Array, si: number, nocase: boolean, st: MatchState, nesting: number): boolean {
  if (nesting > globNestingMax) return false;
  while (pi < p.length && si < s.length) {
    const pc = p[pi] as number;
    switch (pc) {
      case 0x2a: { // '*'
        while (pi + 1 < p.length && p[pi + 1] === 0x2a) pi++;
        if (p.length - pi === 1) return true;
        while (si < s.length) {
          if (matchFrom(p, pi + 1, s, si, nocase, st, nesting + 1)) return true;
          if (st.skipLongerMatches) return false;
          si++;
        }
        // No match for the rest anywhere in the rest of the string: an earlier '*' cannot help.
        st.skipLongerMatches = true;
        return false;
      }
      case 0x3f: // '?'
        si++;
        break;
      case 0x5b: { // '['
        pi++;
        const not = at(p, pi) === 0x5e; // '^'
        if (not) pi++;
        let match = false;
        const c = s[si] as number;
        for (;;) {
          const left = p.length - pi;
          if (at(p, pi) === 0x5c && left >= 2) { // '\\' escapes the next character
            pi++;
            if (p[pi] === c) match = true;
          } else if (at(p, pi) === 0x5d) { // ']'
            break;
          } else if (left === 0) {
            // An unclosed class: Redis steps back so the loop's final step lands on the end.
            pi--;
            break;
          } else if (left >= 3 && p[pi + 1] === 0x2d) { // 'a-z'
            let start = signed(p[pi] as number);
            let end = signed(p[pi + 2] as number);
            let ch = signed(c);
            if (start > end) [start, end] = [end, start];
            if (nocase) {
              start = lower(start);
              end = lower(end);
              ch = lower(ch);
            }
            pi += 2;
            if (ch >= start && ch <= end) match = true;
          } else if (nocase ? lower(p[pi] as number) === lower(c) : p[pi] === c) {
            match = true;
          }
          pi++;
        }
        if (not) match = !match;
        if (!match) return false;
        si++;
        break;
      }
      default: {
        if (pc === 0x5c && p.length - pi >= 2) pi++; // '\\': the next character is literal
        const lit = p[pi] as number;
        const ch = s[si] as number;
        if (nocase ? lower(lit) !== lower(ch) : lit !== ch) return false;
        si++;
        break;
      }
    }
    pi++;
    if (si === s.length) {
      while (at(p, pi) === 0x2a) pi++;
      break;
    }
  }
  return pi >= p.length && si === s.length;
}

/** Whether `subject` matches the glob `pattern` as Redis's stringmatchlen decides (nocase for CONFIG GET). */
export function globMatch(pattern: Uint8Array, subject: Uint8Array, nocase = false): boolean {
  return matchFrom(pattern, 0, subject, 0, nocase, { skipLongerMatches: false }, 0);
}

/**
 * The bytes every match of `pattern` must start with: its characters up to the first `*`, `?` or
 * `[`, with `\x` read as x. A scan restricted to this prefix sees every key the pattern can match.
 */
export function globLiteralPrefix(pattern: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as number;
    if (c === 0x2a || c === 0x3f || c === 0x5b) break;
    if (c === 0x5c && i + 1 < pattern.length) {
      i++;
      out.push(pattern[i] as number);
      continue;
    }
    out.push(c);
  }
  return Uint8Array.from(out);
}

/** True when the pattern matches everything (`*`, `**`, ...): no filtering needed. */
export function globMatchesAll(pattern: Uint8Array): boolean {
  return pattern.length > 0 && pattern.every((c) => c === 0x2a);
}
