import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { ApiRole, Database } from '../db/schema.ts';
import { secretsEqual, verifyToken } from './token-store.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the caller's role must grant; routes under /api/v1 without one need admin. */
    permission?: Permission;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** What a route needs; each role is granted a set of these. */
export type Permission = 'read' | 'top-up' | 'adjust' | 'disconnect' | 'admin';

/**
 * admin: everything; operator: read, top-up, adjust, disconnect; payment: top-ups only (the payment
 * platform); readonly: read.
 */
export const ROLE_PERMISSIONS: Record<ApiRole, readonly Permission[]> = {
  admin: ['read', 'top-up', 'adjust', 'disconnect', 'admin'],
  operator: ['read', 'top-up', 'adjust', 'disconnect'],
  payment: ['top-up'],
  readonly: ['read'],
};

export function rolesWith(permission: Permission): ApiRole[] {
  return (Object.keys(ROLE_PERMISSIONS) as ApiRole[]).filter((r) => ROLE_PERMISSIONS[r].includes(permission));
}

export function can(role: ApiRole, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** Who is calling: recorded as the actor of every write. */
export interface Principal {
  readonly role: ApiRole;
  /** `token:<name>#<id>` or `env:ADMIN_TOKEN`. */
  readonly actor: string;
  readonly tokenId: number | null;
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return m ? m[1]! : null;
}

/** Resolves a bearer token: ADMIN_TOKEN (compared in constant time) or a live stored token. */
export async function authenticate(db: Kysely<Database>, adminToken: string | null, token: string, now: Date): Promise<Principal | null> {
  if (adminToken !== null && secretsEqual(token, adminToken)) {
    return { role: 'admin', actor: 'env:ADMIN_TOKEN', tokenId: null };
  }
  const t = await verifyToken(db, token, now);
  if (!t) return null;
  return { role: t.role, actor: `token:${t.name}#${t.id}`, tokenId: t.id };
}

/** The caller of an authenticated route, recorded in audit records and the ledger. */
export function actorOf(req: FastifyRequest): string {
  if (!req.principal) throw new Error('route reached without authentication');
  return req.principal.actor;
}
