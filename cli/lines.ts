/** Splits a stream into whole lines, keeping a partial last one for the next chunk. */
export class LineSplitter {
  private rest = "";
  constructor(private readonly emit: (line: string) => void) {}
  push(chunk: Buffer | string): void {
    const parts = (this.rest + chunk.toString()).split("\n");
    this.rest = parts.pop() ?? "";
    for (const p of parts) this.emit(p.replace(/\r$/, ""));
  }
  end(): void {
    if (this.rest) this.emit(this.rest);
    this.rest = "";
  }
}
