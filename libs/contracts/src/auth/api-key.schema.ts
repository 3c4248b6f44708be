import { z } from 'zod';

/** `admin` manages its tenant's keys; `member` generates. The operator token manages every tenant. */
export const apiKeyRoleSchema = z.enum(['admin', 'member']);
export type ApiKeyRole = z.infer<typeof apiKeyRoleSchema>;

export const tenantIdSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'tenant ids are 1-64 letters, digits, _ . -');

export const createApiKeyRequestSchema = z.object({
  /** Required for the operator token; a tenant admin may only create keys for its own tenant. */
  tenantId: tenantIdSchema.optional(),
  role: apiKeyRoleSchema.default('member'),
  name: z.string().max(100).optional(),
});
export type CreateApiKeyRequest = z.infer<typeof createApiKeyRequestSchema>;

/** A stored key, without its secret. */
export const apiKeyInfoSchema = z.object({
  id: z.string(),
  tenantId: z.string(),
  role: apiKeyRoleSchema,
  name: z.string().optional(),
  createdAt: z.number().int(),
});
export type ApiKeyInfo = z.infer<typeof apiKeyInfoSchema>;
/** The creation answer: the only time the secret `key` is shown. */
export const createdApiKeySchema = apiKeyInfoSchema.extend({ key: z.string() });
export const apiKeyListSchema = z.object({ object: z.literal('list'), data: z.array(apiKeyInfoSchema) });
export const revokedApiKeySchema = z.object({ id: z.string(), revoked: z.literal(true) });
export const deletedTenantSchema = z.object({ id: z.string(), deleted: z.literal(true), revokedKeys: z.number().int() });

/**
 * Published on the auth channel when keys stop working, so every api process drops the
 * sockets that authenticated with them (HTTP checks Redis on every request anyway).
 */
export const revocationNoticeSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('key-revoked'), keyId: z.string(), tenantId: z.string() }),
  z.object({ type: z.literal('tenant-deleted'), tenantId: z.string() }),
]);
export type RevocationNotice = z.infer<typeof revocationNoticeSchema>;
