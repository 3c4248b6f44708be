import type { Redis } from 'ioredis';
import type { DeploymentMember, FleetKeyPart, RedisKeys, RoutingConfig, RoutingStrategy } from '@tokenwire/contracts';
import { EXPIRE_ONLY_LUA, FLEET_KEY_PARTS, PICK_LUA, RELEASE_LUA, REPORT_LUA } from './fleet-routing.scripts';

interface FleetCommands {
  twFleetPick(...args: Array<string | number>): Promise<[string, string, string, number, number, number, number]>;
  twFleetRelease(...args: Array<string | number>): Promise<number>;
  twFleetExpire(...args: Array<string | number>): Promise<number>;
  twFleetReport(...args: Array<string | number>): Promise<[string, number, number]>;
}

export interface PickCandidate {
  id: string;
  weight: number;
  maxConcurrency?: number;
}

export interface PickRequest {
  strategy: RoutingStrategy;
  routing: RoutingConfig;
  /** How long an ejected replica's trial request holds it before another may try. */
  trialMs: number;
  replicas: readonly PickCandidate[];
  exclude: ReadonlySet<string>;
  leaseId: string;
  sessionHash?: string;
  chunkHashes: readonly string[];
}

export type PickResult =
  | { status: 'picked'; replica: string; reason: string; matchedChunks: number; inFlight: number; fleetMin: number }
  | { status: 'wait'; reason: string; waitMs: number }
  | { status: 'exhausted'; reason: string };

export type ReportOutcome = 'ok' | 'busy' | 'draining' | 'failed' | 'probe-failed' | 'probe-ok';

/** A model fleet's shared routing state in Redis; every change goes through one script. */
export class FleetStateRepository {
  private readonly redis: Redis & FleetCommands;
  private readonly scriptKeys: string[];

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    readonly model: string,
  ) {
    const numberOfKeys = FLEET_KEY_PARTS.length;
    if (!('twFleetPick' in redis)) {
      redis.defineCommand('twFleetPick', { numberOfKeys, lua: PICK_LUA });
      redis.defineCommand('twFleetRelease', { numberOfKeys, lua: RELEASE_LUA });
      redis.defineCommand('twFleetExpire', { numberOfKeys, lua: EXPIRE_ONLY_LUA });
      redis.defineCommand('twFleetReport', { numberOfKeys, lua: REPORT_LUA });
    }
    this.redis = redis as Redis & FleetCommands;
    this.scriptKeys = FLEET_KEY_PARTS.map((part) => this.key(part));
  }

  key(part: FleetKeyPart): string {
    return this.keys.fleet(this.model, part);
  }

  async pick(request: PickRequest): Promise<PickResult> {
    if (!request.replicas.length) return { status: 'exhausted', reason: 'no deployment is known' };
    const { routing } = request;
    const [status, replica, reason, matchedChunks, inFlight, fleetMin, waitMs] = await this.redis.twFleetPick(
      ...this.scriptKeys,
      Date.now(),
      request.strategy,
      request.leaseId,
      routing.leaseMs,
      request.trialMs,
      routing.loadMargin,
      routing.minMatchChunks,
      routing.prefixTtlSeconds * 1000,
      Math.random(),
      routing.loadRatio,
      request.replicas.length,
      ...request.replicas.flatMap((r) => [r.id, r.weight, r.maxConcurrency ?? 0]),
      request.exclude.size,
      ...request.exclude,
      request.sessionHash ?? '',
      request.chunkHashes.length,
      ...request.chunkHashes,
    );
    if (status === 'picked') return { status, replica, reason, matchedChunks, inFlight, fleetMin };
    if (status === 'wait') return { status, reason, waitMs };
    return { status: 'exhausted', reason };
  }

  /**
   * Frees the slot. `betweenTurns`: the longest chunk hash of a request that completed, so its
   * conversation keeps counting on the replica until its next turn arrives or `turnGapMs` passes.
   */
  async release(replica: string, leaseId: string, betweenTurns?: { chunkHash: string; turnGapMs: number }): Promise<void> {
    await this.redis.twFleetRelease(...this.scriptKeys, replica, leaseId, betweenTurns?.chunkHash ?? '', Date.now(), betweenTurns?.turnGapMs ?? 0);
  }

  /** Drops expired leases (a dead worker's in-flight) and prefix entries now, in bounded batches. */
  async expire(): Promise<void> {
    // Bounded: a backlog beyond a few batches is finished by the next sweep (or pick).
    for (let batch = 0; batch < 10; batch++) if ((await this.redis.twFleetExpire(...this.scriptKeys, Date.now())) === 0) return;
  }

  /** Keeps a long stream's in-flight slot from expiring (XX: a released lease stays released). */
  async renew(replica: string, leaseId: string, leaseMs: number): Promise<void> {
    await this.redis.zadd(this.key('leases'), 'XX', Date.now() + leaseMs, `${replica}\n${leaseId}`);
  }

  /** Returns the state after the report and whether this report ejected or drained the replica. */
  async report(replica: string, outcome: ReportOutcome, ms = 0, ejectAfterFailures = 1): Promise<{ state: string; ejected: boolean; drained: boolean }> {
    const [state, ejected, drained] = await this.redis.twFleetReport(...this.scriptKeys, replica, outcome, Date.now(), ms, ejectAfterFailures);
    return { state, ejected: ejected === 1, drained: drained === 1 };
  }

  /**
   * What a replica's own metrics add to its load (its queue, its KV-cache pressure), until `ttlMs`
   * from now; undefined clears it (metrics unreadable: in-flight counts alone).
   */
  async recordSignals(replica: string, extraLoad: number | undefined, ttlMs: number): Promise<void> {
    if (extraLoad === undefined) await this.redis.hdel(this.key('signals'), replica);
    else await this.redis.hset(this.key('signals'), replica, `${Number(extraLoad.toFixed(3))}:${Date.now() + ttlMs}`);
  }

  /** Takes one metrics turn for `replica` (so N workers do not scrape it N times per interval). */
  async claimScrape(replica: string, intervalMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.key('metrics-lock')}:${replica}`, '1', 'PX', Math.max(1, intervalMs - 50), 'NX')) === 'OK';
  }

  /** The replicas some worker registered (every member of the fleet's shared view). */
  async members(): Promise<string[]> {
    return this.redis.hkeys(this.key('members'));
  }

  /**
   * A drained replica's prefix and session entries: its cache may not survive what failed its
   * probe, and its conversations should settle elsewhere now rather than return to it later.
   * Its leases stay (its running streams still count).
   */
  async dropPrefixEntries(replica: string): Promise<void> {
    await this.deleteMatching('prefix', replica);
  }

  async register(replica: string, member: DeploymentMember): Promise<void> {
    await this.redis.hset(this.key('members'), replica, JSON.stringify(member));
  }

  /** Takes one probe turn for `replica` (so N workers do not probe it N times per interval). */
  async claimProbe(replica: string, intervalMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.key('probe-lock')}:${replica}`, '1', 'PX', Math.max(1, intervalMs - 50), 'NX')) === 'OK';
  }

  /** A replica that left the fleet: its state, leases and routing entries go with it. */
  async forget(replica: string): Promise<void> {
    await this.redis
      .multi()
      .hdel(this.key('members'), replica)
      .hdel(this.key('state'), replica)
      .hdel(this.key('until'), replica)
      .hdel(this.key('failures'), replica)
      .hdel(this.key('inflight'), replica)
      .hdel(this.key('signals'), replica)
      .exec();
    await this.deleteMatching('leases', replica);
    await this.deleteMatching('between-turns-expiry', replica);
    await this.deleteMatching('prefix', replica);
    await this.deleteMatching('between-turns', replica);
    await this.redis.hdel(this.key('between-turns-count'), replica);
  }

  private async deleteMatching(part: 'leases' | 'between-turns-expiry' | 'prefix' | 'between-turns', replica: string): Promise<void> {
    const key = this.key(part);
    let cursor = '0';
    do {
      if (part === 'leases' || part === 'between-turns-expiry') {
        const [next, entries] = await this.redis.zscan(key, cursor, 'MATCH', `${escapeGlob(replica)}\n*`, 'COUNT', 500);
        cursor = next;
        const members = entries.filter((_, index) => index % 2 === 0);
        if (members.length) await this.redis.zrem(key, ...members);
      } else {
        const [next, entries] = await this.redis.hscan(key, cursor, 'COUNT', 500);
        cursor = next;
        const owned: string[] = [];
        for (let index = 1; index < entries.length; index += 2) if (entries[index] === replica) owned.push(entries[index - 1]!);
        // A between-turns entry's expiry member is `<replica>\n<chunk>`, removed by its own pass.
        if (owned.length && part === 'prefix') await this.redis.multi().hdel(key, ...owned).zrem(this.key('prefix-expiry'), ...owned).exec();
        else if (owned.length) await this.redis.hdel(key, ...owned);
      }
    } while (cursor !== '0');
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}
