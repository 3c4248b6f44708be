import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait';

/** A private Redis Cluster of three masters (redis-server + `redis-cli --cluster create`). */
export class PrivateRedisCluster {
  readonly ports: number[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-cluster-'));

  get nodes(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  async start(): Promise<void> {
    for (let i = 0; i < 3; i++) this.ports.push(await freePort());
    for (const port of this.ports) {
      this.children.push(
        spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', path.join(this.dir, `nodes-${port}.conf`), '--dir', this.dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }),
      );
    }
    await waitFor('cluster nodes to listen', async () => (await Promise.all(this.ports.map(listening))).every(Boolean));
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...this.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    await waitFor('the cluster to be ok', async () => {
      const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(this.ports[0]), 'cluster', 'info']);
      return stdout.includes('cluster_state:ok');
    });
  }

  async stop(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
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
