import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Whether a process exists on this host (signal 0; EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** When a process started (clock ticks after boot, /proc/<pid>/stat), or null when it is not there to read. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * This process, named so that no other process is taken for it: host name,
 * pid and start time. A pid alone is not enough once processes live in pid
 * namespaces (a restarted worker container has its predecessor's pid).
 */
export function processIdentity(pid = process.pid): string {
  return `${hostname()}:${pid}:${startTime(pid) ?? '?'}`;
}

/**
 * Whether the process an identity names is still running: true, false, or
 * null when this process cannot tell (it is on another host, or in another
 * container with its own host name).
 */
export function identityAlive(identity: string): boolean | null {
  const [host, pidText, start] = identity.split(':');
  if (host !== hostname()) return null;
  const pid = Number(pidText);
  if (!processAlive(pid)) return false;
  // An identity without a start time (older labels) is judged by its pid.
  return start === undefined || start === '?' || startTime(pid) === start;
}
