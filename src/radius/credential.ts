import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

const VERSION = 1;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

function associatedData(accountId: number, passwordHash: string): Buffer {
  return Buffer.from(`campus-aaa chap v${VERSION}\0${accountId}\0${passwordHash}`, 'utf8');
}

/**
 * Seals a password for CHAP (RFC 2865 §2.2 needs the cleartext on the server) with AES-256-GCM:
 * version | IV | tag | ciphertext. The account id and current password_hash are the associated data,
 * so the credential opens only for that account and only until its password changes.
 */
export function sealCredential(key: Buffer, accountId: number, passwordHash: string, password: string): Buffer {
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(associatedData(accountId, passwordHash));
  const body = Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
}

/** The sealed password, or null when it does not open (other key, other account, password changed). */
export function openCredential(key: Buffer, accountId: number, passwordHash: string, sealed: Buffer): Buffer | null {
  if (sealed.length < 1 + IV_LENGTH + TAG_LENGTH || sealed[0] !== VERSION) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + IV_LENGTH));
    decipher.setAAD(associatedData(accountId, passwordHash));
    decipher.setAuthTag(sealed.subarray(1 + IV_LENGTH, 1 + IV_LENGTH + TAG_LENGTH));
    return Buffer.concat([decipher.update(sealed.subarray(1 + IV_LENGTH + TAG_LENGTH)), decipher.final()]);
  } catch {
    return null;
  }
}

/**
 * Stores a CHAP credential for an account whose password is `password`, only while its password_hash
 * is still `passwordHash` (a concurrent password change wins). The API calls it when it sets a
 * password; the RADIUS server calls it after a successful PAP login when CREDENTIAL_KEY is set.
 */
export async function storeChapCredential(
  db: Kysely<Database>,
  key: Buffer,
  accountId: number,
  passwordHash: string,
  password: string,
): Promise<boolean> {
  const r = await db
    .updateTable('accounts')
    .set({ chap_credential: sealCredential(key, accountId, passwordHash, password) })
    .where('id', '=', accountId)
    .where('password_hash', '=', passwordHash)
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}

/**
 * Replaces an account's password hash by `newHash` of the same password (a re-hash to the service's
 * current argon2 cost after a login verified `password`), only while the stored hash is still `oldHash`:
 * a password change in between wins. The CHAP credential is sealed against the hash, so it is sealed
 * again for `newHash` (or cleared without a key: the old seal could not be opened any more).
 */
export async function replacePasswordHash(
  db: Kysely<Database>,
  key: Buffer | null,
  accountId: number,
  oldHash: string,
  newHash: string,
  password: string,
): Promise<boolean> {
  const r = await db
    .updateTable('accounts')
    .set({ password_hash: newHash, chap_credential: key === null ? null : sealCredential(key, accountId, newHash, password) })
    .where('id', '=', accountId)
    .where('password_hash', '=', oldHash)
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}
