// One lock for every mutating script: <root>/.lock holds pid, the process's start time and the command.
// A holder that is gone (or whose pid was reused by another process) is cleared and we say so; a live one is exit 3.
import { openSync, writeSync, closeSync, readFileSync, unlinkSync, statSync, linkSync, rmSync, readdirSync } from 'node:fs';
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

export function readLock(path: string): LockInfo | null {
  try {
    return asLockInfo(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    return null;
  }
}

/** A lock file's content, or null when it is not one of ours (valid JSON of another shape is as unreadable as garbage). */
function asLockInfo(data: unknown): LockInfo | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Record<string, unknown>;
  const ok = Number.isSafeInteger(d.pid) && (d.pid as number) > 0 && typeof d.host === 'string' && typeof d.command === 'string' && typeof d.startedAt === 'string' && (d.procStart === null || typeof d.procStart === 'string');
  return ok ? (d as unknown as LockInfo) : null;
}

/** Inode of a path, or undefined when it is gone. */
function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** How long a `.lock.clearing` may exist before it is taken for the leftover of a run that died while clearing. */
const CLEARING_STALE_MS = 10_000;

/**
 * Take the lock or throw LockedError (exit 3). `onStale` is told when a dead holder's lock was cleared.
 *
 * The lock is written whole into a file of our own and then hard-linked as `.lock`: link(2) fails when `.lock`
 * exists, so taking it is atomic and nobody ever reads a half-written lock. A lock that cannot be written (a full
 * file system) leaves nothing behind. A stale lock is removed only under `.lock.clearing` (created exclusively), and
 * only if `.lock` is still the very file judged stale: two runs that find the same stale lock cannot each remove it
 * and take the lock, one after the other removing the lock the first has just taken.
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
  const mine = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    const fd = openSync(mine, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(me));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    rmSync(mine, { force: true });
    throw new OpsError(`cannot write a lock file in ${root}: ${(err as Error).message}`);
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        takeLock(mine, path, me);
        removeLeftovers(root);
        let released = false;
        return {
          path,
          release() {
            if (released) return;
            released = true;
            const current = readLock(path);
            if (current && current.pid === me.pid && current.startedAt === me.startedAt) unlinkSync(path);
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const judged = inodeOf(path);
      if (judged === undefined) continue; // released just now: try again
      const holder = readLock(path);
      if (holder && isAlive(holder)) {
        throw new LockedError(`another run holds the lock ${path}: ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})`);
      }
      if (!holder && Date.now() - statMtime(path) < 5000) {
        // Unreadable and fresh: a run writing it in place (a file system without hard links) may be between
        // creating and writing it.
        throw new LockedError(`another run is taking the lock ${path} right now`);
      }
      if (!clearStale(path, judged)) continue;
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

/** link(2) our file as the lock; where the file system has no hard links, an exclusive create written in place. */
function takeLock(mine: string, path: string, me: LockInfo): void {
  try {
    linkSync(mine, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(me));
    } catch (e) {
      closeSync(fd);
      unlinkSync(path);
      throw e;
    }
    closeSync(fd);
  }
}

/** Our own lock files (`.lock.<pid>.<random>`) of runs killed while taking the lock: their pid is gone. */
function removeLeftovers(root: string): void {
  for (const name of readdirSync(root)) {
    const m = /^\.lock\.(\d+)\.[0-9a-f]{8}$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(root, name), { force: true });
    }
  }
}

/**
 * Remove the stale lock `path` if it is still the file with inode `judged`, holding `.lock.clearing` while at it.
 * False when nothing was removed (the lock changed meanwhile, or a dead clearer's leftover was removed instead).
 */
function clearStale(path: string, judged: number): boolean {
  const clearing = `${path}.clearing`;
  let fd: number;
  try {
    fd = openSync(clearing, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (Date.now() - statMtime(clearing) > CLEARING_STALE_MS) {
      rmSync(clearing, { force: true }); // left by a run that died while clearing: the next attempt takes it
      return false;
    }
    throw new LockedError(`another run is clearing a stale lock ${path} right now`);
  }
  closeSync(fd);
  try {
    if (inodeOf(path) !== judged) return false;
    unlinkSync(path);
    return true;
  } finally {
    rmSync(clearing, { force: true });
  }
}
