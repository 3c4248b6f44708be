/**
 * Takes a stop sequence out of a streamed reply, for upstreams that end on one but leave it in the text
 * and do not say which (TGI): OpenAI, Anthropic and vLLM never send it. Text is passed on at once except
 * its end while that end could still be the start of a stop sequence (`'#'` with stop `'###'`); the next
 * text either completes the sequence, which is then dropped, or shows it was not one, and is passed on.
 */
export class StopTail {
  private readonly stops: string[];
  /** Text held back: the longest end of the reply so far that begins a stop sequence. */
  private held = '';

  constructor(stops: readonly string[] | undefined) {
    // Longest first: with stops "b" and "ab", a reply ending "ab" matched "ab".
    this.stops = [...(stops ?? [])].filter(Boolean).sort((a, b) => b.length - a.length);
  }

  /** Adds upstream text; returns what can be passed on now (possibly ''). */
  push(text: string): string {
    if (!this.stops.length) return text;
    const all = this.held + text;
    const keep = this.longestStartOfAStop(all);
    this.held = all.slice(all.length - keep);
    return all.slice(0, all.length - keep);
  }

  /**
   * The reply ended. `onStopSequence`: the upstream said a stop sequence ended it. Returns the text still to
   * pass on (without the stop sequence) and which sequence it was, when the reply's end shows one.
   */
  end(onStopSequence: boolean): { text: string; matched?: string } {
    const held = this.held;
    this.held = '';
    const matched = onStopSequence ? this.stops.find((stop) => held.endsWith(stop)) : undefined;
    return matched === undefined ? { text: held } : { text: held.slice(0, held.length - matched.length), matched };
  }

  /**
   * Length of the longest end of `text` that a stop sequence starts with, or ends with a whole one
   * (kept until `end` or more text says whether the reply stopped there).
   */
  private longestStartOfAStop(text: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length, text.length); n > longest; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}
