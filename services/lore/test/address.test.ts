/** The address check behind the inbox fetch, on a table: no DNS, no sockets. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalHost, isPublicAddress } from '../address.ts';

const refused: Array<[string, string]> = [
  ['0.0.0.0', 'this host'],
  ['0.1.2.3', '0/8'],
  ['10.0.0.1', 'private 10/8'],
  ['10.255.255.255', 'private 10/8, last'],
  ['100.64.0.1', 'shared (CGNAT) 100.64/10'],
  ['100.127.255.254', 'shared, last'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback, not .1'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['172.16.0.1', 'private 172.16/12'],
  ['172.31.255.255', 'private 172.16/12, last'],
  ['192.0.0.8', '192.0.0/24'],
  ['192.0.2.1', 'TEST-NET-1'],
  ['192.168.1.1', 'private 192.168/16'],
  ['198.18.0.1', 'benchmarking 198.18/15'],
  ['198.19.255.255', 'benchmarking, last'],
  ['198.51.100.7', 'TEST-NET-2'],
  ['203.0.113.9', 'TEST-NET-3'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast, last block'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  // Other spellings of loopback and private addresses, as the URL parser reads them.
  ['2130706433', 'decimal 127.0.0.1'],
  ['0177.0.0.1', 'octal 127.0.0.1'],
  ['0x7f.1', 'hex, two parts'],
  ['0x7f000001', 'hex, one part'],
  ['127.1', 'two parts'],
  ['017700000001', 'octal, one part'],
  ['0', 'zero'],
  ['3232235777', 'decimal 192.168.1.1'],
  ['012.0.0.1', 'octal 10.0.0.1'],
  // IPv6.
  ['::', 'unspecified'],
  ['[::]', 'unspecified, bracketed'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback, bracketed'],
  ['0:0:0:0:0:0:0:1', 'loopback, long form'],
  ['fc00::1', 'unique local'],
  ['fd12:3456:789a::1', 'unique local fd'],
  ['fe80::1', 'link-local'],
  ['febf::1', 'link-local, last'],
  ['fe80::1%eth0', 'link-local with a zone'],
  ['fec0::1', 'site-local (deprecated)'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation 3fff::/20'],
  ['2001::1', 'Teredo'],
  ['100::1', 'discard'],
  ['64:ff9b:1::1', 'local NAT64'],
  // IPv6 forms that carry an IPv4 address: judged by it.
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['[::ffff:127.0.0.1]', 'IPv4-mapped loopback, bracketed'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
  ['::ffff:10.1.2.3', 'IPv4-mapped private'],
  ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
  ['::127.0.0.1', 'IPv4-compatible loopback'],
  ['::10.0.0.1', 'IPv4-compatible private'],
  ['64:ff9b::127.0.0.1', 'NAT64 of loopback'],
  ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
  ['2002:7f00:1::', '6to4 of loopback'],
  ['2002:c0a8:101::1', '6to4 of 192.168.1.1'],
  // Not addresses at all.
  ['localhost', 'a name'],
  ['lore.kernel.org', 'a name'],
  ['', 'empty'],
  ['1.2.3.999', 'not an address'],
  ['127.0.0.1:80', 'with a port'],
  ['1.2.3.4/x', 'with a path'],
];

const allowed: Array<[string, string]> = [
  ['1.1.1.1', 'public'],
  ['8.8.8.8', 'public'],
  ['139.178.84.217', 'public'],
  ['9.255.255.255', 'just below 10/8'],
  ['11.0.0.0', 'just above 10/8'],
  ['100.63.255.255', 'just below 100.64/10'],
  ['100.128.0.0', 'just above 100.64/10'],
  ['172.15.255.255', 'just below 172.16/12'],
  ['172.32.0.0', 'just above 172.16/12'],
  ['169.253.255.255', 'just below 169.254/16'],
  ['192.0.1.1', 'between 192.0.0/24 and 192.0.2/24'],
  ['192.169.0.1', 'just above 192.168/16'],
  ['198.17.255.255', 'just below 198.18/15'],
  ['198.20.0.0', 'just above 198.18/15'],
  ['223.255.255.255', 'just below multicast'],
  ['16843009', 'decimal 1.1.1.1'],
  ['2606:4700:4700::1111', 'global unicast'],
  ['2604:1380:4641:c500::1', 'global unicast'],
  ['::ffff:1.1.1.1', 'IPv4-mapped public'],
  ['64:ff9b::101:101', 'NAT64 of 1.1.1.1'],
  ['2002:101:101::1', '6to4 of 1.1.1.1'],
  ['2001:200::1', 'just above 2001::/23'],
];

describe('isPublicAddress', () => {
  for (const [ip, what] of refused) {
    test(`refuses ${JSON.stringify(ip)} (${what})`, () => {
      assert.equal(isPublicAddress(ip), false);
    });
  }
  for (const [ip, what] of allowed) {
    test(`allows ${ip} (${what})`, () => {
      assert.equal(isPublicAddress(ip), true);
    });
  }
});

test('hosts are read as the URL parser reads them', () => {
  const table: Array<[string, string | null]> = [
    ['2130706433', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['[::ffff:127.0.0.1]', '[::ffff:7f00:1]'],
    ['::ffff:127.0.0.1', '[::ffff:7f00:1]'],
    ['LORE.Kernel.ORG', 'lore.kernel.org'],
    ['a b', null],
    ['x@127.0.0.1', null],
  ];
  for (const [host, canonical] of table) assert.equal(canonicalHost(host), canonical, host);
});
