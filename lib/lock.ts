// One lock for every mutating script: <root>/.lock holds pid, the process's start time and the command.
// A holder that is gone (or whose pid was reused by another process) is cleared and we say so; a live one is exit 3.
import { openSync, writeSync, closeSync, readFileSync, unlinkSync, statSync } from 'node:fs';
import { ensureDirSync } from './fs-util.ts';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockedError } from './errors.ts';

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
    return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

/**
 * Take the lock or throw LockedError (exit 3). `onStale` is told when a dead holder's lock was cleared.
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
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify(me));
      } finally {
        closeSync(fd);
      }
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
      const holder = readLock(path);
      if (holder && isAlive(holder)) {
        throw new LockedError(
          `another run holds the lock ${path}: ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})`,
        );
      }
      if (!holder && Date.now() - statMtime(path) < 5000) {
        // Unreadable and fresh: another run may be between creating and writing it.
        throw new LockedError(`another run is taking the lock ${path} right now`);
      }
      onStale(
        holder
          ? `cleared a stale lock left by ${holder.command} (pid ${holder.pid}, started ${holder.startedAt}): that process is gone`
          : `cleared an unreadable lock file ${path}`,
      );
      try {
        unlinkSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
  throw new LockedError(`could not take the lock ${path}: it keeps reappearing`);
}
