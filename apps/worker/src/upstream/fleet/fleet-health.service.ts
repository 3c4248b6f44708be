import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LOGGER, type Logger } from '@tokenwire/core';
import { FleetRouterService, type Fleet } from './fleet-router.service';
import type { Replica } from './fleet-deployments';
import { extraLoad, replicaSignals } from './replica-metrics';

/**
 * Keeps each fleet's membership and health current: registers the replicas, re-resolves
 * DNS-discovered ones (a replica that leaves drops its routing entries), and probes each
 * replica's health path. One worker probes a given replica per interval (a lock in Redis);
 * a failed probe drains the replica for every worker until a probe passes.
 */
@Injectable()
export class FleetHealthService implements OnModuleInit, OnApplicationShutdown {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly probing = new Set<string>();
  /** What this worker last saw of each replica's probe, to log changes only. */
  private readonly lastHealthy = new Map<string, boolean>();

  constructor(
    private readonly router: FleetRouterService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    for (const fleet of this.router.all()) {
      const { model } = fleet.deployments;
      await this.discover(fleet);
      if (fleet.deployments.discovered) this.every(model.discover!.refreshMs, () => this.discover(fleet));
      this.every(sweepIntervalMs(model.routing), () => this.sweep(fleet));
      if (fleet.deployments.list().some((replica) => replica.metricsUrl) || (fleet.deployments.discovered && model.health.metricsPath)) {
        this.every(model.health.metricsIntervalMs, () => this.scrapeAll(fleet));
        this.run(this.scrapeAll(fleet));
      }
      if (model.health.probePath !== null || fleet.deployments.list().some((r) => r.probeUrl)) {
        this.every(model.health.probeIntervalMs, () => this.probeAll(fleet));
        this.run(this.probeAll(fleet));
      }
    }
  }

  onApplicationShutdown(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => this.run(task()), ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** Probes and refreshes log their own failures; this catches what they could not. */
  private run(task: Promise<void>): void {
    task.catch((error: unknown) => this.logger.warn({ err: error }, 'fleet health task failed'));
  }

  private async discover(fleet: Fleet): Promise<void> {
    const { deployments, state } = fleet;
    const name = deployments.model.name;
    try {
      const { joined, left } = await deployments.refresh();
      if (joined.length || left.length) this.logger.info({ upstreamModel: name, joined: joined.map((r) => r.id), left }, 'fleet membership changed');
      for (const id of left) await state.forget(id);
      if (!deployments.discovered) await this.forgetUnconfigured(fleet);
      for (const replica of deployments.list()) {
        await state.register(replica.id, { url: replica.url, weight: replica.weight, maxConcurrency: replica.maxConcurrency, seenAt: Date.now() });
      }
    } catch (error) {
      this.logger.warn({ err: error, upstreamModel: name }, 'cannot refresh the fleet; keeping the last known replicas');
    }
  }

  /**
   * A deployment that an earlier configuration listed and this one does not has left: its state,
   * leases and prefix entries go, so /readyz stops listing it. (DNS-discovered fleets drop leavers
   * as their name is re-resolved.) During a rolling update a worker still on the old configuration
   * may route to it until it restarts; its slots there are then not counted.
   */
  private async forgetUnconfigured(fleet: Fleet): Promise<void> {
    const { deployments, state } = fleet;
    const configured = new Set(deployments.list().map((replica) => replica.id));
    const left = (await state.members()).filter((id) => !configured.has(id));
    if (!left.length) return;
    this.logger.info({ upstreamModel: deployments.model.name, left }, 'deployments no longer configured; their routing state is dropped');
    for (const id of left) await state.forget(id);
  }

  /** Expired leases and prefix entries go now, not at the model's next request (every worker sweeps; the script is idempotent). */
  private async sweep(fleet: Fleet): Promise<void> {
    try {
      await fleet.state.expire();
    } catch (error) {
      this.logger.warn({ err: error, upstreamModel: fleet.deployments.model.name }, 'cannot sweep expired fleet entries');
    }
  }

  private async scrapeAll(fleet: Fleet): Promise<void> {
    await Promise.all(fleet.deployments.list().map((replica) => this.scrape(fleet, replica)));
  }

  /** Reads one replica's Prometheus metrics into its shared load signal (one worker per replica per interval). */
  private async scrape(fleet: Fleet, replica: Replica): Promise<void> {
    const { deployments, state } = fleet;
    const { health, routing, name } = deployments.model;
    const key = `metrics\n${name}\n${replica.id}`;
    if (!replica.metricsUrl || this.probing.has(key)) return;
    this.probing.add(key);
    try {
      if (!(await state.claimScrape(replica.id, health.metricsIntervalMs))) return;
      let extra: number | undefined;
      try {
        const response = await fetch(replica.metricsUrl, { signal: AbortSignal.timeout(health.probeTimeoutMs) });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        extra = extraLoad(replicaSignals(await response.text()), routing.kvCacheWeight);
      } catch (error) {
        // Unreadable metrics are no reason to route away: the replica is scored by in-flight counts alone.
        this.logger.debug({ upstreamModel: name, deployment: replica.id, err: error }, 'cannot read replica metrics');
      }
      await state.recordSignals(replica.id, extra, 3 * health.metricsIntervalMs);
    } catch (error) {
      this.logger.warn({ err: error, upstreamModel: name, deployment: replica.id }, 'cannot record replica metrics');
    } finally {
      this.probing.delete(key);
    }
  }

  private async probeAll(fleet: Fleet): Promise<void> {
    await Promise.all(fleet.deployments.list().map((replica) => this.probe(fleet, replica)));
  }

  private async probe(fleet: Fleet, replica: Replica): Promise<void> {
    const { deployments, state } = fleet;
    const { health, name } = deployments.model;
    const key = `${name}\n${replica.id}`;
    if (!replica.probeUrl || this.probing.has(key)) return;
    this.probing.add(key);
    try {
      if (!(await state.claimProbe(replica.id, health.probeIntervalMs))) return;
      let healthy: boolean;
      let detail: string;
      try {
        const response = await fetch(replica.probeUrl, { signal: AbortSignal.timeout(health.probeTimeoutMs) });
        await response.body?.cancel();
        healthy = response.ok;
        detail = `HTTP ${response.status}`;
      } catch (error) {
        healthy = false;
        detail = (error as Error).message;
      }
      const { drained } = await state.report(replica.id, healthy ? 'probe-ok' : 'probe-failed');
      // Only the report that drained it drops its entries: one scan of the index per drain, not per probe.
      if (drained) await state.dropPrefixEntries(replica.id);
      if (healthy !== (this.lastHealthy.get(key) ?? true)) {
        this.logger.warn({ upstreamModel: name, deployment: replica.id, healthy, detail }, healthy ? 'probe passed; replica takes requests again' : 'probe failed; replica drained (running streams finish)');
      }
      this.lastHealthy.set(key, healthy);
    } catch (error) {
      this.logger.warn({ err: error, upstreamModel: name, deployment: replica.id }, 'cannot record a probe result');
    } finally {
      this.probing.delete(key);
    }
  }
}

/**
 * Half the shorter of the lease and the prefix TTL, between 250 ms and 10 s: a dead worker's slot is
 * back within 1.5 × leaseMs, and a sweep costs one small script per fleet per interval per worker.
 */
function sweepIntervalMs(routing: { leaseMs: number; prefixTtlSeconds: number }): number {
  return Math.min(10_000, Math.max(250, Math.min(routing.leaseMs, routing.prefixTtlSeconds * 1000) / 2));
}
