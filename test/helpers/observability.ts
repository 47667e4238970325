// Readers for the observability configs (compose/observability/**, docs/observability.md), shared by the static
// checks and the live pipeline test.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './scripts.ts';

export const OBS = join(ROOT, 'compose', 'observability');
export const COMPOSE_OBS = join(ROOT, 'compose', 'compose.observability.yaml');
export const COMPOSE_PROD = join(ROOT, 'compose', 'compose.prod.yaml');
export const DOC = join(ROOT, 'docs', 'observability.md');

export function readYaml<T = unknown>(path: string): T {
  return parse(readFileSync(path, 'utf8')) as T;
}

export function ymlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()
    .map((n) => join(dir, n));
}

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleFile {
  groups: { name: string; interval?: string; rules: Rule[] }[];
}

export function alertRules(files: string[]): (Rule & { alert: string; file: string })[] {
  return files.flatMap((file) =>
    readYaml<RuleFile>(file).groups.flatMap((g) => g.rules.filter((r): r is Rule & { alert: string } => typeof r.alert === 'string').map((r) => ({ ...r, file }))),
  );
}

export interface UnitTestFile {
  rule_files: string[];
  evaluation_interval?: string;
  tests: { interval?: string; input_series: { series: string; values: string }[]; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts: unknown[] }[] }[];
}

/** Alert names with at least one test case expecting them to fire, and with one expecting silence. */
export function testedAlerts(files: string[]): { firing: Set<string>; silent: Set<string> } {
  const firing = new Set<string>();
  const silent = new Set<string>();
  for (const f of files) {
    for (const group of readYaml<UnitTestFile>(f).tests) {
      for (const t of group.alert_rule_test ?? []) (t.exp_alerts.length > 0 ? firing : silent).add(t.alertname);
    }
  }
  return { firing, silent };
}

// PromQL words that look like metric names but are not: aggregation operators, keywords, literals.
const PROMQL_WORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless',
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'inf', 'nan', 'atan2',
]);

/** Metric names a PromQL expression reads (a tokenizer, not a parser: strings, matchers and ranges are skipped). */
export function promqlMetricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' $1 ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?/g)) {
    const name = m[1]!;
    if (m[2] !== undefined || PROMQL_WORDS.has(name)) continue;
    names.add(name);
  }
  return [...names].sort();
}

/** The first Markdown table after a heading (`## title`), as rows of cells with code ticks removed. */
export function markdownTable(md: string, heading: string): { header: string[]; rows: string[][] } {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => /^#+\s/.test(l) && l.replace(/^#+\s+/, '').trim() === heading);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const first = lines.findIndex((l, i) => i > start && l.startsWith('|'));
  if (first < 0) throw new Error(`no table after "${heading}"`);
  const table: string[] = [];
  for (let i = first; i < lines.length && lines[i]!.startsWith('|'); i++) table.push(lines[i]!);
  const cells = (l: string) =>
    l
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, '|').replace(/`/g, ''));
  const [head, , ...body] = table;
  return { header: cells(head!), rows: body.map(cells) };
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: { name: string; datasource?: { type?: string; uid?: string } }[] };
}
export interface Panel {
  id: number;
  title: string;
  type: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr: string; refId: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
}

export function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every (datasource uid, query) of a dashboard; a target's own datasource wins over its panel's. */
export function dashboardQueries(d: Dashboard): { panel: string; uid: string | undefined; expr: string }[] {
  return allPanels(d.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, uid: t.datasource?.uid ?? p.datasource?.uid, expr: t.expr })));
}

/** Copy of a rule file with every `for:` set to the given duration: only the live test's copy is shortened. */
export function withShortFor(file: RuleFile, duration: string): RuleFile {
  return { groups: file.groups.map((g) => ({ ...g, rules: g.rules.map((r) => (r.alert ? { ...r, for: duration } : r)) })) };
}
