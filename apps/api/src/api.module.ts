import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { AdminKeysController } from './auth/admin-keys.controller';
import { AdminTenantsController } from './auth/admin-tenants.controller';
import { AuditLog } from './auth/audit-log.service';
import { RevocationService } from './auth/revocation.service';
import { SocketAuthService } from './socket/socket-auth.service';
import { ApiKeysService } from './auth/api-keys.service';
import { AuthGuard } from './auth/auth.guard';
import { UsageController } from './generations/usage.controller';
import { RoomBusService } from './rooms/room-bus.service';
import { MetricsServerService } from './metrics/metrics-server.service';
import { ConversationRoomsService } from './rooms/conversation-rooms.service';
import { SocketBatchWatchesService } from './socket/socket-batch-watches.service';
import { SocketSubscriptionsService } from './socket/socket-subscriptions.service';
import { OpenApiController } from './openapi/openapi.controller';
import { BatchesController } from './batches/batches.controller';
import { BatchesService } from './batches/batches.service';
import { asSingleUpstream, CoreModule, GenerationsQueueModule, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ChatCompletionsController } from './chat/chat-completions.controller';
import { HttpErrorFilter } from './common/http-exception.filter';
import { GenerationsController } from './generations/generations.controller';
import { GenerationsService } from './generations/generations.service';
import { HealthController } from './health/health.controller';
import { DeploymentStatusService } from './health/deployment-status.service';
import { DrainService } from './lifecycle/drain.service';
import { ModelsController } from './models/models.controller';
import { MessagesController } from './messages/messages.controller';
import { ResponsesController } from './responses/responses.controller';
import { ResponsesService } from './responses/responses.service';
import { FilesController } from './files/files.controller';
import { FilesService } from './files/files.service';
import { FilesStore } from './files/files.store';
import { GenerationReaderService } from './generations/generation-reader.service';
import { GenerationsGateway } from './socket/generations.gateway';
import { GenerationStreamService } from './streams/generation-stream.service';
import { ProviderRegistry } from '@tokenwire/providers';

@Module({})
export class ApiModule {
  static forRoot(config: TokenwireConfig, logger: Logger): DynamicModule {
    return {
      module: ApiModule,
      imports: [CoreModule.forRoot(config, logger, 'api'), GenerationsQueueModule.register(config)],
      controllers: [ChatCompletionsController, GenerationsController, ModelsController, HealthController, UsageController, AdminKeysController, AdminTenantsController, OpenApiController, BatchesController, MessagesController, ResponsesController, FilesController],
      providers: [
        { provide: APP_FILTER, useClass: HttpErrorFilter },
        { provide: APP_GUARD, useClass: AuthGuard },
        ApiKeysService,
        AuditLog,
        RevocationService,
        SocketAuthService,
        GenerationsService,
        GenerationReaderService,
        ResponsesService,
        FilesStore,
        FilesService,
        GenerationStreamService,
        RoomBusService,
        ConversationRoomsService,
        SocketSubscriptionsService,
        SocketBatchWatchesService,
        GenerationsGateway,
        DrainService,
        BatchesService,
        // The api reads each model's provider capabilities to refuse what it cannot carry; it never calls a provider.
        { provide: ProviderRegistry, useFactory: () => new ProviderRegistry(config.models.map(asSingleUpstream)) },
        MetricsServerService,
        DeploymentStatusService,
      ],
    };
  }
}
