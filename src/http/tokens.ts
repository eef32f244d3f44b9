/**
 * API tokens: a random 32-byte secret, shown once ("tide_" + base64url); the store keeps only
 * its sha-256 (hex). A presented token is hashed and looked up; the stored and computed hashes
 * are compared in constant time. Roles are ordered: viewer < operator < admin.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DriverError } from '../drivers/errors.js';
import type { ApiRole, ApiTokenRecord, Store } from '../store/store.js';

export const API_ROLES: readonly ApiRole[] = ['viewer', 'operator', 'admin'];
const RANK: Record<ApiRole, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `have` may do what needs `need`. */
export function roleAllows(have: ApiRole, need: ApiRole): boolean {
  return RANK[have] >= RANK[need];
}

export function isApiRole(s: string): s is ApiRole {
  return (API_ROLES as readonly string[]).includes(s);
}

/** sha-256 of a token, hex. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Creates a token; the returned `token` is the only copy of the secret. */
export function createToken(store: Store, opts: { role: ApiRole; name?: string; by: string; nowMs?: number }): { id: number; token: string; record: ApiTokenRecord } {
  if (!isApiRole(opts.role)) throw new DriverError('TIDE_INVALID_ARGUMENT', `role must be one of ${API_ROLES.join(', ')}`);
  const token = `tide_${randomBytes(32).toString('base64url')}`;
  const hash = hashToken(token);
  const id = store.createApiToken({ name: opts.name ?? `${opts.role} token`, role: opts.role, hash, createdMs: opts.nowMs ?? Date.now(), createdBy: opts.by });
  return { id, token, record: store.apiTokenByHash(hash)! };
}

/** The live (not revoked) token record a presented secret belongs to, or null. */
export function verifyToken(store: Store, presented: string): ApiTokenRecord | null {
  // Bounded work for any input: tokens are 48 characters; anything much longer is not one.
  if (presented.length === 0 || presented.length > 256) return null;
  const hash = hashToken(presented);
  const rec = store.apiTokenByHash(hash);
  if (!rec || rec.revokedMs !== null) return null;
  const a = Buffer.from(rec.hash, 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b) ? rec : null;
}
