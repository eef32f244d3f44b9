/**
 * Statistics used by the detectors and selectors. Where a CloudSim policy is ported, the
 * formula follows CloudSim 3.0.3 / commons-math 3 exactly (noted per function), because the
 * ports must reproduce CloudSim's numbers.
 */

/** Median as commons-math Percentile(50): the mean of the two middle values for even n. */
export function median(values: readonly number[]): number {
  const n = values.length;
  if (n === 0) return NaN;
  const s = Float64Array.from(values).sort();
  return percentileSorted(s, 50);
}

/**
 * commons-math 3 "legacy" percentile estimate on sorted data: pos = p(n+1)/100, linear
 * interpolation between the neighbours, clamped to the extremes.
 */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (n === 1) return sorted[0]!;
  const pos = (p * (n + 1)) / 100;
  const fpos = Math.floor(pos);
  const d = pos - fpos;
  if (pos < 1) return sorted[0]!;
  if (pos >= n) return sorted[n - 1]!;
  const lower = sorted[fpos - 1]!;
  const upper = sorted[fpos]!;
  return lower + d * (upper - lower);
}

/** Median absolute deviation without the 1.4826 consistency factor (CloudSim MathUtil.mad). */
export function mad(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = median(values);
  return median(values.map((x) => Math.abs(m - x)));
}

/**
 * Inter-quartile range as CloudSim's MathUtil.iqr: Q1 = sorted[round(0.25(n+1)) − 1],
 * Q3 = sorted[round(0.75(n+1)) − 1], no interpolation.
 */
export function iqr(values: readonly number[]): number {
  const s = Float64Array.from(values).sort();
  const q1 = Math.round(0.25 * (s.length + 1)) - 1;
  const q3 = Math.round(0.75 * (s.length + 1)) - 1;
  return s[q3]! - s[q1]!;
}

/**
 * Ordinary least squares y = a + b·x computed the way commons-math's SimpleRegression does
 * (running means and centred sums), so predictions match CloudSim's LR policy bit for bit in
 * practice. Returns [intercept, slope]; slope is NaN when x has no spread.
 */
export function simpleRegression(x: readonly number[], y: readonly number[]): [number, number] {
  let n = 0;
  let xbar = 0;
  let ybar = 0;
  let sumXX = 0;
  let sumXY = 0;
  let sumX = 0;
  let sumY = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    const yi = y[i]!;
    if (n === 0) {
      xbar = xi;
      ybar = yi;
    } else {
      const fact1 = 1 + n;
      const fact2 = n / (1 + n);
      const dx = xi - xbar;
      const dy = yi - ybar;
      sumXX += dx * dx * fact2;
      sumXY += dx * dy * fact2;
      xbar += dx / fact1;
      ybar += dy / fact1;
    }
    sumX += xi;
    sumY += yi;
    n++;
  }
  if (n < 2 || Math.abs(sumXX) < 10 * Number.MIN_VALUE) return [NaN, NaN];
  const slope = sumXY / sumXX;
  return [(sumY - slope * sumX) / n, slope];
}

/**
 * R² of an OLS multiple regression with intercept of y on the columns of X (n rows, p
 * columns), via Householder QR. Returns null when the regression is undefined: fewer rows
 * than parameters, or a singular design matrix (commons-math throws in both cases and
 * CloudSim's MC selection then falls back to MMT).
 */
export function olsRSquared(y: readonly number[], X: readonly (readonly number[])[]): number | null {
  const n = y.length;
  const p = (X[0]?.length ?? 0) + 1;
  if (n === 0 || p > n) return null;
  // Design matrix with an intercept column, column-major for the Householder sweep.
  const A: Float64Array[] = [new Float64Array(n).fill(1)];
  for (let j = 1; j < p; j++) A.push(Float64Array.from({ length: n }, (_, i) => X[i]![j - 1]!));
  const b = Float64Array.from(y);
  for (let k = 0; k < p; k++) {
    const col = A[k]!;
    let norm = 0;
    for (let i = k; i < n; i++) norm += col[i]! * col[i]!;
    norm = Math.sqrt(norm);
    if (norm === 0) return null;
    const alpha = col[k]! > 0 ? -norm : norm;
    const v = new Float64Array(n);
    v[k] = col[k]! - alpha;
    for (let i = k + 1; i < n; i++) v[i] = col[i]!;
    let vv = 0;
    for (let i = k; i < n; i++) vv += v[i]! * v[i]!;
    if (vv === 0) continue;
    const apply = (c: Float64Array): void => {
      let dot = 0;
      for (let i = k; i < n; i++) dot += v[i]! * c[i]!;
      const f = (2 * dot) / vv;
      for (let i = k; i < n; i++) c[i]! -= f * v[i]!;
    };
    for (let j = k; j < p; j++) apply(A[j]!);
    apply(b);
    if (A[k]![k] === 0) return null;
  }
  // Residual sum of squares = ‖Qᵀy‖² over rows p..n-1.
  let ssr = 0;
  for (let i = p; i < n; i++) ssr += b[i]! * b[i]!;
  let mean = 0;
  for (const v of y) mean += v;
  mean /= n;
  let ssto = 0;
  for (const v of y) ssto += (v - mean) * (v - mean);
  return 1 - ssr / ssto;
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return values.length === 0 ? NaN : s / values.length;
}

/** q-quantile (0..1) with linear interpolation between order statistics (type 7). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const s = Float64Array.from(values as ArrayLike<number>).sort();
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}
