// Workflow code: deterministic, no Node APIs. Every export here is a workflow the workers
// can run, or a plain helper they share with clients.
export * from './delete-user';
export * from './build-script';
export * from './run-execution';
export * from './password-link';
