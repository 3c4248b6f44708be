import { Inject, Injectable } from '@nestjs/common';
import type { FileObject } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { ApiError, echo } from '../common/api-error';
import { BatchesService } from '../batches/batches.service';
import { FilesStore } from './files.store';

/** `file-<batch id>-output` / `-errors`: a batch's results, read as a file. */
const BATCH_FILE = /^file-(batch_[0-9a-f]+)-(output|errors)$/;

/**
 * OpenAI's Files API for batches: uploads are JSONL batch inputs, validated line by line at
 * upload (the error names the line), owned by the tenant. A batch's output and error files are
 * views of its results in Redis, not copies.
 */
@Injectable()
export class FilesService {
  constructor(
    private readonly store: FilesStore,
    private readonly batches: BatchesService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  async upload(tenantId: string, filename: string, content: Buffer): Promise<FileObject> {
    this.batches.parse(content.toString('utf8')); // throws a 400 naming the first bad line
    return this.store.create(tenantId, filename, content);
  }

  async require(tenantId: string, id: string): Promise<FileObject> {
    const batchFile = BATCH_FILE.exec(id);
    const file = batchFile ? await this.batchFile(tenantId, batchFile[1]!, batchFile[2] as 'output' | 'errors') : await this.store.get(tenantId, id);
    if (!file) throw new ApiError(404, 'not_found', `no file with id ${echo(id)}`, 'file_id');
    return file;
  }

  list(tenantId: string, limit: number): Promise<FileObject[]> {
    return this.store.list(tenantId, limit);
  }

  async delete(tenantId: string, id: string): Promise<{ id: string; object: 'file'; deleted: true }> {
    if (BATCH_FILE.test(id)) throw new ApiError(400, 'invalid_request', 'a batch output file goes with its batch (after batches.ttlSeconds)', 'file_id');
    if (!(await this.store.delete(tenantId, id))) throw new ApiError(404, 'not_found', `no file with id ${echo(id)}`, 'file_id');
    return { id, object: 'file', deleted: true };
  }

  /** The file's content: its bytes, or a batch's result lines (one JSON object per line). */
  async content(tenantId: string, id: string): Promise<{ lines: boolean; source: AsyncIterable<string | Buffer> }> {
    const file = await this.require(tenantId, id);
    const batchFile = BATCH_FILE.exec(id);
    if (!batchFile) return { lines: false, source: this.store.chunks(tenantId, file.id) };
    const batch = await this.batches.require(tenantId, batchFile[1]!);
    return { lines: true, source: this.batches.results(batch, batchFile[2] as 'output' | 'errors') };
  }

  /** A batch's output or error file, once the batch has ended. */
  private async batchFile(tenantId: string, batchId: string, which: 'output' | 'errors'): Promise<FileObject | undefined> {
    const batch = await this.batches.require(tenantId, batchId).catch(() => undefined);
    const id = which === 'output' ? batch?.output_file_id : batch?.error_file_id;
    if (!batch || !id) return undefined;
    let bytes = 0;
    for await (const line of this.batches.results(batch, which)) bytes += Buffer.byteLength(line) + 1;
    const createdAt = batch.finished_at ?? batch.created_at;
    return { id, object: 'file', bytes, created_at: createdAt, expires_at: batch.created_at + this.config.batches.ttlSeconds, filename: `${batchId}_${which}.jsonl`, purpose: 'batch_output', status: 'processed', status_details: null };
  }
}
