// One lock for every mutating script: <root>/.lock holds pid, the process's start time and the command.
// A holder that is gone (or whose pid was reused by another process) is cleared and we say so; a live one is exit 3.
import { openSync, writeSync, closeSync, readFileSync, unlinkSync, statSync, linkSync, rmSync, readdirSync, renameSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ensureDirSync } from './fs-util.ts';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockedError, OpsError } from './errors.ts';

export interface LockInfo {
  pid: number;
  /** Kernel start time of the process (clock ticks since boot, /proc/<pid>/stat field 22), guards against pid reuse. */
  procStart: string | null;
  host: string;
  command: string;
  startedAt: string;
}

export interface Lock {
  path: string;
  release(): void;
}

/** Start time of a process from /proc, or null where /proc is unavailable. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ")".
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true; // we cannot see another host's processes: assume it holds the lock
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: the process exists but belongs to someone else.
  }
  const now = processStartTime(info.pid);
  return !(info.procStart && now && now !== info.procStart);
}

function statMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

export function lockPath(root: string): string {
  return join(root, '.lock');
}

/** A lock file's content, or null when it is not one of ours (valid JSON of another shape is as unreadable as garbage). */
function asLockInfo(data: unknown): LockInfo | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Record<string, unknown>;
  const ok = Number.isSafeInteger(d.pid) && (d.pid as number) > 0 && typeof d.host === 'string' && typeof d.command === 'string' && typeof d.startedAt === 'string' && (d.procStart === null || typeof d.procStart === 'string');
  return ok ? (d as unknown as LockInfo) : null;
}

/**
 * How long a `.lock.clearing` that cannot be judged (unreadable, or from another host) may exist before it is taken
 * for a leftover. One of this host's is judged by its pid: a clearer that is alive, however slow, is never overtaken.
 */
const CLEARING_STALE_MS = 60_000;

/** A file's text, or undefined when it is gone. */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Take the lock or throw LockedError (exit 3). `onStale` is told when a dead holder's lock was cleared.
 *
 * The lock is written whole into a file of our own and then hard-linked as `.lock`: link(2) fails when `.lock`
 * exists, so taking it is atomic and nobody ever reads a half-written lock. A lock that cannot be written (a full
 * file system) leaves nothing behind. A stale lock is removed only while holding `.lock.clearing` (taken the same
 * way, and given up for a leftover only when its holder is dead), and only if `.lock` still holds exactly what was
 * judged stale: it is renamed aside and compared, and put back if it is not. Two runs that find the same stale lock
 * cannot both take the lock, the slower one removing the lock the faster one has just taken.
 */
export function acquireLock(root: string, command: string, onStale: (msg: string) => void): Lock {
  ensureDirSync(root);
  const path = lockPath(root);
  const me: LockInfo = {
    pid: process.pid,
    procStart: processStartTime(process.pid),
    host: hostname(),
    command,
    startedAt: new Date().toISOString(),
  };
  const text = JSON.stringify(me);
  const mine = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    createWith(mine, text);
  } catch (err) {
    throw new OpsError(`cannot write a lock file in ${root}: ${(err as Error).message}`);
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkOrCreate(mine, path, text);
        removeLeftovers(root);
        let released = false;
        return {
          path,
          release() {
            if (released) return;
            released = true;
            if (readText(path) === text) unlinkSync(path);
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const judged = readText(path);
      if (judged === undefined) continue; // released just now: try again
      const holder = parseLock(judged);
      if (holder && isAlive(holder)) {
        throw new LockedError(`another run holds the lock ${path}: ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})`);
      }
      if (!holder && Date.now() - statMtime(path) < 5000) {
        // Unreadable and fresh: a run writing it in place (a file system without hard links) may be between
        // creating and writing it.
        throw new LockedError(`another run is taking the lock ${path} right now`);
      }
      if (!clearStale(path, judged, mine, text)) continue;
      onStale(
        holder
          ? `cleared a stale lock left by ${holder.command} (pid ${holder.pid}, started ${holder.startedAt}): that process is gone`
          : `cleared an unreadable lock file ${path}`,
      );
    }
    throw new LockedError(`could not take the lock ${path}: it keeps reappearing`);
  } finally {
    rmSync(mine, { force: true });
  }
}

function parseLock(text: string): LockInfo | null {
  try {
    return asLockInfo(JSON.parse(text));
  } catch {
    return null;
  }
}

/** Create `path` exclusively (EEXIST if it is there) holding `text`; a write that fails leaves no file behind. */
function createWith(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, text);
  } catch (err) {
    closeSync(fd);
    unlinkSync(path);
    throw err;
  }
  closeSync(fd);
}

/** link(2) our file as `target`; where the file system has no hard links, an exclusive create written in place. */
function linkOrCreate(mine: string, target: string, text: string): void {
  try {
    linkSync(mine, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    createWith(target, text);
  }
}

/**
 * Remove `path` only if it holds exactly `expected`: renamed aside first (atomic: whatever is there then), compared,
 * and put back if it is something else (a lock taken since it was judged).
 */
export function removeIfUnchanged(path: string, expected: string): boolean {
  const aside = `${path}.aside.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    if (readText(aside) === expected) return true;
    try {
      linkSync(aside, path);
    } catch (err) {
      // EEXIST: a run took the lock in the instant it was aside. Without hard links, rename back (it may replace).
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') renameSync(aside, path);
    }
    return false;
  } finally {
    rmSync(aside, { force: true });
  }
}

/** Lock files of runs on this host killed while taking the lock (`.lock.<pid>.<random>`, `.lock.aside.*`): their pid is gone. */
function removeLeftovers(root: string): void {
  for (const name of readdirSync(root)) {
    const m = /^\.lock\.(?:(?:clearing\.)?aside\.)?(\d+)\.[0-9a-f]{8}$/.exec(name);
    if (!m) continue;
    const file = join(root, name);
    const info = parseLock(readText(file) ?? '');
    // Another host's (a shared root) or another pid namespace's run is not ours to judge by pid.
    if (info && info.host !== hostname()) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(file, { force: true });
    }
  }
}

/**
 * Remove the stale lock `path` if it still holds `judged`, holding `.lock.clearing` (our own lock file linked there)
 * while at it. False when nothing was removed: the lock changed meanwhile, or a dead clearer's leftover went first.
 */
function clearStale(path: string, judged: string, mine: string, text: string): boolean {
  const clearing = `${path}.clearing`;
  try {
    linkOrCreate(mine, clearing, text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const current = readText(clearing);
    if (current === undefined) return false; // just finished: look again
    const clearer = parseLock(current);
    // This host's clearer is judged by its pid; one that cannot be judged (unreadable, another host's) by its age.
    const left = clearer && clearer.host === hostname() ? !isAlive(clearer) : Date.now() - statMtime(clearing) > CLEARING_STALE_MS;
    if (left) {
      removeIfUnchanged(clearing, current); // left by a run that died while clearing: the next attempt takes it
      return false;
    }
    throw new LockedError(`another run is clearing a stale lock ${path} right now${clearer ? ` (pid ${clearer.pid} on ${clearer.host})` : ''}`);
  }
  try {
    return removeIfUnchanged(path, judged);
  } finally {
    removeIfUnchanged(clearing, text);
  }
}
