/**
 * The error of a wrong command line (E_USAGE), thrown by pen's argv parser (pen-args.ts, which
 * re-exports it for its importers) and the parts it delegates to, such as pen-tls-args.ts.
 */
import { FulcrumError } from '../core/errors.ts';

export class UsageError extends FulcrumError {
  override readonly name = 'UsageError';

  constructor(message: string, options?: ErrorOptions) {
    super('E_USAGE', message, options);
  }
}
