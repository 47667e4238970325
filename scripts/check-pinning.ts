// check-pinning: CI check that every compose image is pinned (no latest/floating tags, digests for critical services).
// Example: npx tsx scripts/check-pinning.ts compose/compose.prod.yaml --format github
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve as absolutePath } from 'node:path';
import { isMap, parseDocument, type Node } from 'yaml';
import { runScript, startIfEntry, type CommandSpec, type ScriptContext, type ScriptIO } from '../lib/cli.ts';
import { defaultConfigPath, loadConfig } from '../lib/config.ts';
import { composeEnv, readComposeImages, resolveInherited, type ComposeFile, type ComposeImage } from '../lib/compose-images.ts';
import { checkImage, hasViolation, pinningPolicy, type Finding, type PinningPolicy } from '../lib/pinning-policy.ts';
import { parseImageRef, withDigest, type ImageRef } from '../lib/image-ref.ts';
import { RegistryClient, RegistryError, type ResolvedDigest } from '../lib/registry.ts';
import { writeFileAtomic } from '../lib/fs-util.ts';
import { EXIT, OpsError, UsageError } from '../lib/errors.ts';
import type { Output } from '../lib/output.ts';

export const spec: CommandSpec = {
  name: 'check-pinning',
  summary: 'check that every compose image is pinned: exact tags, no latest or floating tags, digests for critical services',
  examples: [
    'npx tsx scripts/check-pinning.ts',
    'npx tsx scripts/check-pinning.ts compose/compose.prod.yaml --format github',
    'npx tsx scripts/check-pinning.ts compose/compose.prod.yaml --resolve',
    'npx tsx scripts/check-pinning.ts compose/compose.prod.yaml --resolve --write',
  ],
  mutating: false,
  positionals: 'FILE...',
  flags: {
    format: { type: 'string', value: 'text|github', description: 'text (default) or GitHub Actions annotations' },
    resolve: { type: 'boolean', description: 'ask each registry for the digest of every pinned tag and print the tag@sha256: form' },
    write: { type: 'boolean', description: 'with --resolve: add the digests to the image lines (only those lines change; never replaces a digest)' },
    'insecure-registry': { type: 'string', multiple: true, value: 'HOST', description: 'reach this registry over plain HTTP (loopback registries always are)' },
  },
  notes: [
    'FILE... defaults to compose/*.yaml. Variables come from --dotenv, else .env beside each file, else the',
    'committed .env.example beside it; the process environment wins, as in Compose. Files pulled in are checked',
    "too: a file a service extends (with the extending file's variables) and the files of a top-level include:",
    "(with their env_file or .env for defaults; the including file's variables win). Remote includes: exit 2.",
    'Policy (config section `pinning`, optional): critical services need a digest; `# TODO digest: <reason>` on or',
    'above an image line turns that into a warning. Exit 1 on a violation (or a failed --resolve), 2 on unreadable',
    'input, invalid YAML, files without any service, or bad flags.',
  ],
};

interface ImageReport {
  file: string;
  line: number;
  col: number;
  service: string;
  image?: string;
  interpolated?: string;
  ref?: { domain: string; path: string; tag?: string; digest?: string };
  findings: Finding[];
  resolved?: { digest: string; source: ResolvedDigest['source']; pinned: string };
  written?: boolean;
}

/** compose/*.yaml relative to the working directory, sorted. */
export function defaultFiles(cwd = process.cwd()): string[] {
  const dir = join(cwd, 'compose');
  if (!existsSync(dir)) throw new UsageError('no FILE given and no compose/ directory here (pass the compose files to check)');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join('compose', f));
}

function loadPolicy(configFlag: string | undefined, envFile: string | undefined): PinningPolicy {
  // CI has no ops.config.yaml: the defaults apply unless a config is named or present.
  if (!configFlag && !existsSync(defaultConfigPath())) return pinningPolicy();
  const loaded = loadConfig({ ...(configFlag ? { configPath: configFlag } : {}), ...(envFile ? { envFile } : {}) });
  return pinningPolicy(loaded.config.pinning);
}

/** The text that replaces an image value, in the style it was written. */
export function renderImageValue(value: string, style: ComposeImage['style']): string {
  if (style === 'double') return JSON.stringify(value);
  if (style === 'single') return `'${value.replace(/'/g, "''")}'`;
  return value;
}

/** Why an image cannot be rewritten in place, or undefined when it can. */
function notWritable(img: ComposeImage): string | undefined {
  if (img.style === 'alias' || img.style === 'merged') return 'the image comes from a YAML anchor: pin it where the anchor is defined';
  if (img.style === 'extends') return 'the image comes from the service it extends: pinned there';
  if (img.style === 'block' || !img.range) return 'the image is not a single-line scalar';
  if (img.raw !== img.value) return 'the image comes from variables: put the tag@sha256: form in the .env file';
  return undefined;
}

/**
 * Replace the given image values in the source text, keeping every other byte. A trailing `# TODO digest:`
 * comment on a rewritten line is dropped (it is resolved now). Throws if the result differs anywhere else.
 */
export function applyPins(file: ComposeFile, pins: Map<ComposeImage, string>): string {
  const edits = [...pins.entries()].sort((a, b) => b[0].range![0] - a[0].range![0]);
  let text = file.text;
  for (const [img, pinned] of edits) {
    const [start, end] = img.range!;
    const lineEnd = text.indexOf('\n', end) === -1 ? text.length : text.indexOf('\n', end);
    let rest = text.slice(end, lineEnd);
    if (/^\s*#\s*TODO digest:/.test(rest)) rest = rest.replace(/\s*#\s*TODO digest:.*$/, '');
    text = text.slice(0, start) + renderImageValue(pinned, img.style) + rest + text.slice(lineEnd);
  }
  // Safety net: the rewritten document must equal the old one with just these image values changed.
  const expected = parseDocument(file.text, { merge: true });
  const services = expected.get('services', true) as Node;
  for (const [img, pinned] of pins) {
    if (isMap(services)) {
      const svc = services.get(img.service, true);
      if (isMap(svc)) svc.set('image', pinned);
    }
  }
  const actual = parseDocument(text, { merge: true });
  if (actual.errors.length || JSON.stringify(actual.toJS()) !== JSON.stringify(expected.toJS())) {
    throw new OpsError(`${file.file}: rewriting the image lines would change more than the images; nothing written`);
  }
  return text;
}

function location(r: { file: string; line: number; col: number }): string {
  return `${r.file}:${r.line}:${r.col}`;
}

// GitHub workflow command escaping (actions/toolkit core/command.ts).
const ghData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const ghProp = (s: string) => ghData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

export function githubAnnotation(r: ImageReport, f: Finding): string {
  const kind = f.severity === 'error' ? 'error' : 'warning';
  return `::${kind} file=${ghProp(r.file)},line=${r.line},col=${r.col},title=${ghProp(`check-pinning ${f.rule}`)}::${ghData(`service ${r.service}: ${f.message}`)}`;
}

/**
 * A check that cannot run (exit 2: an unreadable file, invalid YAML, a circle of includes) as annotations too, so a
 * workflow shows it on the file: one per detail that names a place (`file:line:col: what`), else the message.
 */
export function githubUsageAnnotations(err: UsageError): string[] {
  const title = ghProp('check-pinning');
  const located = err.details.map((d) => /^(.+?):(\d+):(\d+): (.*)$/s.exec(d)).filter((m) => m !== null);
  if (!located.length) return [`::error title=${title}::${ghData([err.message, ...err.details].join('\n'))}`];
  return located.map((m) => `::error file=${ghProp(m[1]!)},line=${m[2]},col=${m[3]},title=${title}::${ghData(`${err.message}: ${m[4]}`)}`);
}

function reportText(out: Output, reports: ImageReport[]): void {
  for (const r of reports) {
    const at = `${location(r)} ${r.service}`;
    for (const f of r.findings) (f.severity === 'error' ? out.error.bind(out) : out.warn.bind(out))(`${at}: ${f.message}`);
    if (r.resolved) out.info(`${at}: ${r.resolved.pinned}${r.written ? ' (written)' : ''}`);
    if (r.findings.length === 0 && !r.resolved && r.image !== undefined) out.ok(`${at}: ${r.interpolated ?? r.image}`);
  }
}

function summaryLine(reports: ImageReport[], files: number): string {
  const all = reports.flatMap((r) => r.findings);
  const errors = all.filter((f) => f.severity === 'error').length;
  const warnings = all.length - errors;
  const images = reports.filter((r) => r.image !== undefined).length;
  return `${images} image${images === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'}: ${errors} violation${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
}

function refSummary(ref: ImageRef): ImageReport['ref'] {
  return { domain: ref.domain, path: ref.path, ...(ref.tag ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) };
}

/** Tags worth resolving: parsed, tagged, not floating, and without unresolved variables. */
function resolvable(img: ComposeImage, policy: PinningPolicy): ImageRef | undefined {
  if (img.value === undefined || img.interpolationErrors.length) return undefined;
  const parsed = parseImageRef(img.value);
  if (!parsed.ok || !parsed.ref.tag || policy.floatingTags.includes(parsed.ref.tag.toLowerCase())) return undefined;
  return parsed.ref;
}

export function main(argv: string[], io: ScriptIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  return runScript(
    spec,
    argv,
    async (ctx) => {
      try {
        return await check(ctx);
      } catch (err) {
        if (ctx.values.format === 'github' && !ctx.out.json && err instanceof UsageError) stdout.write(`${githubUsageAnnotations(err).join('\n')}\n`);
        throw err;
      }
    },
    io,
  );

  async function check(ctx: ScriptContext): Promise<number> {
    const out = ctx.out;
    const format = (ctx.values.format as string | undefined) ?? 'text';
    if (format !== 'text' && format !== 'github') throw new UsageError(`--format must be text or github, not "${format}"`);
    if (format === 'github' && out.json) throw new UsageError('--format github and --json both claim stdout: choose one');
    const write = Boolean(ctx.values.write);
    const resolve = Boolean(ctx.values.resolve) || write;
    const envFile = ctx.values.dotenv as string | undefined;
    const policy = loadPolicy(ctx.values.config as string | undefined, envFile);
    const paths = ctx.positionals.length ? ctx.positionals : defaultFiles();
    if (paths.length === 0) throw new UsageError('no compose files to check (compose/*.yaml is empty)');

    const read = (p: string, env = composeEnv(dirname(p), envFile ? { envFile } : {}), from?: string) => {
      try {
        return { env, file: readComposeImages(p, env.env) };
      } catch (err) {
        if (from && err instanceof UsageError) throw new UsageError(`${err.message} (${from})`, err.details);
        throw err;
      }
    };
    // Files a checked file pulls in are part of the stack, and their images are checked too: the file a service
    // extends (interpolated with the variables of the project that extends it, as Compose does), and the files
    // of a top-level include: (each a project of its own, with its env_file or else the .env of its project
    // directory for defaults; the including project's variables win over those, as in compose-go).
    const readAll = () => {
      const all = paths.map((p) => read(p));
      const seen = (p: string) => all.some((f) => absolutePath(f.file.file) === p);
      for (let i = 0; i < all.length; i++) {
        const { env, file } = all[i]!;
        for (const img of file.images) {
          if (img.extendsFile && !seen(img.extendsFile)) all.push(read(img.extendsFile, env, `extended by service ${img.service} in ${file.file}`));
        }
        for (const inc of file.includes) {
          if (seen(inc.file)) continue;
          const own = composeEnv(inc.projectDir, envFile ? { envFile } : inc.envFile ? { envFile: inc.envFile } : {});
          const incEnv = { ...own, env: { ...own.env, ...env.env } };
          all.push(read(inc.file, incEnv, `included by ${file.file}:${inc.line}`));
        }
      }
      resolveInherited(all.map((f) => f.file));
      return all;
    };
    let files = readAll();
    // A check that finds nothing to check passes on anything: an empty or wrong file is a usage error.
    if (files.every((f) => f.file.images.length === 0)) {
      throw new UsageError(`no services in ${files.map((f) => f.file.file).join(', ')}: nothing to check (an empty file, or not the compose file?)`);
    }
    for (const f of files) out.detail(`${f.file.file}: variables from ${f.env.envFile ?? 'the process environment only'}`);

    // Resolve before judging, so that --write is judged on what it wrote.
    const resolved = new Map<string, ResolvedDigest | RegistryError>();
    const key = (img: ComposeImage) => `${img.file}\0${img.service}`;
    if (resolve) {
      const client = new RegistryClient({ insecureHosts: (ctx.values['insecure-registry'] as string[] | undefined) ?? [], signal: ctx.signal });
      const byRef = new Map<string, Promise<ResolvedDigest>>();
      for (const { file } of files) {
        for (const img of file.images) {
          const ref = resolvable(img, policy);
          if (!ref) continue;
          const id = `${ref.domain}/${ref.path}:${ref.tag}`;
          if (!byRef.has(id)) byRef.set(id, client.resolveDigest(ref));
          try {
            resolved.set(key(img), await byRef.get(id)!);
          } catch (err) {
            if (!(err instanceof RegistryError)) throw err;
            resolved.set(key(img), err);
          }
        }
      }
    }

    const written = new Set<string>();
    const writeNotes = new Map<string, string>();
    if (write) {
      for (const { file } of files) {
        const pins = new Map<ComposeImage, string>();
        for (const img of file.images) {
          const r = resolved.get(key(img));
          if (!r || r instanceof RegistryError || img.value === undefined) continue;
          const ref = parseImageRef(img.value);
          if (!ref.ok || ref.ref.digest) continue;
          const why = notWritable(img);
          if (why) {
            writeNotes.set(key(img), why);
            continue;
          }
          pins.set(img, withDigest(img.raw!, r.digest));
        }
        if (pins.size === 0) continue;
        const text = applyPins(file, pins);
        await writeFileAtomic(file.file, text, statSync(file.file).mode & 0o777);
        for (const img of pins.keys()) written.add(key(img));
        out.detail(`${file.file}: wrote ${pins.size} digest${pins.size === 1 ? '' : 's'}`);
      }
      if (written.size) files = readAll();
    }

    const reports: ImageReport[] = [];
    for (const { file } of files) {
      for (const img of file.images) {
        const verdict = checkImage(img, policy);
        const findings = [...verdict.findings];
        const r = resolved.get(key(img));
        const report: ImageReport = {
          file: img.file,
          line: img.line,
          col: img.col,
          service: img.service,
          ...(img.raw !== undefined ? { image: img.raw } : {}),
          ...(img.value !== undefined && img.value !== img.raw ? { interpolated: img.value } : {}),
          ...(verdict.ref ? { ref: refSummary(verdict.ref) } : {}),
          findings,
        };
        if (r instanceof RegistryError) {
          findings.push({ severity: 'error', rule: 'resolve-failed', message: `cannot resolve: ${r.message}` });
        } else if (r && verdict.ref) {
          report.resolved = { digest: r.digest, source: r.source, pinned: withDigest(img.value!, r.digest) };
          if (written.has(key(img))) report.written = true;
          const pinned = verdict.ref.digest;
          if (pinned && pinned !== r.digest && !report.written) {
            findings.push({ severity: 'warning', rule: 'digest-mismatch', message: `the registry now serves ${r.digest} for tag "${verdict.ref.tag}", not the pinned ${pinned} (the tag was re-pushed; re-pin deliberately)` });
          }
          // An image through an anchor that was pinned where the anchor is defined has its digest now: no note.
          const note = pinned ? undefined : writeNotes.get(key(img));
          if (note) findings.push({ severity: 'warning', rule: 'not-written', message: `not written: ${note}` });
        }
        reports.push(report);
      }
    }

    const failed = reports.some((r) => hasViolation(r.findings));
    const summary = summaryLine(reports, files.length);
    if (format === 'github') {
      const lines = reports.flatMap((r) => [
        ...r.findings.map((f) => githubAnnotation(r, f)),
        ...(r.resolved ? [`${location(r)} ${r.service}: ${r.resolved.pinned}${r.written ? ' (written)' : ''}`] : []),
      ]);
      stdout.write([...lines, `check-pinning: ${summary}`, ''].join('\n'));
    } else {
      reportText(out, reports);
      (failed ? out.error.bind(out) : out.info.bind(out))(`check-pinning: ${summary}`);
    }
    out.result({
      ok: !failed,
      exitCode: failed ? EXIT.failed : EXIT.ok,
      files: files.map((f) => ({ file: f.file.file, envFile: f.env.envFile ?? null })),
      policy,
      images: reports,
      summary,
    });
    return failed ? EXIT.failed : EXIT.ok;
  }
}

startIfEntry(import.meta.url, main);
