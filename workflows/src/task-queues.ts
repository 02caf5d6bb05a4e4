/** Task queues, one per worker kind. Kept here so workflows need no Node imports. */
export const taskQueues = {
  user: 'gef-user',
  script: 'gef-script',
  execution: 'gef-execution',
  runner: 'gef-runner',
} as const;
