// One object that owns everything a test starts, so a single close() (or `await using`,
// or useHarness()'s afterEach) stops backends, disconnects clients and kills processes.
import { afterEach } from 'bun:test';
import * as backends from './backends.ts';
import * as client from './client.ts';
import * as processes from './process.ts';
import { errorMessage, removeTempSocketPath, tempSocketPath } from './util.ts';

interface Closable {
  close(): Promise<void>;
}

export class Harness implements AsyncDisposable {
  private resources: Closable[] = [];

  /** Registers something to close with the harness; returns it. */
  add<T extends Closable>(resource: T): T {
    this.resources.push(resource);
    return resource;
  }

  /** Registers a cleanup step (run in reverse order of registration, like everything else). */
  defer(cleanup: () => void | Promise<void>): void {
    this.resources.push({ close: async () => { await cleanup(); } });
  }

  echo(...a: Parameters<typeof backends.echo>): backends.Backend { return this.add(backends.echo(...a)); }
  identify(...a: Parameters<typeof backends.identify>): backends.Backend { return this.add(backends.identify(...a)); }
  hold(...a: Parameters<typeof backends.hold>): backends.Backend { return this.add(backends.hold(...a)); }
  closeAtOnce(...a: Parameters<typeof backends.closeAtOnce>): backends.Backend { return this.add(backends.closeAtOnce(...a)); }
  reset(...a: Parameters<typeof backends.reset>): backends.Backend { return this.add(backends.reset(...a)); }
  refuse(...a: Parameters<typeof backends.refuse>): backends.RefusedPort { return this.add(backends.refuse(...a)); }
  slowReader(...a: Parameters<typeof backends.slowReader>): backends.SlowReaderBackend { return this.add(backends.slowReader(...a)); }
  stall(...a: Parameters<typeof backends.stall>): backends.Backend { return this.add(backends.stall(...a)); }
  sink(...a: Parameters<typeof backends.sink>): backends.DigestBackend { return this.add(backends.sink(...a)); }
  source(...a: Parameters<typeof backends.source>): backends.SourceBackend { return this.add(backends.source(...a)); }
  custom(...a: Parameters<typeof backends.customBackend>): backends.Backend { return this.add(backends.customBackend(...a)); }

  async connect(...a: Parameters<typeof client.connect>): Promise<client.Client> { return this.add(await client.connect(...a)); }
  async connectUnix(...a: Parameters<typeof client.connectUnix>): Promise<client.Client> { return this.add(await client.connectUnix(...a)); }

  async startFulcrum(...a: Parameters<typeof processes.startFulcrum>): Promise<processes.RunningProcess> { return this.add(await processes.startFulcrum(...a)); }
  async startPen(...a: Parameters<typeof processes.startPen>): Promise<processes.RunningProcess> { return this.add(await processes.startPen(...a)); }
  async spawn(...a: Parameters<typeof processes.spawnProcess>): Promise<processes.RunningProcess> { return this.add(await processes.spawnProcess(...a)); }

  /** A fresh Unix socket path, removed (with its temp dir) on close. */
  socketPath(name?: string): string {
    const path = tempSocketPath(name);
    this.defer(() => removeTempSocketPath(path));
    return path;
  }

  /**
   * Closes everything, newest first (clients, then processes, then backends, in the usual order of creation).
   * Keeps going past failures and reports them all at the end. The harness can be reused afterwards.
   */
  async close(): Promise<void> {
    const resources = this.resources.reverse();
    this.resources = [];
    const failures: string[] = [];
    for (const resource of resources) {
      try {
        await resource.close();
      } catch (err) {
        failures.push(errorMessage(err));
      }
    }
    if (failures.length > 0) throw new Error(`harness close failed:\n${failures.join('\n')}`);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A Harness closed after every test of the calling file/describe block (registers afterEach). */
export function useHarness(): Harness {
  const harness = new Harness();
  afterEach(() => harness.close());
  return harness;
}
