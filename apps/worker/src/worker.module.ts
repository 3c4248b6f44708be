import { Module, type DynamicModule } from '@nestjs/common';
import { asSingleUpstream, CoreModule, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ProviderRegistry } from '@tokenwire/providers';
import { CancelListenerService } from './control/cancel-listener.service';
import { GenerationRunnerService } from './generations/generation-runner.service';
import { BatchItemRunnerService } from './batches/batch-item-runner.service';
import { BatchRecoveryService } from './batches/batch-recovery.service';
import { WorkerBatchFeeder } from './batches/worker-batch-feeder.service';
import { GenerationsProcessor } from './generations/generations.processor';
import { AbandonedGenerationReaper } from './generations/abandoned-generation-reaper.service';
import { UpstreamRouterService } from './upstream/upstream-router.service';
import { MetricsServerService } from './metrics/metrics-server.service';
import { OllamaHealthService } from './upstream/ollama-health.service';
import { FleetRouterService } from './upstream/fleet/fleet-router.service';
import { FleetHealthService } from './upstream/fleet/fleet-health.service';

@Module({})
export class WorkerModule {
  static forRoot(config: TokenwireConfig, logger: Logger): DynamicModule {
    return {
      module: WorkerModule,
      imports: [CoreModule.forRoot(config, logger, 'worker')],
      providers: [
        { provide: ProviderRegistry, useFactory: () => new ProviderRegistry(config.models.map(asSingleUpstream)) },
        FleetRouterService,
        FleetHealthService,
        UpstreamRouterService,
        GenerationRunnerService,
        WorkerBatchFeeder,
        BatchItemRunnerService,
        BatchRecoveryService,
        GenerationsProcessor,
        AbandonedGenerationReaper,
        CancelListenerService,
        MetricsServerService,
        OllamaHealthService,
      ],
    };
  }
}
