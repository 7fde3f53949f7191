/**
 * Which IP addresses patchbay may connect to on a caller's behalf. A caller
 * names the inbox, so without this check the service would fetch from its own
 * loopback, the private network or a cloud metadata address for them (SSRF).
 * Pure functions: no DNS, no sockets.
 */
import { isIPv4 } from 'node:net';

export type IpAddress =
  | { family: 4; value: number }
  | { family: 6; groups: readonly number[] };

/**
 * A host read as the WHATWG URL parser reads it (as node's http and fetch
 * do): IPv4 in any spelling (2130706433, 0177.0.0.1, 0x7f.1, 127.1) becomes
 * dotted decimal, IPv6 is compressed, in brackets, with its embedded IPv4 in
 * hex; a name is lower-cased. Null when it is no valid host.
 */
export function canonicalHost(host: string): string | null {
  if (host === '' || /[\s/\\?#@]/.test(host)) return null;
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let url: URL;
  try {
    url = new URL(`http://${bracketed}/`);
  } catch {
    return null;
  }
  if (url.port !== '' || url.pathname !== '/') return null;
  return url.hostname;
}

/** The address a host spells, or null for a name (or no valid host). */
export function parseIp(host: string): IpAddress | null {
  const h = canonicalHost(host);
  if (h === null) return null;
  if (h.startsWith('[')) return { family: 6, groups: expandIpv6(h.slice(1, -1)) };
  if (!isIPv4(h)) return null;
  const value = h.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return { family: 4, value };
}

/** Eight 16-bit groups from the parser's canonical form (hex groups, at most one "::"). */
function expandIpv6(text: string): number[] {
  const [head = '', tail] = text.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  if (tail === undefined) return groups(head);
  const left = groups(head);
  const right = groups(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

const v4 = (a: number, b: number, c: number, d: number): number => ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;

/** IPv4 blocks that are not the public internet: this host, private, shared, documentation, multicast, reserved. */
const V4_REFUSED: ReadonlyArray<readonly [number, number]> = [
  [v4(0, 0, 0, 0), 8],
  [v4(10, 0, 0, 0), 8],
  [v4(100, 64, 0, 0), 10],
  [v4(127, 0, 0, 0), 8],
  [v4(169, 254, 0, 0), 16],
  [v4(172, 16, 0, 0), 12],
  [v4(192, 0, 0, 0), 24],
  [v4(192, 0, 2, 0), 24],
  [v4(192, 168, 0, 0), 16],
  [v4(198, 18, 0, 0), 15],
  [v4(198, 51, 100, 0), 24],
  [v4(203, 0, 113, 0), 24],
  [v4(224, 0, 0, 0), 4],
  [v4(240, 0, 0, 0), 4], // and 255.255.255.255
];

function publicV4(value: number): boolean {
  return !V4_REFUSED.some(([base, bits]) => (value ^ base) >>> (32 - bits) === 0);
}

function embeddedV4(hi: number, lo: number): number {
  return hi * 65536 + lo;
}

/**
 * IPv6: only global unicast (2000::/3) minus what is not routed to a real
 * host there; forms that carry an IPv4 address (compatible ::/96, mapped
 * ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by that
 * address, since that is where the packets end up.
 */
function publicV6(g: readonly number[]): boolean {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const low64zero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0;
  if (low64zero && g4 === 0 && g5 === 0) return publicV4(embeddedV4(g6, g7)); // ::/96, with :: and ::1
  if (low64zero && g4 === 0 && g5 === 0xffff) return publicV4(embeddedV4(g6, g7));
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return publicV4(embeddedV4(g6, g7));
  if (g0 === 0x2002) return publicV4(embeddedV4(g1, g2));
  // Outside 2000::/3: unique local fc00::/7, link-local fe80::/10, multicast ff00::/8, discard 100::/64, local NAT64 64:ff9b:1::/48...
  if ((g0 & 0xe000) !== 0x2000) return false;
  if (g0 === 0x2001 && g1 < 0x200) return false; // 2001::/23, IETF protocol assignments: Teredo, benchmarking, ORCHID
  if (g0 === 0x2001 && g1 === 0xdb8) return false; // documentation
  if (g0 === 0x3fff && g1 < 0x1000) return false; // documentation, 3fff::/20
  return true;
}

/**
 * Whether patchbay may connect to this address on a caller's behalf. Takes
 * any spelling the URL parser takes (and IPv6 without brackets); anything
 * that is not an IP address is refused.
 */
export function isPublicAddress(ip: string): boolean {
  const a = parseIp(ip);
  if (a === null) return false;
  return a.family === 4 ? publicV4(a.value) : publicV6(a.groups);
}
