// `docker compose ps -a --format json`, parsed and judged (pure). Compose v2.21+ prints one JSON object per line,
// older v2 releases one JSON array (DESIGN.md §6); both shapes give the same entries here.

export interface ComposeContainer {
  /** Container name, e.g. llc-postgres-1. */
  Name: string;
  Service: string;
  /** running, exited, restarting, created, paused, dead, removing. */
  State: string;
  /** healthy, unhealthy, starting, or "" for a service without a healthcheck. */
  Health: string;
  ExitCode: number;
  /** Made by `docker compose run` (label com.docker.compose.oneoff=True): `ps -a` lists those too. */
  OneOff: boolean;
}

/** Labels as compose ps prints them: "k=v,k=v" (one string), or an object in some versions. */
function oneOff(labels: unknown): boolean {
  if (typeof labels === 'string') return labels.split(',').some((kv) => /^com\.docker\.compose\.oneoff=true$/i.test(kv.trim()));
  if (typeof labels === 'object' && labels !== null) return /^true$/i.test(String((labels as Record<string, unknown>)['com.docker.compose.oneoff'] ?? ''));
  return false;
}

function entry(raw: unknown, where: string): ComposeContainer {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a JSON object`);
  const o = raw as Record<string, unknown>;
  if (typeof o.Service !== 'string' || !o.Service) throw new Error(`${where}: no "Service" field`);
  if (typeof o.State !== 'string') throw new Error(`${where}: no "State" field`);
  const code = typeof o.ExitCode === 'number' ? o.ExitCode : Number(o.ExitCode ?? 0);
  return {
    Name: typeof o.Name === 'string' ? o.Name : o.Service,
    Service: o.Service,
    State: o.State.toLowerCase(),
    Health: typeof o.Health === 'string' ? o.Health.toLowerCase() : '',
    ExitCode: Number.isFinite(code) ? code : -1,
    OneOff: oneOff(o.Labels),
  };
}

/** Parse either output shape. Empty output means no containers. Anything else that is not JSON is an error. */
export function parseComposePs(text: string): ComposeContainer[] {
  const trimmed = text.trim();
  if (!trimmed) return [];
  if (trimmed.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(trimmed);
    } catch (err) {
      throw new Error(`compose ps output: not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(arr)) throw new Error('compose ps output: expected a JSON array');
    return arr.map((o, i) => entry(o, `compose ps output [${i}]`));
  }
  return trimmed
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line, i) => {
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        throw new Error(`compose ps output line ${i + 1}: not JSON: ${line.slice(0, 120)}`);
      }
      return entry(o, `compose ps output line ${i + 1}`);
    });
}

export interface ServiceVerdict {
  service: string;
  /** ok; wait: not there yet (starting), worth another look; fail: will not fix itself. */
  verdict: 'ok' | 'wait' | 'fail';
  reason: string;
}

export interface ServiceExpectations {
  /** Long-running services: must be running and healthy. */
  services: string[];
  /** One-shot services (migrations): must have exited 0. */
  oneShots: string[];
}

/**
 * One verdict per container of each expected service (a service with none: one "no container" verdict), in the
 * order given. Containers of `docker compose run` (an operator's shell, an old one-off migration) are not the
 * service and are not judged.
 */
export function judgeServices(containers: ComposeContainer[], expect: ServiceExpectations): ServiceVerdict[] {
  const byService = new Map<string, ComposeContainer[]>();
  for (const c of containers.filter((x) => !x.OneOff)) byService.set(c.Service, [...(byService.get(c.Service) ?? []), c]);
  const verdicts: ServiceVerdict[] = [];
  for (const service of expect.oneShots) {
    const list = byService.get(service) ?? [];
    if (list.length === 0) {
      verdicts.push({ service, verdict: 'wait', reason: 'no container yet (one-shot)' });
      continue;
    }
    for (const c of list) verdicts.push({ service, ...named(oneShotVerdict(c), c, list) });
  }
  for (const service of expect.services) {
    const list = byService.get(service) ?? [];
    if (list.length === 0) {
      verdicts.push({ service, verdict: 'wait', reason: 'no container' });
      continue;
    }
    // A scaled service: every replica must be healthy.
    for (const c of list) verdicts.push({ service, ...named(longRunningVerdict(c), c, list) });
  }
  return verdicts;
}

/** With several containers (replicas), the reason names the one it is about. */
function named(v: Omit<ServiceVerdict, 'service'>, c: ComposeContainer, list: ComposeContainer[]): Omit<ServiceVerdict, 'service'> {
  return list.length > 1 ? { ...v, reason: `${c.Name} ${v.reason}` } : v;
}

function oneShotVerdict(c: ComposeContainer): Omit<ServiceVerdict, 'service'> {
  if (c.State === 'exited') {
    return c.ExitCode === 0 ? { verdict: 'ok', reason: 'exited 0' } : { verdict: 'fail', reason: `exited ${c.ExitCode}` };
  }
  if (c.State === 'dead') return { verdict: 'fail', reason: 'dead' };
  return { verdict: 'wait', reason: `${c.State} (one-shot, not finished)` };
}

function longRunningVerdict(c: ComposeContainer): Omit<ServiceVerdict, 'service'> {
  if (c.State === 'running') {
    if (c.Health === 'healthy') return { verdict: 'ok', reason: 'running, healthy' };
    if (c.Health === '') return { verdict: 'fail', reason: 'running without a healthcheck (compose.prod.yaml gives every service one)' };
    // unhealthy can still turn healthy (retries, start_period): the deadline decides.
    return { verdict: 'wait', reason: `running, ${c.Health}` };
  }
  if (c.State === 'restarting' || c.State === 'created') return { verdict: 'wait', reason: c.State };
  if (c.State === 'exited') return { verdict: 'fail', reason: `exited ${c.ExitCode}${c.ExitCode === 0 ? ' (a one-shot? list it in smoke.oneShots)' : ''}` };
  return { verdict: 'fail', reason: c.State };
}
