// Retention: fast-check properties of the plan, plus fixed cases for ISO week 53, a DST fall-back night and gaps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isoWeek, localParts, periodKey, planRetention, planRetentionByGroup, PolicyError, RULES, type DatedSet, type RetentionPolicy } from '../lib/retention.ts';
import { setIdFor } from '../lib/backup-set.ts';

const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata'];
const NOW = new Date('2027-06-01T00:00:00Z');

const setsArb = fc
  .uniqueArray(fc.integer({ min: Date.parse('2024-01-01T00:00:00Z') / 1000, max: Date.parse('2027-07-01T00:00:00Z') / 1000 }), { minLength: 0, maxLength: 60 })
  .map((secs) => secs.map((s): DatedSet => ({ id: setIdFor(new Date(s * 1000)), time: new Date(s * 1000) })));

const count = fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined });
const policyArb = fc
  .record({ last: count, hourly: count, daily: count, weekly: count, monthly: count, yearly: count, within: fc.option(fc.constantFrom('1h', '2d', '3w', '90d'), { nil: undefined }) })
  .filter((p) => RULES.some((r) => (p[r] ?? 0) > 0) || p.within !== undefined) as fc.Arbitrary<RetentionPolicy>;

const ids = (ds: { id: string }[]) => ds.map((d) => d.id).sort();
const opts = (timeZone: string) => ({ timeZone, now: NOW });

test('keep and remove partition the sets', () => {
  fc.assert(
    fc.property(setsArb, policyArb, fc.constantFrom(...ZONES), (sets, policy, tz) => {
      const plan = planRetention(sets, policy, opts(tz));
      const keep = new Set(ids(plan.keep));
      assert.deepEqual([...ids(plan.keep), ...ids(plan.remove)].sort(), ids(sets));
      assert.ok(ids(plan.remove).every((id) => !keep.has(id)));
      assert.ok(plan.keep.every((d) => d.reasons.length > 0), 'every kept set says why');
    }),
    { numRuns: 300 },
  );
});

test('keep(policy) is the union of keep(rule) over its rules', () => {
  fc.assert(
    fc.property(setsArb, policyArb, fc.constantFrom(...ZONES), (sets, policy, tz) => {
      const whole = new Set(ids(planRetention(sets, policy, opts(tz)).keep));
      const union = new Set<string>();
      for (const rule of [...RULES, 'within'] as const) {
        if (policy[rule] === undefined || policy[rule] === 0) continue;
        for (const id of ids(planRetention(sets, { [rule]: policy[rule] }, opts(tz)).keep)) union.add(id);
      }
      assert.deepEqual([...whole].sort(), [...union].sort());
    }),
    { numRuns: 300 },
  );
});

test('applying the policy twice changes nothing', () => {
  fc.assert(
    fc.property(setsArb, policyArb, fc.constantFrom(...ZONES), (sets, policy, tz) => {
      const once = planRetention(sets, policy, opts(tz));
      const kept = sets.filter((s) => once.keep.some((k) => k.id === s.id));
      const twice = planRetention(kept, policy, opts(tz));
      assert.deepEqual(twice.remove, []);
    }),
    { numRuns: 300 },
  );
});

test('raising any count never shrinks keep', () => {
  fc.assert(
    fc.property(setsArb, policyArb, fc.constantFrom(...RULES), fc.integer({ min: 1, max: 5 }), fc.constantFrom(...ZONES), (sets, policy, rule, more, tz) => {
      const before = new Set(ids(planRetention(sets, policy, opts(tz)).keep));
      const after = new Set(ids(planRetention(sets, { ...policy, [rule]: (policy[rule] ?? 0) + more }, opts(tz)).keep));
      for (const id of before) assert.ok(after.has(id), `${id} dropped when ${rule} was raised`);
    }),
    { numRuns: 300 },
  );
});

test('the newest set and sets in the future are always kept', () => {
  fc.assert(
    fc.property(setsArb.filter((s) => s.length > 0), policyArb, fc.constantFrom(...ZONES), (sets, policy, tz) => {
      const plan = planRetention(sets, policy, opts(tz));
      const keep = new Set(ids(plan.keep));
      const past = sets.filter((s) => s.time <= NOW).sort((a, b) => b.time.getTime() - a.time.getTime());
      if (past[0]) assert.ok(keep.has(past[0].id), 'newest kept');
      for (const s of sets.filter((x) => x.time > NOW)) assert.ok(keep.has(s.id), 'future kept');
    }),
    { numRuns: 300 },
  );
});

test('an empty policy is an error', () => {
  assert.throws(() => planRetention([], {}, opts('UTC')), PolicyError);
  assert.throws(() => planRetention([], { daily: 0, last: 0 }, opts('UTC')), PolicyError);
});

const at = (iso: string): DatedSet => ({ id: setIdFor(new Date(iso)), time: new Date(iso) });

test('ISO week 53: 2026-12-31 and 2027-01-02 are the same week, 2027-01-04 the next', () => {
  assert.deepEqual(isoWeek(2026, 12, 31), { year: 2026, week: 53 });
  assert.deepEqual(isoWeek(2027, 1, 3), { year: 2026, week: 53 });
  assert.deepEqual(isoWeek(2027, 1, 4), { year: 2027, week: 1 });
  assert.deepEqual(isoWeek(2024, 12, 30), { year: 2025, week: 1 });
  assert.deepEqual(isoWeek(2021, 1, 3), { year: 2020, week: 53 });
  const sets = ['2026-12-24T02:00:00Z', '2026-12-31T02:00:00Z', '2027-01-02T02:00:00Z', '2027-01-04T02:00:00Z'].map(at);
  const plan = planRetention(sets, { weekly: 2 }, { timeZone: 'UTC', now: NOW });
  assert.deepEqual(ids(plan.keep), ids([sets[3]!, sets[2]!]));
  assert.equal(plan.keep.find((k) => k.id === sets[2]!.id)!.reasons[0], 'weekly 2026-W53');
});

test('DST fall-back night in Berlin: one local day, but two distinct 02:00 hours', () => {
  // 2026-10-25 03:00 CEST -> 02:00 CET: 00:30Z and 01:30Z are both 02:30 local.
  const a = at('2026-10-25T00:30:00Z');
  const b = at('2026-10-25T01:30:00Z');
  assert.equal(localParts(a.time, 'Europe/Berlin').hour, 2);
  assert.equal(localParts(b.time, 'Europe/Berlin').hour, 2);
  assert.equal(periodKey('daily', a, 'Europe/Berlin'), periodKey('daily', b, 'Europe/Berlin'));
  assert.notEqual(periodKey('hourly', a, 'Europe/Berlin'), periodKey('hourly', b, 'Europe/Berlin'));
  const day = ['2026-10-24T21:59:00Z', '2026-10-24T22:30:00Z', '2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-25T22:59:00Z', '2026-10-25T23:30:00Z'].map(at);
  // 2026-10-24T21:59Z is 23:59 CEST on the 24th; 22:30Z is 00:30 on the 25th; 22:59Z is 23:59 CET on the 25th; 23:30Z is the 26th.
  const plan = planRetention(day, { daily: 3 }, { timeZone: 'Europe/Berlin', now: NOW });
  assert.deepEqual(ids(plan.keep), ids([day[5]!, day[4]!, day[0]!]));
  const hourly = planRetention(day, { hourly: 10 }, { timeZone: 'Europe/Berlin', now: NOW });
  assert.equal(hourly.keep.length, 6, 'all six are in different real hours');
});

test('a gap of missing days: daily counts days that have sets, then keeps the oldest', () => {
  const sets = ['2027-05-01', '2027-05-02', '2027-05-10', '2027-05-11', '2027-05-20'].map((d) => at(`${d}T02:30:00Z`));
  const extra = at('2027-05-20T01:00:00Z');
  const plan = planRetention([...sets, extra], { daily: 3 }, { timeZone: 'UTC', now: NOW });
  assert.deepEqual(ids(plan.keep), ids([sets[4]!, sets[3]!, sets[2]!]));
  const loose = planRetention([...sets, extra], { daily: 10 }, { timeZone: 'UTC', now: NOW });
  assert.deepEqual(ids(loose.remove), [extra.id], 'only the older set of a day with two goes');
  const first = planRetention([at('2027-05-01T01:00:00Z'), at('2027-05-01T02:00:00Z'), at('2027-05-03T02:00:00Z')], { daily: 5 }, { timeZone: 'UTC', now: NOW });
  assert.equal(first.remove.length, 0, 'count left over: the oldest set is kept too');
});

test('groups: the PostgreSQL-only sets taken before migrations never push out the full nightly sets', () => {
  const full = Array.from({ length: 28 }, (_, d) => ({ ...at(new Date(Date.parse('2027-05-04T02:30:00Z') + d * 86_400_000).toISOString()), group: 'postgres+qdrant' }));
  const pre = ['2027-05-09T14:40:00Z', '2027-05-16T14:40:00Z', '2027-05-23T14:40:00Z', '2027-05-31T20:00:00Z', '2027-05-31T21:00:00Z'].map((t) => ({ ...at(t), group: 'postgres' }));
  const policy = { last: 2, daily: 7, weekly: 4 };
  const plan = planRetentionByGroup([...full, ...pre], policy, opts('UTC'));
  const kept = new Set(ids(plan.keep));
  assert.ok(kept.has(full.at(-1)!.id), 'the newest full set is kept');
  // Each group on its own is what planRetention keeps of it alone.
  assert.deepEqual(ids(plan.keep.filter((k) => full.some((f) => f.id === k.id))), ids(planRetention(full, policy, opts('UTC')).keep));
  assert.deepEqual(ids(plan.keep.filter((k) => pre.some((f) => f.id === k.id))), ids(planRetention(pre, policy, opts('UTC')).keep));
  assert.match(plan.keep.find((k) => k.id === full.at(-1)!.id)!.reasons.join('; '), /newest set \(among sets of postgres\+qdrant\)/);
  // Without groups (the old behaviour) the partial sets took the newest full set's slots.
  assert.ok(!new Set(ids(planRetention([...full, ...pre], policy, opts('UTC')).keep)).has(full.at(-1)!.id));
});

test('groups: one group plans exactly as planRetention; an empty policy is still an error', () => {
  fc.assert(
    fc.property(setsArb, policyArb, fc.constantFrom(...ZONES), (sets, policy, tz) => {
      const grouped = planRetentionByGroup(sets.map((s) => ({ ...s, group: 'g' })), policy, opts(tz));
      const plain = planRetention(sets, policy, opts(tz));
      assert.deepEqual(ids(grouped.keep), ids(plain.keep));
      assert.deepEqual(ids(grouped.remove), ids(plain.remove));
    }),
    { numRuns: 100 },
  );
  assert.throws(() => planRetentionByGroup([], {}, opts('UTC')), PolicyError);
});
