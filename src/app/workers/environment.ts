/**
 * The environment a primary gives its worker processes: their number, and where the shared
 * memory is. Apart from the rest of the workers' code (protocol.ts), so that every start can ask
 * whether it is a worker without loading any of it.
 */
export const WORKER_ENV = 'FULCRUM_WORKER';
export const WORKER_SHM_ENV = 'FULCRUM_WORKER_SHM';
export const WORKER_COUNT_ENV = 'FULCRUM_WORKER_COUNT';
export const WORKER_EPOCH_ENV = 'FULCRUM_WORKER_EPOCH';

/** True in a worker process of --workers. */
export function isWorkerProcess(): boolean {
  return process.env[WORKER_ENV] !== undefined;
}
