import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { waitFor } from '../support/wait';

/** Voluntary context switches of a process's main (event-loop) thread: each is a sleep that something ended. */
function mainThreadWakeups(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)![1]);
}

/**
 * An idle api or worker must not wake its event loop 100 times a second: on a VM each wake-up of a cold
 * process costs far more than its own work (bench/README.md, "Low load"). prom-client's event-loop
 * delay sampler did exactly that at its default 10 ms resolution; with `metrics.eventLoopResolutionMs`
 * at 100 an idle process measured about 11 wake-ups a second.
 */
describe('an idle api and worker', () => {
  const prefix = uniquePrefix();
  const processes: AppProcess[] = [];

  before(async () => {
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 1, tokens: 3 } }] }),
    };
    processes.push(...(await Promise.all([spawnApp('api', env), spawnApp('worker', env)])));
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await deletePrefix(prefix);
  });

  it('wake up fewer than 40 times a second each, and still report event-loop lag', async () => {
    // Start-up work (connections, script loads, the first sweeps) ends within a second or so.
    await sleep(1_500);
    const pids = processes.map((p) => p.child.pid!);
    const before = pids.map(mainThreadWakeups);
    const started = performance.now();
    // A rate is measured over a window: this is the window, not a wait for something to happen.
    await sleep(3_000);
    const seconds = (performance.now() - started) / 1_000;
    const rates = pids.map((pid, i) => (mainThreadWakeups(pid) - before[i]!) / seconds);
    for (const [i, rate] of rates.entries()) assert.ok(rate < 40, `${['api', 'worker'][i]} woke ${rate.toFixed(1)} times a second while idle`);

    for (const p of processes) {
      const text = await waitFor(`${p.metricsUrl} to report event-loop lag`, async () => {
        const body = await fetch(p.metricsUrl!).then((r) => r.text());
        return /^nodejs_eventloop_lag_p99_seconds\{[^}]*\} [0-9.e+-]+$/m.test(body) ? body : undefined;
      });
      assert.match(text, /nodejs_eventloop_lag_max_seconds/);
    }
  });
});
