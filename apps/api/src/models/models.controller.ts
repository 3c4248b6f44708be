import { Controller, Get } from '@nestjs/common';
import { GenerationsService } from '../generations/generations.service';

/** OpenAI's `GET /v1/models`: the configured model names. */
@Controller('v1/models')
export class ModelsController {
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(private readonly generations: GenerationsService) {}

  @Get()
  list() {
    return {
      object: 'list',
      data: this.generations.listModels().map((id) => ({ id, object: 'model', created: this.created, owned_by: 'tokenwire' })),
    };
  }
}
