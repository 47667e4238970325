// The full backup set of the plan: PostgreSQL (real), S3 (real s3rver), Qdrant (fake), Neo4j (fake, through the
// docker stand-in) in one backup-all; then restore-all onto empty targets, as on a fresh host, counts compared.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client, PutObjectCommand, CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { requireTools } from './helpers/tools.ts';
import { ROOT, runScriptProcess } from './helpers/scripts.ts';
import { startBackupEnv, type BackupEnv } from './helpers/backup-env.ts';
import { startS3rver, type S3rverHandle } from './helpers/s3rver.ts';
import { startQdrantFake, type QdrantFake } from './fakes/qdrant-fake.ts';
import { startNeo4jFake, type Neo4jFake } from './fakes/neo4j-fake.ts';
import { listCompleteSets } from '../lib/backup-set.ts';

const skip = requireTools(['/usr/lib/postgresql/15/bin/initdb', 'zstd', 'psql', 'pg_dump', 'pg_restore']);
let env: BackupEnv;
const servers: { s3: S3rverHandle[]; qdrant: QdrantFake[]; neo4j?: Neo4jFake } = { s3: [], qdrant: [] };

const s3client = (s3: S3rverHandle) =>
  new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey }, requestChecksumCalculation: 'WHEN_REQUIRED' });

before(async () => {
  if (skip) return;
  env = await startBackupEnv();
  env.pg.sql('CREATE DATABASE llc;');
  env.pg.sql('CREATE TABLE documents (id int PRIMARY KEY, title text); INSERT INTO documents SELECT g, md5(g::text) FROM generate_series(1, 2500) g;', 'llc');
  const s3 = await startS3rver();
  servers.s3.push(s3);
  const c = s3client(s3);
  await c.send(new CreateBucketCommand({ Bucket: 'uploads' }));
  for (let i = 0; i < 25; i++) await c.send(new PutObjectCommand({ Bucket: 'uploads', Key: `docs/${i}.txt`, Body: `document ${i}\n`.repeat(i + 1), ContentType: 'text/plain', Metadata: { origin: 'test' } }));
  const q = await startQdrantFake({});
  servers.qdrant.push(q);
  await fetch(`${q.url}/collections/chunks`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vectors: { size: 3, distance: 'Cosine' } }) });
  const points = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, vector: [1, i, 2], payload: { doc: i } }));
  await fetch(`${q.url}/collections/chunks/points?wait=true`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ points }) });
  servers.neo4j = await startNeo4jFake({ store: join(env.dir, 'neo4j-store'), password: 'graph-pw-123' });
  servers.neo4j.setGraph('neo4j', { nodes: 310, relationships: 720 });
  writeFileSync(join(env.dir, 'compose.yaml'), 'services: {}\n');
  writeFileSync(join(env.dir, '.env'), `TEST_PGPASSWORD=${env.pg.password}\nS3_SECRET=${s3.secretKey}\nNEO4J_PASSWORD=graph-pw-123\n`, { mode: 0o600 });
});

after(async () => {
  for (const s of servers.s3) await s.stop();
  for (const q of servers.qdrant) await q.close();
  await servers.neo4j?.close();
  env?.destroy();
});

function config(name: string, s3: S3rverHandle, q: QdrantFake, restoreInto?: Record<string, string>): string {
  const path = join(env.dir, name);
  writeFileSync(
    path,
    [
      'compose: { files: [compose.yaml], projectName: llc }',
      'backup:',
      `  root: ${env.root}`,
      'sources:',
      '  postgres:',
      '    via: local',
      `    url: ${env.pg.url('postgres')}`,
      '    password: ${TEST_PGPASSWORD}',
      '    databases: [llc]',
      ...(restoreInto ? [`    restoreInto: ${JSON.stringify(restoreInto)}`] : []),
      `  s3: { endpoint: "${s3.endpoint}", accessKey: "${s3.accessKey}", secretKey: "\${S3_SECRET}", buckets: all }`,
      `  qdrant: { url: "${q.url}" }`,
      `  neo4j: { via: compose, httpUrl: "${servers.neo4j!.url}", password: "\${NEO4J_PASSWORD}", databases: [neo4j, system] }`,
      '',
    ].join('\n'),
  );
  return path;
}

const fakeDocker = () => ({ PATH: `${join(ROOT, 'test/fakes')}:${process.env.PATH}`, FAKE_DOCKER_LOG: join(env.dir, 'docker.log'), FAKE_NEO4J_STORE: servers.neo4j!.store });

test('one backup-all writes one set with all four stores; restore-all onto empty targets brings all four back (s3rver, Qdrant fake, Neo4j fake)', { skip }, async () => {
  const cfg = config('all.yaml', servers.s3[0]!, servers.qdrant[0]!);
  const b = await runScriptProcess('backup-all', ['--config', cfg, '--json'], { env: fakeDocker() });
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const id = (JSON.parse(b.stdout) as { id: string }).id;
  const set = (await listCompleteSets(env.root)).find((s) => s.id === id)!;
  assert.deepEqual(Object.keys(set.manifest.sources).sort(), ['neo4j', 'postgres', 'qdrant', 's3']);
  for (const source of ['postgres', 'neo4j', 'qdrant', 's3']) {
    assert.ok(set.manifest.artifacts.some((a) => a.source === source && /^[0-9a-f]{64}$/.test(a.sha256)), `${source} artifacts with sha256`);
  }
  assert.equal(set.manifest.sources.postgres!.counts.llc!['public.documents'], 2500);
  assert.deepEqual(set.manifest.sources.qdrant!.counts.chunks, { points: 40 });
  assert.deepEqual(set.manifest.sources.neo4j!.counts.neo4j, { nodes: 310, relationships: 720 });
  assert.equal(set.manifest.sources.s3!.counts.uploads!.objects, 25);

  const v = await runScriptProcess('verify-latest', ['--config', cfg, '--checksums'], { env: fakeDocker() });
  assert.equal(v.code, 0, v.stdout + v.stderr);

  // A fresh host: empty S3 and Qdrant servers, an empty graph, a new database name.
  const s3b = await startS3rver();
  servers.s3.push(s3b);
  const qb = await startQdrantFake({ version: servers.qdrant[0]!.version });
  servers.qdrant.push(qb);
  servers.neo4j!.setGraph('neo4j', { nodes: 0, relationships: 0 });
  const fresh = config('fresh.yaml', s3b, qb, { llc: 'llc_fresh' });
  const r = await runScriptProcess('restore-all', ['--config', fresh, '--yes'], { env: fakeDocker() });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const source of ['postgres', 'neo4j', 'qdrant', 's3']) assert.match(r.stdout, new RegExp(`${source}: counts match the manifest`));
  assert.equal(env.pg.sql('SELECT count(*) FROM documents;', 'llc_fresh'), '2500');
  const listed = await s3client(s3b).send(new ListObjectsV2Command({ Bucket: 'uploads' }));
  assert.equal(listed.KeyCount, 25);
  assert.equal(qb.collections.get('chunks')?.points.size, 40);
  assert.deepEqual(servers.neo4j!.graph('neo4j'), { nodes: 310, relationships: 720 });
  // Restore order of the design: postgres, neo4j, qdrant, s3.
  const order = ['postgres', 'neo4j', 'qdrant', 's3'].map((m) => r.stdout.indexOf(`${m}: counts match the manifest`));
  assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1]!)), `restore order in:\n${r.stdout}`);
});

test('restore-all without --from takes the newest set holding every configured source (as verify-latest does), and names a newer partial set', { skip }, async () => {
  const cfg = config('all.yaml', servers.s3[0]!, servers.qdrant[0]!);
  const full = await runScriptProcess('backup-all', ['--config', cfg, '--json'], { env: fakeDocker() });
  assert.equal(full.code, 0, full.stdout + full.stderr);
  const fullId = (JSON.parse(full.stdout) as { id: string }).id;
  await new Promise((r) => setTimeout(r, 1100)); // set ids are seconds
  // What migrate.ts takes before a migration: PostgreSQL only, and newer.
  const partial = await runScriptProcess('backup-all', ['--config', cfg, '--only', 'postgres', '--json'], { env: fakeDocker() });
  assert.equal(partial.code, 0, partial.stdout + partial.stderr);
  const partialId = (JSON.parse(partial.stdout) as { id: string }).id;
  assert.ok(partialId > fullId);
  const all = await runScriptProcess('restore-all', ['--config', cfg, '--dry-run', '--force'], { env: fakeDocker() });
  assert.equal(all.code, 0, all.stdout + all.stderr);
  assert.match(all.stdout, new RegExp(`restoring set ${fullId} \\(.*\\): postgres, neo4j, qdrant, s3`));
  assert.match(all.stdout, new RegExp(`newer set ${partialId} holds only postgres of postgres, neo4j, qdrant, s3: not chosen \\(restore it with --from ${partialId} --only postgres\\)`));
  assert.doesNotMatch(all.stdout, /holds no backup of/);
  const verified = await runScriptProcess('verify-latest', ['--config', cfg], { env: fakeDocker() });
  assert.match(verified.stdout, new RegExp(`set ${fullId} verified`), 'verify-latest checks the set restore-all takes');
  const pgOnly = await runScriptProcess('restore-all', ['--config', cfg, '--dry-run', '--force', '--only', 'postgres'], { env: fakeDocker() });
  assert.equal(pgOnly.code, 0, pgOnly.stdout + pgOnly.stderr);
  assert.match(pgOnly.stdout, new RegExp(`restoring set ${partialId} \\(.*\\): postgres$`, 'm'));
  // A newer set of other sources only is not named for a restore of PostgreSQL.
  const s3Only = await runScriptProcess('backup-all', ['--config', cfg, '--only', 's3', '--json'], { env: fakeDocker() });
  assert.equal(s3Only.code, 0, s3Only.stdout + s3Only.stderr);
  const pgAgain = await runScriptProcess('restore-all', ['--config', cfg, '--dry-run', '--force', '--only', 'postgres'], { env: fakeDocker() });
  assert.doesNotMatch(pgAgain.stdout, /newer set/);
});
