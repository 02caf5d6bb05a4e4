/**
 * `npm start`: the whole development stack in the foreground. Prints the URLs once the
 * gateway's /api-health answers 200; Ctrl-C (or SIGTERM) stops every process it started.
 * Options: `--parts <list>` (e.g. `infra`, `postgres,temporal`), default all.
 */
import { DEV_KEYCLOAK_ADMIN_PASSWORD } from './config';
import { stackUrls } from './env';
import { LaunchError, oneLine } from './errors';
import type { PartName } from './parts';
import { createStack, seconds, type StackRuntime } from './stack';

function partsArgument(argv: string[]): string | undefined {
  const index = argv.indexOf('--parts');
  if (index >= 0) return argv[index + 1];
  const inline = argv.find((arg) => arg.startsWith('--parts='));
  return inline?.slice('--parts='.length);
}

function printUrls(stack: StackRuntime, tookMs: number): void {
  const urls = stackUrls(stack.ports, 'localhost');
  const has = (part: PartName): boolean => stack.parts.includes(part);
  const { settings } = stack.config;
  const lines: [string, string][] = [];
  if (has('gateway')) {
    lines.push(['API', urls.api], ['API docs', urls.docs], ['health', urls.health]);
  }
  if (has('temporal')) lines.push(['Temporal UI', urls.temporalUi], ['Temporal gRPC', urls.temporal]);
  // The development password is shown; one of the operator's own (KC_BOOTSTRAP_ADMIN_PASSWORD) is not.
  const adminPassword = settings.keycloakAdminPassword === DEV_KEYCLOAK_ADMIN_PASSWORD ? settings.keycloakAdminPassword : 'KC_BOOTSTRAP_ADMIN_PASSWORD';
  if (has('keycloak')) lines.push(['Keycloak admin', `${urls.keycloakAdmin}  (login ${settings.keycloakAdmin} / ${adminPassword})`]);
  if (has('maildev')) lines.push(['MailDev', `${urls.maildevWeb}  (SMTP 127.0.0.1:${stack.ports.maildevSmtp})`]);
  if (has('postgres')) lines.push(['PostgreSQL', `127.0.0.1:${stack.ports.postgres} (user postgres / postgres; gef_user, gef_script, gef_execution, gef_gateway, keycloak)`]);
  lines.push(['data', stack.dataDir], ['logs', stack.logDir]);
  const width = Math.max(...lines.map(([label]) => label.length));
  console.log(`\nGEF stack is up (${seconds(tookMs)}):`);
  for (const [label, value] of lines) console.log(`  ${label.padEnd(width)}  ${value}`);
  console.log('Press Ctrl-C to stop.');
}

async function main(): Promise<void> {
  let stack: StackRuntime;
  try {
    stack = createStack({ parts: partsArgument(process.argv.slice(2)), onStatus: (line) => console.log(`[gef] ${line}`) });
  } catch (error) {
    console.error(oneLine(error));
    process.exit(1);
  }
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      console.error('killing every part now');
      stack.killNow();
      process.exit(130);
    }
    console.log(`[gef] ${signal}: stopping every part...`);
    const began = Date.now();
    void stack.stop().then(() => {
      console.log(`[gef] stopped in ${seconds(Date.now() - began)}`);
      process.exit(0);
    });
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGHUP', shutdown);
  // Last resort: whatever happens to the launcher, its children do not outlive it.
  process.on('exit', () => stack.killNow());
  stack.onExit((part, exit, logFile) => {
    console.error(`[gef] ${part} exited (${exit.signal ?? `code ${String(exit.code)}`}); see ${logFile}. The rest keeps running; Ctrl-C to stop.`);
  });

  const began = Date.now();
  try {
    await stack.start();
  } catch (error) {
    if (stack.stopped && signals > 0) return; // interrupted: shutdown() exits
    console.error(error instanceof LaunchError ? error.message : oneLine(error));
    process.exit(1);
  }
  printUrls(stack, Date.now() - began);
  // Children keep the loop alive; this keeps it alive even if all of them die.
  setInterval(() => undefined, 1 << 30);
}

void main();
