import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

const TYPE_A = 1;

/**
 * A real DNS server over UDP (RFC 1035) that answers A queries with `records[name]` and every
 * other query with no data: enough for a resolver pointed at it, as a Kubernetes headless
 * Service's name whose addresses change while a test runs.
 */
export class FakeDnsServer {
  /** Name (lower case, no trailing dot) → IPv4 addresses. */
  records: Record<string, string[]> = {};
  /** Queries answered, by name. */
  readonly queries: string[] = [];
  private readonly socket = dgram.createSocket('udp4');

  async start(): Promise<string> {
    this.socket.on('message', (query, peer) => {
      const answer = this.answer(query);
      if (answer) this.socket.send(answer, peer.port, peer.address);
    });
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return this.address;
  }

  /** `host:port`, as `discover.nameservers` takes it. */
  get address(): string {
    const { address, port } = this.socket.address() as AddressInfo;
    return `${address}:${port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private answer(query: Buffer): Buffer | undefined {
    if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined; // one question, as resolvers send
    const labels: string[] = [];
    let offset = 12;
    while (offset < query.length && query[offset]! > 0) {
      const length = query[offset]!;
      labels.push(query.subarray(offset + 1, offset + 1 + length).toString('ascii'));
      offset += 1 + length;
    }
    const questionEnd = offset + 5; // the zero label, then QTYPE and QCLASS
    if (questionEnd > query.length) return undefined;
    const type = query.readUInt16BE(offset + 1);
    const name = labels.join('.').toLowerCase();
    this.queries.push(name);
    const addresses = type === TYPE_A ? (this.records[name] ?? []) : [];
    const known = name in this.records;
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0); // the query's id
    // QR, RD copied, RA; RCODE 3 (NXDOMAIN) for an unknown name, else 0 (an AAAA query gets no data).
    header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | (known ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const answers = addresses.map((address) => {
      const record = Buffer.alloc(16);
      record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      record.writeUInt16BE(TYPE_A, 2);
      record.writeUInt16BE(1, 4); // class IN
      record.writeUInt32BE(0, 6); // TTL 0: the test changes answers at will
      record.writeUInt16BE(4, 10);
      address.split('.').forEach((octet, index) => record.writeUInt8(Number(octet), 12 + index));
      return record;
    });
    return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
  }
}
