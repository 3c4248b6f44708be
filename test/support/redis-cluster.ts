import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
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
}

/** A private Redis Cluster (redis-server + `redis-cli --cluster create`): three masters unless told otherwise, optionally with replicas. */
export class PrivateRedisCluster {
  readonly ports: number[] = [];
  private readonly children = new Map<number, ChildProcess>();
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-cluster-'));
  private readonly masters: number;
  private readonly replicas: number;

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
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', path.join(this.dir, `nodes-${port}.conf`), '--dir', this.dir, '--save', '', '--appendonly', 'no'];
      if (this.options.nodeTimeoutMs) args.push('--cluster-node-timeout', String(this.options.nodeTimeoutMs));
      this.children.set(port, spawn('redis-server', [...args, ...(this.options.serverArgs ?? [])], { stdio: 'ignore' }));
    }
    await waitFor('cluster nodes to listen', async () => (await Promise.all(this.ports.map(listening))).every(Boolean));
    await run('redis-cli', ['--cluster', 'create', ...this.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(this.replicas), '--cluster-yes']);
    await waitFor(
      'the cluster to be ok on every node, replicas in sync',
      async () => {
        for (const port of this.ports) {
          if (!(await this.cli(port, 'cluster', 'info')).includes('cluster_state:ok')) return false;
        }
        const views = await this.view();
        if (views.filter((node) => node.role === 'replica').length !== this.masters * this.replicas) return false;
        for (const replica of views.filter((node) => node.role === 'replica')) {
          if (!(await this.cli(replica.port, 'info', 'replication')).includes('master_link_status:up')) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  /** Every live node as `CLUSTER NODES` on `port` (or the first live node) describes it. */
  async view(port = this.livePorts()[0]!): Promise<ClusterNodeView[]> {
    const lines = (await this.cli(port, 'cluster', 'nodes')).trim().split('\n');
    return lines.map((line) => {
      const [id, address, flags, , , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':')[1]),
        role: flags!.includes('master') ? 'master' : 'replica',
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
