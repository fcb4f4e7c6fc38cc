// Chart smoothing (pure: no DOM; `node --test tests/web/js/` checks it).

/**
 * TensorBoard's smoothing: an exponential moving average debiased at the start (divided by
 * 1 - w^n, so the first points are not pulled toward 0), over one column of uPlot's aligned
 * data. Nulls (and non-finite values) stay null and are skipped.
 *
 * The average decays once per slot of the shared x column, not per value the series has:
 * on a chart where train loss has ten points per epoch and validation one, the validation
 * line is smoothed over the same stretch of x as the train line (w^10 per epoch), not over
 * ten epochs, which made a short validation series lag far behind its last value. A series
 * with a value in every slot gets exactly TensorBoard's numbers.
 */
export function ema(values, weight) {
  if (!(weight > 0 && weight < 1)) return values;
  let sum = 0;  // weighted sum of the values so far
  let norm = 0;  // the weights' sum: 1 - w^n when every slot has a value (the debiasing)
  let gap = 0;  // slots since the last value
  return values.map((v) => {
    gap += 1;
    if (v === null || v === undefined || !Number.isFinite(v)) return null;
    const decay = weight ** gap;
    sum = sum * decay + (1 - weight) * v;
    norm = norm * decay + (1 - weight);
    gap = 0;
    return sum / norm;
  });
}

/** The smoothing weight a slider or URL value asks for: 0 (off) to 0.99; anything else is off. */
export function smoothingWeight(text) {
  const w = Number(text ?? "");  // strict: "0.5x" is not a weight
  return Number.isFinite(w) && w > 0 && w <= 0.99 ? Math.round(w * 100) / 100 : 0;
}
