import { describe, expect, it } from 'vitest';
import { areaOf, compileAreaRules, formatNetwork, NasTable, normalizeIp, parseNetwork, type NasEntry } from '../../../src/radius/nas-table.ts';

function entry(id: number, address: string, area: 'dorm' | 'office' = 'dorm'): NasEntry {
  const network = parseNetwork(address);
  if ('error' in network) throw new Error(network.error);
  return { id, name: `nas${id}`, network, secret: Buffer.from('s'), area, areaRules: [], coaPort: 3799, requireMessageAuthenticator: true };
}

describe('parseNetwork', () => {
  it.each([
    ['192.0.2.10', '192.0.2.10/32'],
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['::1', '::1/128'],
    ['::ffff:192.0.2.1', '192.0.2.1/32'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
    ['fe80::1:0:0:1', 'fe80::1:0:0:1/128'],
  ])('reads %s as the network %s', (input, expected) => {
    const n = parseNetwork(input);
    expect('error' in n ? n.error : formatNetwork(n)).toBe(expected);
  });

  it.each([['bras-1'], ['10.0.0.1/16'], ['10.0.0.0/33'], ['2001:db8::/129'], ['1.2.3'], ['10.0.0.0/x'], ['::ffff:10.0.0.0/64'], ['']])('refuses %j', (input) => {
    expect('error' in parseNetwork(input)).toBe(true);
  });
});

describe('normalizeIp', () => {
  it('folds IPv4-mapped IPv6, as a dual-stack socket reports IPv4 peers, to IPv4', () => {
    expect(normalizeIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeIp('::FFFF:7f00:1')).toBe('127.0.0.1');
    expect(normalizeIp('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(normalizeIp('not an ip')).toBeUndefined();
  });
});

describe('NasTable', () => {
  const table = new NasTable([entry(1, '10.0.0.0/8'), entry(2, '10.1.0.0/16'), entry(3, '10.1.2.3'), entry(4, '2001:db8::/32'), entry(5, '::1')]);

  it.each([
    ['10.9.9.9', 1],
    ['10.1.9.9', 2],
    ['10.1.2.3', 3],
    ['::ffff:10.1.2.3', 3],
    ['2001:db8:1::5', 4],
    ['::1', 5],
  ])('gives the longest prefix owning %s: client %i', (address, id) => {
    expect(table.lookup(address)?.id).toBe(id);
    // Memoised lookups answer the same.
    expect(table.lookup(address)?.id).toBe(id);
  });

  it.each([['11.0.0.1'], ['2001:db9::1'], ['::2'], ['garbage']])('owns no client for %s', (address) => {
    expect(table.lookup(address)).toBeUndefined();
  });
});

describe('areaOf', () => {
  const nas = {
    area: 'dorm' as const,
    areaRules: compileAreaRules([
      { attribute: 'NAS-Port-Id', pattern: '^office', area: 'office' },
      { attribute: 'Called-Station-Id', pattern: ':CAMPUS-OFFICE$', area: 'office' },
    ]),
  };

  it.each([
    [{ 'NAS-Port-Id': 'office-3F' }, 'office'],
    [{ 'NAS-Port-Id': 'dorm-12' }, 'dorm'],
    [{ 'Called-Station-Id': '00-11-22-33-44-55:CAMPUS-OFFICE' }, 'office'],
    [{}, 'dorm'],
  ])('places a login with %j in the %s area', (attrs, area) => {
    expect(areaOf(nas, (name) => (attrs as Record<string, string>)[name])).toBe(area);
  });

  it('lets the first matching rule win', () => {
    const rules = { area: 'office' as const, areaRules: compileAreaRules([{ attribute: 'NAS-Port-Id', pattern: 'vlan1', area: 'dorm' }, { attribute: 'NAS-Port-Id', pattern: 'vlan', area: 'office' }]) };
    expect(areaOf(rules, () => 'vlan100')).toBe('dorm');
  });
});
