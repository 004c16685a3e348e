import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DictionaryError } from './errors.ts';

/**
 * The wire types of attribute values this codec understands, named as in FreeRADIUS dictionaries.
 * Types it does not decode (abinary, tlv, extended...) are kept as `octets` so packets carrying them still pass.
 */
export type AttributeType =
  | 'string'
  | 'octets'
  | 'integer'
  | 'signed'
  | 'short'
  | 'byte'
  | 'integer64'
  | 'date'
  | 'ipaddr'
  | 'ipv6addr'
  | 'ipv6prefix'
  | 'ifid'
  | 'ether'
  | 'combo-ip'
  | 'vsa';

/**
 * One attribute: where it lives on the wire (vendor 0 = standard, RFC 2865 §5), how its value is typed,
 * and its named values (e.g. Acct-Status-Type Start = 1).
 */
export interface AttributeDefinition {
  readonly name: string;
  readonly vendorId: number;
  readonly code: number;
  readonly type: AttributeType;
  /** 1 = User-Password style (RFC 2865 §5.2), 2 = Tunnel-Password salted (RFC 2868 §3.5), 3 = Ascend. */
  readonly encrypt: 0 | 1 | 2 | 3;
  /** The value is preceded by a tag octet (RFC 2868 §3). */
  readonly hasTag: boolean;
  readonly valuesByName: ReadonlyMap<string, number>;
  readonly namesByValue: ReadonlyMap<number, string>;
}

/**
 * A vendor of Vendor-Specific attributes with its sub-attribute header sizes (RFC 2865 §5.26).
 * Most vendors, Huawei and H3C included, use one octet of type and one of length.
 */
export interface VendorDefinition {
  readonly name: string;
  readonly id: number;
  readonly typeSize: 1 | 2 | 4;
  readonly lengthSize: 0 | 1 | 2;
}

/** One dictionary file's text and the name to cite in errors. */
export interface DictionarySource {
  readonly name: string;
  readonly text: string;
}

interface MutableAttribute {
  name: string;
  vendorId: number;
  code: number;
  type: AttributeType;
  encrypt: 0 | 1 | 2 | 3;
  hasTag: boolean;
  valuesByName: Map<string, number>;
  namesByValue: Map<number, string>;
  file: string;
  line: number;
}

interface PendingValue {
  attribute: string;
  name: string;
  value: number;
  file: string;
  line: number;
}

const TYPE_ALIASES: Readonly<Record<string, AttributeType>> = {
  string: 'string',
  text: 'string',
  octets: 'octets',
  integer: 'integer',
  uint32: 'integer',
  signed: 'signed',
  int32: 'signed',
  short: 'short',
  uint16: 'short',
  byte: 'byte',
  uint8: 'byte',
  integer64: 'integer64',
  uint64: 'integer64',
  date: 'date',
  time_delta: 'integer',
  ipaddr: 'ipaddr',
  ipv4addr: 'ipaddr',
  ipv6addr: 'ipv6addr',
  ipv6prefix: 'ipv6prefix',
  ifid: 'ifid',
  ether: 'ether',
  'combo-ip': 'combo-ip',
  abinary: 'octets',
  tlv: 'octets',
  vsa: 'vsa',
};

const VENDOR_SPECIFIC = 26;

/**
 * The attribute and vendor tables used to name and type attribute values, built once at startup.
 * Lookups by name are case-insensitive, as in FreeRADIUS; lookups by code are array indexed for the hot path.
 */
export class Dictionary {
  readonly #byName: Map<string, AttributeDefinition>;
  readonly #byLowerName: Map<string, AttributeDefinition>;
  readonly #standard: (AttributeDefinition | undefined)[];
  readonly #vendorAttributes: Map<number, Map<number, AttributeDefinition>>;
  readonly #vendorsById: Map<number, VendorDefinition>;
  readonly #vendorsByName: Map<string, VendorDefinition>;

  constructor(attributes: readonly AttributeDefinition[], vendors: readonly VendorDefinition[]) {
    this.#byName = new Map();
    this.#byLowerName = new Map();
    this.#standard = new Array<AttributeDefinition | undefined>(256).fill(undefined);
    this.#vendorAttributes = new Map();
    this.#vendorsById = new Map();
    this.#vendorsByName = new Map();
    for (const vendor of vendors) {
      this.#vendorsById.set(vendor.id, vendor);
      this.#vendorsByName.set(vendor.name.toLowerCase(), vendor);
    }
    for (const attribute of attributes) {
      this.#byName.set(attribute.name, attribute);
      this.#byLowerName.set(attribute.name.toLowerCase(), attribute);
      if (attribute.vendorId === 0) {
        this.#standard[attribute.code] = attribute;
      } else {
        let table = this.#vendorAttributes.get(attribute.vendorId);
        if (table === undefined) {
          table = new Map();
          this.#vendorAttributes.set(attribute.vendorId, table);
        }
        table.set(attribute.code, attribute);
      }
    }
  }

  /** The attribute called `name` (case-insensitive), standard or vendor-specific. */
  attribute(name: string): AttributeDefinition | undefined {
    return this.#byName.get(name) ?? this.#byLowerName.get(name.toLowerCase());
  }

  /** The standard attribute with type code `code` (RFC 2865 §5). */
  standard(code: number): AttributeDefinition | undefined {
    return this.#standard[code];
  }

  /** The sub-attribute `code` of vendor `vendorId` inside a Vendor-Specific attribute (RFC 2865 §5.26). */
  vendorAttribute(vendorId: number, code: number): AttributeDefinition | undefined {
    return this.#vendorAttributes.get(vendorId)?.get(code);
  }

  /** The vendor with SMI enterprise number or name `idOrName`. */
  vendor(idOrName: number | string): VendorDefinition | undefined {
    return typeof idOrName === 'number'
      ? this.#vendorsById.get(idOrName)
      : this.#vendorsByName.get(idOrName.toLowerCase());
  }

  /** Every attribute definition, for diagnostics and tests. */
  attributes(): IterableIterator<AttributeDefinition> {
    return this.#byName.values();
  }
}

function parseInteger(token: string): number | undefined {
  if (/^0x[0-9a-f]+$/i.test(token)) return Number.parseInt(token.slice(2), 16);
  if (/^[0-9]+$/.test(token)) return Number.parseInt(token, 10);
  return undefined;
}

function parseVendorFormat(
  token: string | undefined,
  file: string,
  line: number,
): Pick<VendorDefinition, 'typeSize' | 'lengthSize'> {
  if (token === undefined) return { typeSize: 1, lengthSize: 1 };
  const match = /^format=([124]),([012])(,c)?$/.exec(token);
  if (match === null) throw new DictionaryError(`unsupported vendor option "${token}"`, file, line);
  return {
    typeSize: Number(match[1]) as 1 | 2 | 4,
    lengthSize: Number(match[2]) as 0 | 1 | 2,
  };
}

/**
 * Builds a dictionary from FreeRADIUS-format texts (ATTRIBUTE, VALUE, VENDOR, BEGIN-VENDOR, END-VENDOR).
 * VALUE lines may precede their ATTRIBUTE or live in another file (rfc3576 extends Service-Type), so they
 * are resolved after all attributes; redefining a name or code differently is an error, not a silent override.
 */
export function buildDictionary(sources: readonly DictionarySource[]): Dictionary {
  const attributes = new Map<string, MutableAttribute>();
  const byCode = new Map<string, MutableAttribute>();
  const vendors = new Map<string, VendorDefinition>();
  const pendingValues: PendingValue[] = [];

  for (const source of sources) {
    let currentVendor: VendorDefinition | undefined;
    const lines = source.text.split(/\r?\n/);
    for (let index = 0; index < lines.length; index++) {
      const lineNo = index + 1;
      const hash = (lines[index] ?? '').indexOf('#');
      const content = hash >= 0 ? (lines[index] ?? '').slice(0, hash) : (lines[index] ?? '');
      const tokens = content.trim().split(/\s+/).filter((t) => t.length > 0);
      const keyword = tokens[0];
      if (keyword === undefined) continue;

      switch (keyword) {
        case 'VENDOR': {
          const name = tokens[1];
          const id = tokens[2] === undefined ? undefined : parseInteger(tokens[2]);
          if (name === undefined || id === undefined || id <= 0 || id > 0xffffff) {
            throw new DictionaryError('VENDOR needs a name and a numeric id', source.name, lineNo);
          }
          const vendor: VendorDefinition = { name, id, ...parseVendorFormat(tokens[3], source.name, lineNo) };
          const existing = vendors.get(name.toLowerCase());
          if (existing !== undefined && existing.id !== id) {
            throw new DictionaryError(`vendor ${name} redefined with id ${id}`, source.name, lineNo);
          }
          vendors.set(name.toLowerCase(), vendor);
          break;
        }
        case 'BEGIN-VENDOR': {
          const vendor = tokens[1] === undefined ? undefined : vendors.get(tokens[1].toLowerCase());
          if (vendor === undefined) {
            throw new DictionaryError(`BEGIN-VENDOR of unknown vendor "${tokens[1] ?? ''}"`, source.name, lineNo);
          }
          currentVendor = vendor;
          break;
        }
        case 'END-VENDOR': {
          currentVendor = undefined;
          break;
        }
        case 'ATTRIBUTE': {
          const [, name, codeToken, typeToken, ...rest] = tokens;
          const code = codeToken === undefined ? undefined : parseInteger(codeToken);
          if (name === undefined || code === undefined || typeToken === undefined) {
            throw new DictionaryError('ATTRIBUTE needs a name, a numeric code and a type', source.name, lineNo);
          }
          const baseType = typeToken.replace(/\[.*\]$/, '').toLowerCase();
          const mapped = TYPE_ALIASES[baseType];
          if (mapped === undefined) {
            throw new DictionaryError(`unsupported type "${typeToken}"`, source.name, lineNo);
          }
          let vendor = currentVendor;
          let encrypt: 0 | 1 | 2 | 3 = 0;
          let hasTag = false;
          for (const option of rest) {
            for (const flag of option.split(',')) {
              if (flag === 'has_tag') hasTag = true;
              else if (/^encrypt=[0-3]$/.test(flag)) encrypt = Number(flag.slice(8)) as 0 | 1 | 2 | 3;
              else if (flag === 'concat' || flag === 'virtual' || flag === 'array' || flag === 'secret') continue;
              else {
                const named = vendors.get(flag.toLowerCase());
                if (named === undefined) {
                  throw new DictionaryError(`unknown attribute option "${flag}"`, source.name, lineNo);
                }
                vendor = named;
              }
            }
          }
          const vendorId = vendor?.id ?? 0;
          const limit = vendor === undefined ? 0xff : vendor.typeSize === 1 ? 0xff : vendor.typeSize === 2 ? 0xffff : 0xffffffff;
          if (code > limit || (vendorId === 0 && code === 0)) {
            throw new DictionaryError(`attribute code ${code} out of range`, source.name, lineNo);
          }
          const type: AttributeType = vendorId === 0 && code === VENDOR_SPECIFIC ? 'vsa' : mapped;
          const existing = attributes.get(name.toLowerCase());
          const codeKey = `${vendorId}:${code}`;
          if (existing !== undefined) {
            if (existing.vendorId !== vendorId || existing.code !== code || existing.type !== type) {
              throw new DictionaryError(
                `attribute ${name} redefined (first at ${existing.file}:${existing.line})`,
                source.name,
                lineNo,
              );
            }
            break;
          }
          const clash = byCode.get(codeKey);
          if (clash !== undefined) {
            throw new DictionaryError(
              `attribute ${name} reuses the code of ${clash.name} (${clash.file}:${clash.line})`,
              source.name,
              lineNo,
            );
          }
          const attribute: MutableAttribute = {
            name,
            vendorId,
            code,
            type,
            encrypt,
            hasTag,
            valuesByName: new Map(),
            namesByValue: new Map(),
            file: source.name,
            line: lineNo,
          };
          attributes.set(name.toLowerCase(), attribute);
          byCode.set(codeKey, attribute);
          break;
        }
        case 'VALUE': {
          const [, attribute, name, valueToken] = tokens;
          const value = valueToken === undefined ? undefined : parseInteger(valueToken);
          if (attribute === undefined || name === undefined || value === undefined) {
            throw new DictionaryError('VALUE needs an attribute, a name and a number', source.name, lineNo);
          }
          pendingValues.push({ attribute, name, value, file: source.name, line: lineNo });
          break;
        }
        default:
          throw new DictionaryError(`unsupported keyword "${keyword}"`, source.name, lineNo);
      }
    }
    if (currentVendor !== undefined) {
      throw new DictionaryError(`BEGIN-VENDOR ${currentVendor.name} without END-VENDOR`, source.name, lines.length);
    }
  }

  for (const pending of pendingValues) {
    const attribute = attributes.get(pending.attribute.toLowerCase());
    if (attribute === undefined) {
      throw new DictionaryError(`VALUE for unknown attribute ${pending.attribute}`, pending.file, pending.line);
    }
    attribute.valuesByName.set(pending.name, pending.value);
    if (!attribute.namesByValue.has(pending.value)) attribute.namesByValue.set(pending.value, pending.name);
  }

  const definitions: AttributeDefinition[] = [...attributes.values()].map((a) => ({
    name: a.name,
    vendorId: a.vendorId,
    code: a.code,
    type: a.type,
    encrypt: a.encrypt,
    hasTag: a.hasTag,
    valuesByName: a.valuesByName,
    namesByValue: a.namesByValue,
  }));
  return new Dictionary(definitions, [...vendors.values()]);
}

/**
 * The folders read by default: the `radius` package's RFC dictionaries, then this repository's `dictionaries/`
 * (Huawei, H3C, RFC 6911). The RFC files are FreeRADIUS's own and are correct; only the package's codec is not.
 */
export function defaultDictionaryDirectories(): string[] {
  const require = createRequire(import.meta.url);
  const radiusPackage = dirname(require.resolve('radius/package.json'));
  const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return [join(radiusPackage, 'dictionaries'), join(repositoryRoot, 'dictionaries')];
}

/**
 * Reads every `dictionary*` file in each directory (sorted by name, directories in order) and builds one dictionary.
 * Synchronous on purpose: it runs once at startup, before any socket is bound.
 */
export function loadDictionary(directories: readonly string[] = defaultDictionaryDirectories()): Dictionary {
  const sources: DictionarySource[] = [];
  for (const directory of directories) {
    const names = readdirSync(directory)
      .filter((name) => name.startsWith('dictionary'))
      .sort();
    for (const name of names) {
      const path = join(directory, name);
      sources.push({ name: path, text: readFileSync(path, 'utf8') });
    }
  }
  return buildDictionary(sources);
}
