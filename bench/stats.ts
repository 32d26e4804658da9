/** What the bench reports of repeated measurements. */
export const min = (xs: number[]) => Math.min(...xs);
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export type Timing = { runs: number[]; min: number; median: number };
export const timing = (xs: number[]): Timing => ({ runs: xs.map((x) => Math.round(x)), min: Math.round(min(xs)), median: Math.round(median(xs)) });
