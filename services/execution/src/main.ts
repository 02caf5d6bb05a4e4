import { runService } from '@gef/common/service';
import { loadConfig } from './config';
import { ExecutionSchema } from './entities/execution';
import { migrations } from './migrations';
import { routes } from './routes';
import { createWorker } from './worker';

const config = loadConfig();

void runService({
  name: 'execution',
  config,
  entities: [ExecutionSchema],
  migrations,
  wire: ({ orm, logger, temporal }) => ({
    routes: routes({ orm }),
    worker: createWorker(temporal.settings, orm, logger),
  }),
});
