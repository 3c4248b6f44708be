import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let installed = false;

/**
 * Kills `child` when this test process ends without stopping it: an `after` hook that never ran (the
 * runner timed the file out and sent SIGTERM, or an assertion in `before` threw) would otherwise leave
 * api, worker and redis-server processes running through the rest of the suite.
 */
export function reapOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (installed) return;
  installed = true;
  const killAll = () => {
    for (const process of live) if (process.exitCode === null && process.signalCode === null) process.kill('SIGKILL');
  };
  process.once('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    });
  }
}
