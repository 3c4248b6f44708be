/** A host to put in a URL for a server bound to `host`: a wildcard bind is reached on the loopback address. */
export function reachableHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}
