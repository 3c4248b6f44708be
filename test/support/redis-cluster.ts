import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { reapOnExit } from './child-reaper';
import { waitFor } from './wait';

const run = promisify(execFile);

export interface PrivateRedisClusterOptions {
  /** Masters (slots are split evenly between them). */
  masters?: number;
  /** Replicas per master. */
  replicas?: number;
  /** `cluster-node-timeout`: how long a master may be unreachable before its replica takes over. */
  nodeTimeoutMs?: number;
  /** Extra `redis-server` arguments for every node. */
  serverArgs?: string[];
}

/** One node as `CLUSTER NODES` describes it. */
export interface ClusterNodeView {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** Slot ranges a master serves, `[first, last]`. */
  slots: Array<[number, number]>;
  failed: boolean;
  /** A replica's master (its node id). */
  masterId?: string;
}

/**
 * A private Redis Cluster (redis-server + `redis-cli --cluster create`): three masters unless told otherwise, optionally with replicas.
 *
 * Replicas take over only when a test kills their master with `killMaster`: every node starts with
 * `cluster-replica-no-failover yes`, lifted for the victim's replicas just before the kill. On a loaded
 * machine a short node timeout otherwise lets a master that is merely starved of CPU be voted out: its
 * replica is promoted before the shard got any write (`second_repl_offset:1`), the starved master goes on
 * accepting writes from clients with the old slots map until it learns it was replaced, then turns
 * replica and resyncs, dropping them: the keys a test wrote there are gone (Redis Cluster's documented
 * write loss in a partition). That was the failover test's "promoted replica holds nothing" flake.
 */
export class PrivateRedisCluster {
  readonly ports: number[] = [];
  private readonly children = new Map<number, ChildProcess>();
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-cluster-'));
  private readonly masters: number;
  private readonly replicas: number;
  /** Replica port → the port of the master it was given at creation (or was left with after a planned failover). */
  private readonly replicaOf = new Map<number, number>();

  constructor(private readonly options: PrivateRedisClusterOptions = {}) {
    this.masters = options.masters ?? 3;
    this.replicas = options.replicas ?? 0;
  }

  get nodes(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  async start(): Promise<void> {
    const count = this.masters * (1 + this.replicas);
    for (let i = 0; i < count; i++) this.ports.push(await freePort());
    for (const port of this.ports) {
      // A directory per node: a replica's full sync writes the received RDB there (temp file, then dump.rdb), and two
      // replicas syncing at once in one directory would rename over each other's file.
      const dir = path.join(this.dir, String(port));
      mkdirSync(dir);
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'), '--dir', dir, '--save', '', '--appendonly', 'no'];
      args.push('--logfile', path.join(dir, 'redis.log'), '--cluster-replica-no-failover', 'yes');
      if (this.options.nodeTimeoutMs) args.push('--cluster-node-timeout', String(this.options.nodeTimeoutMs));
      const child = spawn('redis-server', [...args, ...(this.options.serverArgs ?? [])], { stdio: 'ignore' });
      reapOnExit(child);
      this.children.set(port, child);
    }
    await waitFor('cluster nodes to listen', async () => (await Promise.all(this.ports.map(listening))).every(Boolean));
    await run('redis-cli', ['--cluster', 'create', ...this.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(this.replicas), '--cluster-yes']);
    await waitFor(
      'the cluster to be ok on every node, every replica known',
      async () => {
        for (const port of this.ports) {
          if (!(await this.cli(port, 'cluster', 'info')).includes('cluster_state:ok')) return false;
        }
        const views = await this.view();
        return views.filter((node) => node.role === 'replica').length === this.masters * this.replicas;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const views = await this.view();
    for (const replica of views.filter((node) => node.role === 'replica')) {
      this.replicaOf.set(replica.port, views.find((node) => node.id === replica.masterId)!.port);
    }
    await this.waitForReplicasInSync();
  }

  /**
   * Waits until every replica of `masterPorts` (default: every master) is in sync with its own master:
   * replicating that master (the one it was given), link up, no sync in progress, and its offset at least
   * the master's offset read when this call began, so everything written to the master before the call is
   * on the replica. A link reported up is not enough: that says nothing of what the replica has. Throws at
   * once if a replica follows another master or became one itself (a failover nobody asked for).
   */
  async waitForReplicasInSync(masterPorts = [...new Set(this.replicaOf.values())], timeoutMs = 30_000): Promise<void> {
    const targets = new Map<number, number>();
    for (const master of masterPorts) targets.set(master, replicationOffset(await this.cli(master, 'info', 'replication'), 'master_repl_offset'));
    const pairs = [...this.replicaOf].filter(([, master]) => targets.has(master));
    const deadline = Date.now() + timeoutMs;
    for (let behind = pairs; ; ) {
      const states = await Promise.all(behind.map(async ([replica, master]) => ({ replica, master, info: await this.cli(replica, 'info', 'replication') })));
      for (const { replica, master, info } of states) {
        // Thrown at once, not waited out: the test's premise is broken.
        if (!info.includes('role:slave') || Number(/master_port:(\d+)/.exec(info)?.[1]) !== master) throw new UnplannedFailoverError(`node ${replica} no longer replicates ${master}: a failover nobody asked for\n${info}`);
      }
      const synced = (info: string, master: number) =>
        info.includes('master_link_status:up') && info.includes('master_sync_in_progress:0') && replicationOffset(info, 'slave_repl_offset') >= targets.get(master)!;
      behind = states.filter(({ info, master }) => !synced(info, master)).map(({ replica, master }) => [replica, master] as [number, number]);
      if (!behind.length) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for the replicas ${behind.map(([r, m]) => `${r} (of ${m})`).join(', ')} to have everything their masters had`);
      await sleep(50);
    }
  }

  /**
   * Kills a master as a crash would, once its replicas have everything written to it so far (what is written
   * in the last milliseconds may still be lost, as in any asynchronous replication), and lets them take over.
   */
  async killMaster(port: number): Promise<void> {
    const replicas = [...this.replicaOf].filter(([, master]) => master === port).map(([replica]) => replica);
    if (!replicas.length) throw new Error(`master ${port} has no replica to take over`);
    await this.waitForReplicasInSync([port]);
    for (const replica of replicas) await this.cli(replica, 'config', 'set', 'cluster-replica-no-failover', 'no');
    this.kill(port);
    for (const replica of replicas) this.replicaOf.delete(replica);
  }

  /** Every live node as `CLUSTER NODES` on `port` (or the first live node) describes it. */
  async view(port = this.livePorts()[0]!): Promise<ClusterNodeView[]> {
    const lines = (await this.cli(port, 'cluster', 'nodes')).trim().split('\n');
    return lines.map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':')[1]),
        role: flags!.includes('master') ? 'master' : 'replica',
        ...(masterId && masterId !== '-' ? { masterId } : {}),
        failed: flags!.split(',').some((flag) => flag === 'fail' || flag === 'fail?'),
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [first, last] = range.split('-').map(Number);
            return [first!, last ?? first!] as [number, number];
          }),
      };
    });
  }

  /** The port of the master serving `key`'s slot (as the first live node sees it). */
  async masterOf(key: string): Promise<number> {
    const slot = Number((await this.cli(this.livePorts()[0]!, 'cluster', 'keyslot', key)).trim());
    const owner = (await this.view()).find((node) => node.role === 'master' && !node.failed && node.slots.some(([first, last]) => slot >= first && slot <= last));
    if (!owner) throw new Error(`no master serves slot ${slot}`);
    return owner.port;
  }

  /** The slot of `key`. */
  async slotOf(key: string): Promise<number> {
    return Number((await this.cli(this.livePorts()[0]!, 'cluster', 'keyslot', key)).trim());
  }

  /**
   * Moves one slot and its keys to the master on port `to`, as a resharding does, step by step:
   * IMPORTING / MIGRATING, MIGRATE the keys in batches, then SETSLOT NODE on every master.
   */
  async migrateSlot(slot: number, to: number): Promise<void> {
    const masters = (await this.view()).filter((node) => node.role === 'master' && !node.failed);
    const source = masters.find((node) => node.slots.some(([first, last]) => slot >= first && slot <= last))!;
    const target = masters.find((node) => node.port === to)!;
    await this.cli(target.port, 'cluster', 'setslot', String(slot), 'importing', source.id);
    await this.cli(source.port, 'cluster', 'setslot', String(slot), 'migrating', target.id);
    for (;;) {
      const keys = (await this.cli(source.port, 'cluster', 'getkeysinslot', String(slot), '100')).split('\n').filter((key) => key.trim());
      if (!keys.length) break;
      await this.cli(source.port, 'migrate', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys);
    }
    for (const node of masters) await this.cli(node.port, 'cluster', 'setslot', String(slot), 'node', target.id);
  }

  /** Kills one node with SIGKILL (a crash: no goodbye to the cluster). */
  kill(port: number): void {
    this.children.get(port)?.kill('SIGKILL');
    this.children.delete(port);
  }

  /** Waits until a live node serves every slot again and the cluster says ok (after a replica took over). */
  async waitForFailover(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      'a replica to take over and the cluster to be ok',
      async () => {
        for (const port of this.livePorts()) {
          if (!(await this.cli(port, 'cluster', 'info')).includes('cluster_state:ok')) return false;
        }
        const live = new Set(this.livePorts());
        const served = (await this.view()).filter((node) => node.role === 'master' && live.has(node.port)).flatMap((node) => node.slots);
        return served.reduce((sum, [first, last]) => sum + last - first + 1, 0) === 16384;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  /** Runs `redis-cli -p port …` and returns its output. */
  async cli(port: number, ...args: string[]): Promise<string> {
    return (await run('redis-cli', ['-p', String(port), ...args])).stdout;
  }

  async stop(): Promise<void> {
    for (const child of this.children.values()) child.kill('SIGKILL');
    this.children.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private livePorts(): number[] {
    return this.ports.filter((port) => this.children.has(port));
  }
}

/** A replication change the test did not make (see PrivateRedisCluster). */
export class UnplannedFailoverError extends Error {}

/** One offset field of `INFO replication`. */
function replicationOffset(info: string, field: 'master_repl_offset' | 'slave_repl_offset'): number {
  const match = new RegExp(`${field}:(\\d+)`).exec(info);
  if (!match) throw new Error(`no ${field} in INFO replication:\n${info}`);
  return Number(match[1]);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
