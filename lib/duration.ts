// "26h", "1d12h", "90s" -> milliseconds. The schema's pattern guarantees the shape; this only adds it up.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseDuration(text: string): number {
  const re = /([0-9]+)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let end = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    end = m.index! + m[0].length;
  }
  if (end !== text.length || text.length === 0) throw new Error(`not a duration: "${text}" (examples: 90s, 26h, 1d12h)`);
  return total;
}
