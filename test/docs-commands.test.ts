// Every command shown in README.md, docs/ and cron/ names an existing script and only flags that script has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { findCommands, shellWords, type DocCommand } from '../lib/doc-commands.ts';
import { parseCommand, type CommandSpec } from '../lib/cli.ts';
import { ROOT } from './helpers/scripts.ts';

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const files = [join(ROOT, 'README.md'), ...walk(join(ROOT, 'docs')), ...walk(join(ROOT, 'cron'))].filter((f) => existsSync(f) && /\.(md|crontab|service|timer|txt|sh)$|crontab/.test(f));
const commands: DocCommand[] = files.flatMap((f) => findCommands(relative(ROOT, f), readFileSync(f, 'utf8')));

test('shellWords stops at shell operators and strips quotes', () => {
  assert.deepEqual(shellWords(` --only postgres --config "/a b/c.yaml" >> /var/log/x 2>&1 && next`), ['--only', 'postgres', '--config', '/a b/c.yaml']);
  assert.deepEqual(shellWords(' --checksums` and more'), ['--checksums']);
  assert.deepEqual(shellWords(" --deep'`."), ['--deep'], 'the closing quote of sh -c ends the command');
  assert.deepEqual(shellWords(' --from <id> --json < in.txt'), ['--from', '<id>', '--json'], 'a <placeholder> is a value; a bare < redirects');
});

test('findCommands: every command of a line, node --import tsx, absolute paths, continuations at their first line, npm run -- args', () => {
  const text = [
    'intro',
    'npx tsx scripts/backup-all.ts \\',
    '   --only postgres \\',
    '   --json',
    'cd /srv && npx tsx scripts/backup-all.ts >> b.log 2>&1 && npx tsx scripts/rotate.ts --prune; node --import tsx /srv/llc-ops/scripts/verify-latest.ts --deep',
    'node --max-semi-space-size=4 --import=tsx ./scripts/rotate.ts --dry-run;',
    'npm run demo -- --rows 5 && npm test && npm ci',
  ].join('\n');
  const got = findCommands('f.md', text).map((c) => [c.line, c.script, c.args.join(' ')]);
  assert.deepEqual(got, [
    [2, 'backup-all', '--only postgres --json'],
    [5, 'backup-all', ''],
    [5, 'rotate', '--prune'],
    [5, 'verify-latest', '--deep'],
    [6, 'rotate', '--dry-run'],
    [7, 'npm:demo', '--rows 5'],
    [7, 'npm:test', ''],
  ]);
});

test('the docs show commands at all (this test is not vacuous)', () => {
  assert.ok(commands.length >= 10, `found ${commands.length} commands in ${files.length} files`);
  assert.ok(commands.some((c) => c.file === 'README.md' && c.script === 'npm:demo'), 'README shows npm run demo');
  assert.ok(commands.some((c) => c.file === 'README.md' && c.script === 'npm:test'), 'README shows npm test');
});

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

for (const c of commands) {
  test(`${c.file}:${c.line}: ${c.text.slice(0, 100)}`, async () => {
    let script = c.script;
    if (script.startsWith('npm:')) {
      const body = pkg.scripts[script.slice(4)];
      assert.ok(body, `package.json has no script ${script.slice(4)}`);
      if (c.args.length === 0) return;
      // `npm run demo -- --rows 5`: the words after -- go to the script the package.json line runs.
      const target = /^tsx scripts\/([a-z0-9-]+)\.ts$/.exec(body);
      assert.ok(target, `npm run ${script.slice(4)} passes ${c.args.join(' ')} to "${body}", which has no flags to check them against`);
      script = target[1]!;
    }
    const path = join(ROOT, 'scripts', `${script}.ts`);
    assert.ok(existsSync(path), `scripts/${c.script}.ts does not exist`);
    const mod = (await import(path)) as { spec?: CommandSpec };
    assert.ok(mod.spec, `scripts/${c.script}.ts exports no spec`);
    // The real parser: unknown flags, missing values and stray positionals fail here as they would for the operator.
    assert.doesNotThrow(() => parseCommand(mod.spec!, c.args), `${c.file}:${c.line}: ${c.args.join(' ')}`);
  });
}
