import { Controller, Delete, Get, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import bytes from 'bytes';
import multer from 'multer';
import { z } from 'zod';
import { uploadFileFieldsSchema } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { TenantId } from '../auth/tenant.decorator';
import { ApiError } from '../common/api-error';
import { parseOrThrow } from '../common/zod-validation.pipe';
import { writeJsonl } from '../batches/write-jsonl';
import { FilesService } from './files.service';

const listQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(10_000).default(10_000), purpose: z.string().optional() });

/** OpenAI's `/v1/files`, for batch input files (multipart upload, as `client.files.create` sends it). */
@Controller('v1/files')
export class FilesController {
  /** multer, in memory up to `batches.bodyLimit`: the JSONL is validated whole before it is stored (as a direct upload is). */
  private readonly upload: ReturnType<multer.Multer['single']>;
  private readonly maxBytes: number;

  constructor(
    private readonly files: FilesService,
    @Inject(TOKENWIRE_CONFIG) config: TokenwireConfig,
  ) {
    this.maxBytes = bytes.parse(config.batches.bodyLimit) ?? 50 * 1024 * 1024;
    this.upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: this.maxBytes, files: 1, fields: 8 } }).single('file');
  }

  @Post()
  async create(@TenantId() tenantId: string, @Req() request: Request, @Res() response: Response): Promise<void> {
    if (!request.is('multipart/form-data')) throw new ApiError(400, 'invalid_request', 'send multipart/form-data with a "file" part and purpose=batch');
    await new Promise<void>((resolve, reject) => this.upload(request, response, (error: unknown) => (error ? reject(this.uploadError(error)) : resolve())));
    parseOrThrow(uploadFileFieldsSchema, request.body ?? {});
    const file = request.file;
    if (!file) throw new ApiError(400, 'invalid_request', 'file: a "file" part is required', 'file');
    response.status(200).json(await this.files.upload(tenantId, file.originalname || 'upload.jsonl', file.buffer));
  }

  @Get()
  async list(@TenantId() tenantId: string, @Query() query: unknown) {
    const { limit, purpose } = parseOrThrow(listQuerySchema, query);
    const data = (await this.files.list(tenantId, limit)).filter((file) => !purpose || file.purpose === purpose);
    return { object: 'list', data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
  }

  @Get(':id')
  retrieve(@TenantId() tenantId: string, @Param('id') id: string) {
    return this.files.require(tenantId, id);
  }

  @Get(':id/content')
  async content(@TenantId() tenantId: string, @Param('id') id: string, @Res() response: Response): Promise<void> {
    const { lines, source } = await this.files.content(tenantId, id);
    await writeJsonl(response, source, { lines });
  }

  @Delete(':id')
  delete(@TenantId() tenantId: string, @Param('id') id: string) {
    return this.files.delete(tenantId, id);
  }

  private uploadError(error: unknown): ApiError {
    if (error instanceof multer.MulterError) {
      if (error.code === 'LIMIT_FILE_SIZE') return new ApiError(413, 'invalid_request', `file: larger than ${bytes.format(this.maxBytes)} (batches.bodyLimit)`, 'file');
      return new ApiError(400, 'invalid_request', `${error.field ? `${error.field}: ` : ''}${error.message}; send one "file" part and purpose=batch`);
    }
    return new ApiError(400, 'invalid_request', `the multipart body could not be read: ${(error as Error).message}`);
  }
}
