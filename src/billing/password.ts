import { hash, verify } from '@node-rs/argon2';

/**
 * argon2id with the last of OWASP's five equivalent profiles (Password Storage Cheat Sheet: 7 MiB, t=5,
 * p=1; "an equal level of defense" to 19 MiB, t=2, only trading memory for CPU). A RADIUS server checks
 * passwords in bursts (every cold login after a restart) on a small memory budget: each verification in
 * flight holds its memory cost, so the low-memory profile keeps a login storm's peak ~24 MiB lower with
 * two verifications at once, for about the same CPU per check. Hashes made with other parameters (older
 * accounts, imported ones) still verify: argon2 reads the cost from the hash itself.
 */
const PASSWORD_HASH_OPTIONS = { algorithm: 2 /* Argon2id */, memoryCost: 7_168, timeCost: 5, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PASSWORD_HASH_OPTIONS);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

const PHC_PARAMS = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/;

/** The cost an argon2id v19 PHC string carries (m in KiB, t passes, p lanes); null for anything else. */
export function argon2Cost(passwordHash: string): { readonly memoryKib: number; readonly time: number; readonly parallelism: number } | null {
  const m = PHC_PARAMS.exec(passwordHash);
  return m === null ? null : { memoryKib: Number(m[1]), time: Number(m[2]), parallelism: Number(m[3]) };
}

/**
 * Whether a stored hash should be replaced by one of hashPassword's after the next successful login:
 * anything but argon2id v19 with exactly this service's cost (an earlier profile, an imported hash).
 * Replacing it needs the plaintext, so only a login that just verified the password can do it.
 */
export function needsRehash(passwordHash: string): boolean {
  const c = argon2Cost(passwordHash);
  return c === null || c.memoryKib !== PASSWORD_HASH_OPTIONS.memoryCost || c.time !== PASSWORD_HASH_OPTIONS.timeCost || c.parallelism !== PASSWORD_HASH_OPTIONS.parallelism;
}
