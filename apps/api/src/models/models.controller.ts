import { Controller, Get, Param } from '@nestjs/common';
import { ApiError } from '../common/api-error';
import { GenerationsService } from '../generations/generations.service';

/** OpenAI's `GET /v1/models` and `GET /v1/models/{id}`: the configured model names. */
@Controller('v1/models')
export class ModelsController {
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(private readonly generations: GenerationsService) {}

  @Get()
  list() {
    return { object: 'list', data: this.generations.listModels().map((id) => this.model(id)) };
  }

  /** Model ids may contain `/` (`org/model`): the route takes the rest of the path. */
  @Get('*id')
  retrieve(@Param('id') id: string | string[]) {
    const name = Array.isArray(id) ? id.join('/') : id;
    if (!this.generations.listModels().includes(name)) throw new ApiError(404, 'model_not_found', `The model '${name}' does not exist`, 'model');
    return this.model(name);
  }

  private model(id: string) {
    return { id, object: 'model' as const, created: this.created, owned_by: 'tokenwire' };
  }
}
