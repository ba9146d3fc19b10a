/** TCP connect check (and TLS handshake check): connecting is passing. */
import { pass, type Conversation, type Step, type Verdict } from './conversation.ts';

export class ConnectConversation implements Conversation {
  readonly #what: string;
  constructor(what: 'connect' | 'TLS handshake') {
    this.#what = what;
  }
  connected(): Step {
    return pass(`${this.#what} succeeded`);
  }
  data(): Step {
    return null;
  }
  ended(): Verdict {
    return pass(`${this.#what} succeeded`);
  }
}
