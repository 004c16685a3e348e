import { isIPv4, isIPv6 } from 'node:net';
import type { Area, AreaRule } from '../db/schema.ts';
import { formatIPv6 } from './attributes.ts';

/** An IP network: 4 or 16 address octets and a prefix length. */
export interface Network {
  readonly family: 4 | 6;
  readonly bytes: Buffer;
  readonly prefix: number;
}

function parseV4(text: string): Buffer | undefined {
  if (!isIPv4(text)) return undefined;
  return Buffer.from(text.split('.').map(Number));
}

function parseV6(text: string): Buffer | undefined {
  if (!isIPv6(text)) return undefined;
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const out = Buffer.alloc(16);
  const last = s.lastIndexOf(':');
  if (s.includes('.')) {
    const v4 = parseV4(s.slice(last + 1));
    if (!v4) return undefined;
    v4.copy(out, 12);
    s = `${s.slice(0, last + 1)}0:0`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  for (let i = 0; i < 8; i++) {
    if (i >= 6 && text.includes('.')) break;
    out.writeUInt16BE(Number.parseInt(groups[i] ?? '0', 16), i * 2);
  }
  return out;
}

const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * Parses an IPv4 or IPv6 address to its octets, folding IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a
 * dual-stack socket reports for an IPv4 peer) to IPv4. Undefined when the text is not an address.
 */
export function parseIp(text: string): { family: 4 | 6; bytes: Buffer } | undefined {
  const v4 = parseV4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseV6(text);
  if (!v6) return undefined;
  if (v6.subarray(0, 12).equals(V4_MAPPED_PREFIX)) return { family: 4, bytes: Buffer.from(v6.subarray(12)) };
  return { family: 6, bytes: v6 };
}

/** The canonical text of an address (IPv4-mapped folded to IPv4), or undefined when it is not one. */
export function normalizeIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip.family, ip.bytes);
}

export function formatIp(family: 4 | 6, bytes: Buffer): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  return formatIPv6(bytes, 0);
}

function hostBitsSet(bytes: Buffer, prefix: number): boolean {
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    if (((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1) return true;
  }
  return false;
}

/**
 * Parses "address" or "address/prefix" (IPv4 or IPv6) as PostgreSQL's `cidr` would accept it: a
 * single address becomes a host network (/32, /128); bits set right of the mask are an error.
 */
export function parseNetwork(text: string): Network | { error: string } {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addressText.trim());
  if (!ip) return { error: 'address must be an IPv4 or IPv6 address or CIDR range' };
  const written6 = addressText.includes(':');
  const max = written6 ? 128 : 32;
  let prefix = ip.family === 4 ? 32 : 128;
  if (slash >= 0) {
    const p = text.slice(slash + 1).trim();
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return { error: `prefix length must be 0-${max}` };
    prefix = Number(p);
    // An IPv4-mapped range written in IPv6 keeps its meaning over the IPv4 part.
    if (ip.family === 4 && written6) {
      if (prefix < 96) return { error: 'an IPv4-mapped range needs a prefix of at least 96' };
      prefix -= 96;
    }
  }
  if (hostBitsSet(ip.bytes, prefix)) return { error: 'address has bits set to the right of the prefix' };
  return { family: ip.family, bytes: ip.bytes, prefix };
}

/** The text PostgreSQL's `cidr` stores for a network ("10.0.0.0/8", "192.0.2.1/32"). */
export function formatNetwork(n: Network): string {
  return `${formatIp(n.family, n.bytes)}/${n.prefix}`;
}

function contains(n: Network, family: 4 | 6, bytes: Buffer): boolean {
  if (n.family !== family) return false;
  const full = n.prefix >> 3;
  for (let i = 0; i < full; i++) if (n.bytes[i] !== bytes[i]) return false;
  const rest = n.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((n.bytes[full] as number) & mask) === ((bytes[full] as number) & mask);
}

/** What the server needs of a NAS client for each packet. */
export interface NasEntry {
  readonly id: number;
  readonly name: string;
  readonly network: Network;
  readonly secret: Buffer;
  readonly area: Area;
  readonly areaRules: readonly CompiledAreaRule[];
  readonly coaPort: number;
  readonly requireMessageAuthenticator: boolean;
}

export interface CompiledAreaRule {
  readonly attribute: string;
  readonly pattern: RegExp;
  readonly area: Area;
}

const CACHE_LIMIT = 65_536;

/**
 * The enabled NAS clients in memory, looked up by a packet's source address with the longest prefix
 * winning when ranges nest (RFC 2865 §3: the source address identifies the client). Lookups are
 * memoised per source text, misses included, so spoofed floods cost one map probe.
 */
export class NasTable {
  readonly #entries: readonly NasEntry[];
  readonly #memo = new Map<string, NasEntry | null>();

  constructor(entries: readonly NasEntry[]) {
    this.#entries = [...entries].sort((a, b) => b.network.prefix - a.network.prefix || a.id - b.id);
  }

  get size(): number {
    return this.#entries.length;
  }

  entries(): readonly NasEntry[] {
    return this.#entries;
  }

  /** The client owning source address `address` (as reported by dgram), or undefined. */
  lookup(address: string): NasEntry | undefined {
    const hit = this.#memo.get(address);
    if (hit !== undefined) return hit ?? undefined;
    const ip = parseIp(address);
    let found: NasEntry | null = null;
    if (ip) {
      for (const e of this.#entries) {
        if (contains(e.network, ip.family, ip.bytes)) {
          found = e;
          break;
        }
      }
    }
    if (this.#memo.size >= CACHE_LIMIT) this.#memo.clear();
    this.#memo.set(address, found);
    return found ?? undefined;
  }

  byId(id: number): NasEntry | undefined {
    return this.#entries.find((e) => e.id === id);
  }
}

/** Reads an attribute value as text for an area rule, or undefined when absent. */
export type AttributeText = (attribute: string) => string | undefined;

/**
 * The area of a login: the first area rule whose attribute matches its pattern, else the NAS's area.
 * Lets one NAS serve the dormitories and the teaching buildings (e.g. by NAS-Port-Id VLAN or SSID).
 */
export function areaOf(nas: Pick<NasEntry, 'area' | 'areaRules'>, read: AttributeText): Area {
  for (const rule of nas.areaRules) {
    const v = read(rule.attribute);
    if (v !== undefined && rule.pattern.test(v)) return rule.area;
  }
  return nas.area;
}

export function compileAreaRules(rules: readonly AreaRule[]): CompiledAreaRule[] {
  return rules.map((r) => ({ attribute: r.attribute, pattern: new RegExp(r.pattern), area: r.area }));
}
