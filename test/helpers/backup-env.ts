// A throwaway PostgreSQL plus a config dir for the backup scripts, shared by the integration tests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgSandbox, type PgSandbox } from '../../lib/pg-sandbox.ts';

export interface BackupEnv {
  pg: PgSandbox;
  dir: string;
  root: string;
  textfileDir: string;
  /** Write ops.config.yaml (postgres via local; the password through .env) and return its path. */
  config(opts: { databases: string[]; restoreInto?: Record<string, string>; extra?: string; name?: string }): string;
  destroy(): void;
}

export async function startBackupEnv(): Promise<BackupEnv> {
  const pg = await startPgSandbox();
  const dir = mkdtempSync(join(tmpdir(), 'llc-test-'));
  const root = join(dir, 'backups');
  const textfileDir = join(dir, 'textfile');
  writeFileSync(join(dir, '.env'), `TEST_PGPASSWORD=${pg.password}\n`, { mode: 0o600 });
  return {
    pg,
    dir,
    root,
    textfileDir,
    config({ databases, restoreInto, extra, name }) {
      const path = join(dir, name ?? 'ops.config.yaml');
      writeFileSync(
        path,
        [
          'backup:',
          `  root: ${root}`,
          'sources:',
          '  postgres:',
          '    via: local',
          `    url: ${pg.url('postgres')}`,
          '    password: ${TEST_PGPASSWORD}',
          `    databases: ${JSON.stringify(databases)}`,
          ...(restoreInto ? [`    restoreInto: ${JSON.stringify(restoreInto)}`] : []),
          'monitoring:',
          `  textfileDir: ${textfileDir}`,
          extra ?? '',
        ].join('\n'),
      );
      return path;
    },
    destroy() {
      pg.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
