/**
 * A paced sender for the benches' fixed-rate phases: `send` runs `rate` times a second for
 * `ms`, on a 1 ms timer (a setImmediate loop would spin a whole core, which on a 2-core
 * machine is the server's; what falls due between ticks goes out together). When the
 * loader's own timer slips (its GC, the scheduler: gaps of 10+ ms were seen), what fell due
 * is spread over the next ticks, at most MAX_TICK_SHARES ticks' share per tick, so the
 * server sees the rate rather than a burst of hundreds of messages that would measure the
 * loader's pause. `onWarm` runs once `warmMs` have passed; returns the slips after it: the
 * longest gap between ticks and the most messages sent in one tick.
 */
export async function pace(send: () => void, rate: number, ms: number, warmMs: number, onWarm: () => void): Promise<{ maxGapMs: number; maxBurst: number }> {
  const t0 = performance.now();
  let warm = warmMs <= 0;
  if (warm) onWarm();
  let maxGapMs = 0;
  let maxBurst = 0;
  let sent = 0;
  let last = 0;
  const perTickCap = Math.ceil((MAX_TICK_SHARES * rate) / 1000);
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now() - t0;
      if (now >= ms) return resolve();
      if (!warm && now >= warmMs) {
        warm = true;
        onWarm();
      }
      if (warm) maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      const due = Math.min(Math.floor((now / 1000) * rate), sent + perTickCap);
      if (warm) maxBurst = Math.max(maxBurst, due - sent);
      while (sent < due) {
        sent++;
        send();
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  return { maxGapMs, maxBurst };
}

/** The most messages one 1 ms tick sends, in per-tick shares of the rate (catching up after a slip). */
export const MAX_TICK_SHARES = 4;

/**
 * `pairs` pairs of measurements of two sides (0 and 1) back to back, the order alternating,
 * after one warm-up measurement of each: short windows back to back cancel a machine's
 * drift, many pairs shrink the rest of its noise. Returns each side's measurements in order.
 */
export async function alternatingPairs(measure: (side: 0 | 1) => Promise<number>, pairs: number): Promise<[number[], number[]]> {
  await measure(0);
  await measure(1);
  const result: [number[], number[]] = [[], []];
  for (let i = 0; i < pairs; i++) {
    for (const side of i % 2 === 0 ? ([0, 1] as const) : ([1, 0] as const)) result[side].push(await measure(side));
  }
  return result;
}

/** How two sides measured in pairs compare: a ÷ b as the ratio of their means, with a bootstrap 90% interval. */
export interface PairedRatio {
  /** mean(a) ÷ mean(b). */
  ratio: number;
  /** 5th and 95th percentile of the ratio over 2,000 resamples (rounds, then pairs within them, with replacement). */
  low: number;
  high: number;
  /** The median of the per-pair ratios a[i] ÷ b[i], for comparison. */
  median: number;
}

/** `98% (90% interval 96%–100%; median of the pairs 97%)`. */
export function formatPairedRatio(r: PairedRatio): string {
  const percent = (x: number) => `${(x * 100).toFixed(0)}%`;
  return `${percent(r.ratio)} (90% interval ${percent(r.low)}–${percent(r.high)}; median of the pairs ${percent(r.median)})`;
}

/**
 * Compares two sides measured in pairs (alternatingPairs), made in `rounds` rounds of equal
 * size, one after the other (each round on a fresh pair of processes). The ratio of the means
 * uses every window's weight. The interval comes from resampling the rounds and, within each,
 * its pairs: on a shared 2-core VM the per-pair ratios spread by ±10–15%, and two processes of
 * one build differ by a few percent, so a round's pairs are not independent of each other.
 */
export function pairedRatio(a: number[], b: number[], rounds = 1): PairedRatio {
  if (a.length === 0 || a.length !== b.length) throw new Error(`pairedRatio needs pairs, got ${a.length} and ${b.length} values`);
  if (!Number.isInteger(rounds) || rounds < 1 || a.length % rounds !== 0) throw new Error(`pairedRatio: ${a.length} pairs do not split into ${rounds} rounds`);
  const n = a.length;
  const size = n / rounds;
  const pick = (k: number) => Math.floor(Math.random() * k);
  const resample = () => {
    let sa = 0;
    let sb = 0;
    for (let r = 0; r < rounds; r++) {
      const round = pick(rounds) * size;
      for (let i = 0; i < size; i++) {
        const k = round + pick(size);
        sa += a[k]!;
        sb += b[k]!;
      }
    }
    return sa / sb;
  };
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  const resampled = Float64Array.from({ length: 2000 }, resample).sort();
  const perPair = Float64Array.from(a, (x, i) => x / b[i]!).sort();
  return { ratio: sum(a) / sum(b), low: resampled[100]!, high: resampled[1899]!, median: perPair[Math.floor((n - 1) / 2)]! };
}
