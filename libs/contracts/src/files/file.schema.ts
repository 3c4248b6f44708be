import { z } from 'zod';

/** OpenAI's file object (`/v1/files`). Batch output and error files have purpose `batch_output`. */
export const fileObjectSchema = z.object({
  id: z.string(),
  object: z.literal('file'),
  bytes: z.number().int(),
  created_at: z.number().int(),
  expires_at: z.number().int().nullable(),
  filename: z.string(),
  purpose: z.enum(['batch', 'batch_output']),
  status: z.literal('processed'),
  status_details: z.null(),
});
export type FileObject = z.infer<typeof fileObjectSchema>;

export const fileListSchema = z.object({
  object: z.literal('list'),
  data: z.array(fileObjectSchema),
  has_more: z.boolean(),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
});

export const deletedFileSchema = z.object({ id: z.string(), object: z.literal('file'), deleted: z.literal(true) });

/** The form fields of `POST /v1/files` (multipart), besides the `file` part itself. */
export const uploadFileFieldsSchema = z.object({
  purpose: z.literal('batch', { message: 'purpose: only "batch" is supported (a JSONL file of batch requests)' }),
});

/** `POST /v1/files` for OpenAPI: multipart with `file` and `purpose`. */
export const uploadFileFormSchema = z.object({
  file: z.string().meta({ format: 'binary', description: 'A JSONL file, one batch request per line' }),
  purpose: z.literal('batch'),
});
