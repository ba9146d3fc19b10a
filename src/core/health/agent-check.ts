/**
 * Agent checks: the server reports its own state over a small TCP text protocol, as HAProxy's
 * agent-check: one line of words separated by spaces, commas or tabs, e.g. `up 75%`, `drain`,
 * `maint`, `down #disk full`. Words:
 *
 * - `up` / `ready`: back to normal (clears a drain, maintenance or down the agent set);
 * - `drain`: no new connections; `maint`: out of rotation; `down`, `fail`, `stopped`: down;
 * - `N%`: the effective weight is N% of the configured weight (0% takes no new connections);
 * - text after `#` is the reason, shown in the status.
 *
 * An agent that cannot be reached changes nothing: reachability is the health check's job.
 */
import { fail, latin1, pass, type AgentReport, type AgentState, type Conversation, type Step, type Verdict } from './conversation.ts';

// The report's type lives beside Verdict, which carries it; re-exported for the servers and the checker.
export type { AgentReport, AgentState };

/** Parses one agent reply line; null if it holds nothing recognisable. */
export function parseAgentReply(line: string): AgentReport | null {
  const hash = line.indexOf('#');
  const reason = hash >= 0 ? line.slice(hash + 1).trim() : '';
  const words = (hash >= 0 ? line.slice(0, hash) : line).trim().toLowerCase().split(/[\s,]+/).filter((w) => w !== '');
  let state: AgentState | null = null;
  let weightPercent: number | null = null;
  for (const w of words) {
    const pct = /^(\d{1,3})%$/.exec(w);
    if (pct !== null) weightPercent = Math.min(256, Number(pct[1]));
    else if (w === 'up' || w === 'ready') state = 'up';
    else if (w === 'drain') state = 'drain';
    else if (w === 'maint') state = 'maint';
    else if (w === 'down' || w === 'fail' || w === 'stopped') state = 'down';
    // unknown words (HAProxy's maxconn:N and the like) are ignored
  }
  if (state === null && weightPercent === null) return null;
  return { state, weightPercent, reason };
}

export class AgentConversation implements Conversation {
  readonly #send: Uint8Array | null;
  #text = '';

  constructor(send: string | null) {
    this.#send = send === null || send === '' ? null : new TextEncoder().encode(send);
  }

  connected(): Step {
    return this.#send === null ? null : { send: this.#send };
  }

  data(chunk: Uint8Array): Step {
    this.#text += latin1(chunk);
    const eol = this.#text.indexOf('\n');
    if (eol < 0) return this.#text.length > 1024 ? this.#judge(this.#text) : null;
    return this.#judge(this.#text.slice(0, eol));
  }

  #judge(line: string): Verdict {
    const report = parseAgentReply(line.replace(/\r$/, ''));
    if (report === null) return fail(`agent reply ${JSON.stringify(line.slice(0, 60))} not understood`);
    return { ...pass(`agent says ${line.trim().slice(0, 80)}`), agent: report };
  }

  ended(): Verdict {
    return this.#text.trim() === '' ? fail('agent closed without a reply') : this.#judge(this.#text);
  }
}
