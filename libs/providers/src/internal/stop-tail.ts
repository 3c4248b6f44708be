/**
 * The end of a reply, long enough to tell which stop sequence it ends with. For upstreams that say a
 * stop sequence matched but not which, and leave it in the text (TGI): only the longest sequence's
 * length of text is kept, whatever the reply's length.
 */
export class StopTail {
  private readonly stops: string[];
  private readonly keep: number;
  private tail = '';

  constructor(stops: readonly string[] | undefined) {
    // Longest first: with stops "b" and "ab", a reply ending "ab" matched "ab".
    this.stops = [...(stops ?? [])].filter(Boolean).sort((a, b) => b.length - a.length);
    this.keep = this.stops[0]?.length ?? 0;
  }

  add(text: string): void {
    if (this.keep) this.tail = (this.tail + text).slice(-this.keep);
  }

  /** The stop sequence the text ends with, if any. */
  matched(): string | undefined {
    return this.stops.find((stop) => this.tail.endsWith(stop));
  }
}
