// A mergeable latency histogram: load generators in several processes each fill one, and the
// parent adds them up, so the run's percentiles come from every sample (averaging per-process
// percentiles would be wrong).
//
// Buckets follow HdrHistogram's layout with 64 sub-buckets per power of two: values below 128 us
// are exact, larger ones are kept within 1/64 (1.6%) of their value.

/** Values at or below this are stored exactly (microseconds). */
const exactBelowUs = 128;
/** Sub-buckets per power of two above exactBelowUs. */
const subBuckets = 64;
/** Largest recordable value, 2^36 us (about 19 hours); larger values are clamped to it. */
export const histogramValueUsMax = 2 ** 36 - 1;
const highestBit = 36;
const bucketCount = exactBelowUs + (highestBit - 7) * subBuckets;

function indexOf(us: number): number {
  if (us < exactBelowUs) return us;
  // Position of the highest set bit; clz32 sees 32 bits, so larger values go through their high word.
  const msb = us < 2 ** 32 ? 31 - Math.clz32(us) : 63 - Math.clz32(Math.floor(us / 2 ** 32));
  const shift = msb - 6;
  const sub = Math.floor(us / 2 ** shift); // in [64, 128)
  return exactBelowUs + (msb - 7) * subBuckets + (sub - subBuckets);
}

/** The largest value that lands in bucket `index` (what a percentile reports, as HdrHistogram does). */
function highestIn(index: number): number {
  if (index < exactBelowUs) return index;
  const k = index - exactBelowUs;
  const msb = 7 + Math.floor(k / subBuckets);
  const shift = msb - 6;
  const sub = subBuckets + (k % subBuckets);
  return (sub + 1) * 2 ** shift - 1;
}

/** Sparse wire form: [bucket index, count] pairs, plus the exact extremes. */
export interface HistogramJson {
  buckets: Array<[number, number]>;
  count: number;
  maxUs: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(bucketCount);
  count = 0;
  maxUs = 0;

  /** Records one latency given in milliseconds (rounded to whole microseconds). */
  recordMs(ms: number): void {
    const us = Math.min(histogramValueUsMax, Math.max(0, Math.round(ms * 1000)));
    const i = indexOf(us);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(other: LatencyHistogram | HistogramJson): void {
    if (other instanceof LatencyHistogram) {
      for (let i = 0; i < bucketCount; i++) this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    } else {
      for (const [i, n] of other.buckets) {
        if (!Number.isInteger(i) || i < 0 || i >= bucketCount || !(n >= 0)) throw new Error(`histogram bucket ${i} out of range`);
        this.counts[i] = (this.counts[i] as number) + n;
      }
    }
    this.count += other.count;
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  /** The value (ms) at or below which a fraction p of the samples lie; 0 when empty. */
  percentileMs(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(p * this.count));
    let seen = 0;
    for (let i = 0; i < bucketCount; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(highestIn(i), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  toJSON(): HistogramJson {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < bucketCount; i++) if ((this.counts[i] as number) > 0) buckets.push([i, this.counts[i] as number]);
    return { buckets, count: this.count, maxUs: this.maxUs };
  }

  static fromJSON(j: HistogramJson): LatencyHistogram {
    const h = new LatencyHistogram();
    h.merge(j);
    return h;
  }
}
