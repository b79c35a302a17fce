/**
 * CPU time of this process's threads, where the OS tells it (Linux: /proc/self/task/<tid>/stat, user +
 * system in 10 ms ticks), for the pool's timings and `advlab bench --suite parallel`: a thread's CPU
 * time is what it did, its wall time also counts the time it waited for a core (other threads, other
 * processes on a shared machine), so CPU time tells "more work" from "less of the cores".
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ; 100 on every Linux this runs on). */
const TICKS_PER_SECOND = 100;

/** CPU ms of thread `tid` of this process ('self': the calling thread), else undefined (not Linux, or the thread is gone). */
export function threadCpuMs(tid: number | 'self' = 'self'): number | undefined {
  try {
    const stat = readFileSync(tid === 'self' ? '/proc/thread-self/stat' : `/proc/self/task/${tid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after it start at ") ".
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** The calling thread's id in the OS (Linux), else undefined. */
export function ownThreadId(): number | undefined {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return undefined;
  }
}

/** CPU ms of every thread of this process now, by OS thread id (empty when the OS does not tell). */
export function processThreadsCpuMs(): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const t of tids) {
    const ms = threadCpuMs(Number(t));
    if (ms !== undefined) out.set(Number(t), ms);
  }
  return out;
}
