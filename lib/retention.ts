// Retention (rotate), pure: restic's `forget` semantics (DESIGN.md §7). Sets in, keep/remove with reasons out.
// Each rule walks the sets newest first with its own counter and keeps the newest set of each period until the
// counter runs out; a rule with count left at the end also keeps the oldest set. `within` keeps every set newer
// than (newest - duration). The result is the union; the newest set and sets dated in the future are always kept.
import { parseDuration } from './duration.ts';

export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: string;
}

export const RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type Rule = (typeof RULES)[number];

export interface DatedSet {
  id: string;
  time: Date;
}

export interface Decision {
  id: string;
  time: Date;
  reasons: string[];
}

export interface RetentionPlan {
  keep: Decision[];
  remove: Decision[];
}

export class PolicyError extends Error {}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  /** Offset from UTC in minutes at that instant: tells apart the two 02:00 hours of a DST fall-back night. */
  offset: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

export function localParts(date: Date, timeZone: string): LocalParts {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' });
    formatters.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(date).map((x) => [x.type, x.value])) as Record<string, string>;
  const local = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!);
  const offset = Math.round((local - Math.floor(date.getTime() / 60_000) * 60_000) / 60_000);
  return { year: +p.year!, month: +p.month!, day: +p.day!, hour: +p.hour!, offset };
}

/** ISO 8601 week-numbering year and week of a calendar date. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const thursday = (d: Date) => {
    const t = new Date(d);
    t.setUTCDate(t.getUTCDate() - ((t.getUTCDay() + 6) % 7) + 3); // the Thursday of its Monday-based week
    return t;
  };
  const t = thursday(new Date(Date.UTC(year, month - 1, day)));
  const isoYear = t.getUTCFullYear();
  const first = thursday(new Date(Date.UTC(isoYear, 0, 4))); // week 1 holds 4 January
  return { year: isoYear, week: 1 + Math.round((t.getTime() - first.getTime()) / (7 * 86_400_000)) };
}

export function periodKey(rule: Rule, set: DatedSet, timeZone: string): string {
  if (rule === 'last') return set.id;
  const p = localParts(set.time, timeZone);
  const pad = (n: number) => String(n).padStart(2, '0');
  switch (rule) {
    case 'hourly':
      return `${p.year}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}${p.offset >= 0 ? '+' : '-'}${Math.abs(p.offset)}`;
    case 'daily':
      return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
    case 'weekly': {
      const w = isoWeek(p.year, p.month, p.day);
      return `${w.year}-W${pad(w.week)}`;
    }
    case 'monthly':
      return `${p.year}-${pad(p.month)}`;
    case 'yearly':
      return `${p.year}`;
  }
}

export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return RULES.every((r) => !policy[r]) && !policy.within;
}

/** Keep/remove for every set. Throws PolicyError on an empty policy or a plan that would remove every set. */
export function planRetention(sets: DatedSet[], policy: RetentionPolicy, opts: { timeZone: string; now: Date }): RetentionPlan {
  if (isEmptyPolicy(policy)) throw new PolicyError('the retention policy is empty: set at least one of last, hourly, daily, weekly, monthly, yearly, within');
  const sorted = [...sets].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1));
  const reasons = new Map<string, string[]>(sorted.map((s) => [s.id, []]));
  const add = (s: DatedSet, why: string) => reasons.get(s.id)!.push(why);
  const past = sorted.filter((s) => s.time.getTime() <= opts.now.getTime());
  for (const s of sorted) if (s.time.getTime() > opts.now.getTime()) add(s, 'dated in the future');
  if (past[0]) add(past[0], 'newest set');
  for (const rule of RULES) {
    let left = policy[rule] ?? 0;
    if (left <= 0) continue;
    let lastKey: string | undefined;
    for (const s of past) {
      if (left === 0) break;
      const key = periodKey(rule, s, opts.timeZone);
      if (key === lastKey) continue;
      lastKey = key;
      add(s, rule === 'last' ? `last ${policy[rule]}` : `${rule} ${key}`);
      left--;
    }
    // Fewer periods than the count: the oldest set is kept as well (restic's behaviour since 0.16).
    if (left > 0 && past.length > 0) add(past[past.length - 1]!, `oldest set (${rule} ${policy[rule]} not yet reached)`);
  }
  if (policy.within && past[0]) {
    const limit = past[0].time.getTime() - parseDuration(policy.within);
    for (const s of past) if (s.time.getTime() >= limit) add(s, `within ${policy.within} of the newest`);
  }
  const plan: RetentionPlan = { keep: [], remove: [] };
  for (const s of sorted) {
    const r = reasons.get(s.id)!;
    (r.length ? plan.keep : plan.remove).push({ id: s.id, time: s.time, reasons: [...new Set(r)] });
  }
  if (sorted.length > 0 && plan.keep.length === 0) throw new PolicyError('refusing a plan that removes every set');
  return plan;
}

export interface GroupedSet extends DatedSet {
  /** What the set holds (its sources): sets are only compared with sets of the same group. */
  group: string;
}

/**
 * The policy applied to each group on its own, as restic groups snapshots by host and paths before it forgets:
 * the PostgreSQL-only sets migrate and rollback take before a schema change must not use up the slots of the full
 * nightly sets (and have the newest full set removed). Every group keeps its newest set. With more than one group,
 * each reason names its group.
 */
export function planRetentionByGroup(sets: GroupedSet[], policy: RetentionPolicy, opts: { timeZone: string; now: Date }): RetentionPlan {
  if (isEmptyPolicy(policy)) return planRetention([], policy, opts); // throws the empty-policy error
  const groups = new Map<string, GroupedSet[]>();
  for (const s of sets) groups.set(s.group, [...(groups.get(s.group) ?? []), s]);
  const plan: RetentionPlan = { keep: [], remove: [] };
  for (const [group, members] of groups) {
    const p = planRetention(members, policy, opts);
    const label = groups.size > 1 ? ` (among sets of ${group})` : '';
    plan.keep.push(...p.keep.map((d) => ({ ...d, reasons: d.reasons.map((r) => `${r}${label}`) })));
    plan.remove.push(...p.remove);
  }
  const newestFirst = (a: Decision, b: Decision) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : -1);
  plan.keep.sort(newestFirst);
  plan.remove.sort(newestFirst);
  return plan;
}
