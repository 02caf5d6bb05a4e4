import { runService } from '@gef/common/service';
import { loadConfig } from './config';
import { ScriptSchema } from './entities/script';
import { migrations } from './migrations';
import { routes } from './routes';
import { createWorker } from './worker';

const config = loadConfig();

void runService({
  name: 'script',
  config,
  entities: [ScriptSchema],
  migrations,
  wire: ({ orm, logger, temporal }) => ({
    routes: routes({ orm }),
    worker: createWorker(temporal.settings, orm, logger),
  }),
});
