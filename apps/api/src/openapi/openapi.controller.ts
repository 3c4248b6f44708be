import { Controller, Get, Header } from '@nestjs/common';
import { Public } from '../auth/public.decorator';
import { buildOpenApiDocument } from './openapi.document';
import { DOCS_PAGE } from './docs-page';

const VERSION = '0.1.0';

/** The OpenAPI document and a reference page that renders it (no external assets). */
@Public()
@Controller()
export class OpenApiController {
  private readonly document = buildOpenApiDocument(VERSION);

  @Get('openapi.json')
  openapi() {
    return this.document;
  }

  @Get('docs')
  @Header('content-type', 'text/html; charset=utf-8')
  docs() {
    return DOCS_PAGE;
  }
}
