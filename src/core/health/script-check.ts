/**
 * Send/expect scripts for protocols such as SMTP, Redis or a custom banner: steps run in order;
 * each `send` is written, each `expect` waits until what arrived since the previous expect
 * matches (a string it contains, a regular expression, or exact bytes it contains). The check
 * passes when the last step is done; it fails when the server closes first, or sends more than
 * MAX_CHECK_READ without a match (the probe's timeout covers a server that says nothing).
 */
import type { ExpectMatch, ScriptStep } from './check-spec.ts';
import { excerpt, fail, latin1, MAX_CHECK_READ, pass, type Conversation, type Step, type Verdict } from './conversation.ts';

export function describeMatch(m: ExpectMatch): string {
  switch (m.kind) {
    case 'string':
      return JSON.stringify(m.text);
    case 'regex':
      return `/${m.source}/`;
    case 'bytes':
      return `bytes ${Buffer.from(m.data).toString('hex')}`;
  }
}

interface CompiledExpect {
  test(text: string): number;
}

function compile(m: ExpectMatch): CompiledExpect {
  switch (m.kind) {
    case 'string':
      return { test: (t) => { const i = t.indexOf(m.text); return i < 0 ? -1 : i + m.text.length; } };
    case 'bytes': {
      const needle = latin1(m.data);
      return { test: (t) => { const i = t.indexOf(needle); return i < 0 ? -1 : i + needle.length; } };
    }
    case 'regex': {
      const re = new RegExp(m.source);
      return { test: (t) => { const r = re.exec(t); return r === null ? -1 : r.index + r[0].length; } };
    }
  }
}

export class ScriptConversation implements Conversation {
  readonly #steps: readonly ScriptStep[];
  readonly #compiled: (CompiledExpect | null)[];
  #i = 0;
  #text = '';

  constructor(steps: readonly ScriptStep[]) {
    this.#steps = steps;
    this.#compiled = steps.map((s) => (s.kind === 'expect' ? compile(s.match) : null));
  }

  /** Runs sends up to the next expect; a verdict when the script is done. */
  #advance(): Step {
    const out: Uint8Array[] = [];
    while (this.#i < this.#steps.length && this.#steps[this.#i]!.kind === 'send') {
      out.push((this.#steps[this.#i] as { data: Uint8Array }).data);
      this.#i++;
    }
    if (out.length > 0) return { send: out.length === 1 ? out[0]! : Buffer.concat(out) };
    if (this.#i >= this.#steps.length) return pass(`script of ${this.#steps.length} step(s) completed`);
    return null;
  }

  connected(): Step {
    return this.#advance();
  }

  data(chunk: Uint8Array): Step {
    this.#text += latin1(chunk);
    for (;;) {
      const step = this.#steps[this.#i];
      if (step === undefined) return pass(`script of ${this.#steps.length} step(s) completed`);
      if (step.kind === 'send') return this.#advance();
      const end = this.#compiled[this.#i]!.test(this.#text);
      if (end < 0) {
        if (this.#text.length > MAX_CHECK_READ) return fail(`step ${this.#i + 1}: expected ${describeMatch(step.match)}, got ${excerpt(this.#text)}`);
        return null;
      }
      this.#text = this.#text.slice(end);
      this.#i++;
      if (this.#i >= this.#steps.length) return pass(`script of ${this.#steps.length} step(s) completed`);
      if (this.#steps[this.#i]!.kind === 'send') return this.#advance();
    }
  }

  /** Where the script is stuck, for a timeout message. */
  waitingFor(): string {
    const step = this.#steps[this.#i];
    if (step === undefined || step.kind === 'send') return '';
    return `step ${this.#i + 1}: expected ${describeMatch(step.match)}, got ${this.#text === '' ? 'nothing' : excerpt(this.#text)}`;
  }

  ended(): Verdict {
    const w = this.waitingFor();
    if (w === '') return pass(`script of ${this.#steps.length} step(s) completed`);
    return fail(`connection closed at ${w}`);
  }
}
