// node --test: the charts' smoothing (lib/smooth.js) and the comparison's view in its URL (lib/chart-view.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { readChartView, writeChartView } from "../../../web/static/lib/chart-view.js";
import { ema, smoothingWeight } from "../../../web/static/lib/smooth.js";

const close = (got, want, tol = 1e-9) => {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => assert.ok(
    want[i] === null ? g === null : Math.abs(g - want[i]) <= tol, `[${i}]: got ${g}, expected ${want[i]}`));
};

test("debiased: the first point is itself and a flat series stays flat", () => {
  for (const w of [0.3, 0.6, 0.9, 0.99]) {
    assert.equal(ema([77.5], w)[0], 77.5);
    close(ema([77.5, 77.5, 77.5, 77.5], w), [77.5, 77.5, 77.5, 77.5]);
  }
});

test("a series with every slot filled gets TensorBoard's numbers", () => {
  // TensorBoard: last = last * w + (1 - w) * v; shown = last / (1 - w^n).
  const values = [1, 3, 2, 5];
  const w = 0.6;
  let last = 0;
  const want = values.map((v, i) => {
    last = last * w + (1 - w) * v;
    return last / (1 - w ** (i + 1));
  });
  close(ema(values, w), want);
  close(ema([1, 3], 0.5), [1, (0.5 * 0.5 * 1 + 0.5 * 3) / 0.75]);
});

test("the QA case: a short, nearly flat accuracy series ends near its value, not pulled toward 0", () => {
  // Without debiasing this ends at 67.4 (77.5 * (1 - 0.6^4) after a flat start).
  const smoothed = ema([76, 77, 77.25, 77.5], 0.6);
  assert.ok(Math.abs(smoothed.at(-1) - 77.5) < 0.6, `ended at ${smoothed.at(-1)}`);
  assert.ok(smoothed.every((v) => v >= 76 && v <= 77.5));
});

test("a sparse series decays per slot of the shared x column, not per value", () => {
  // Validation once per 10 train points: smoothed over the same stretch of x as the train line.
  const sparse = Array.from({ length: 40 }, (_, i) => (i % 10 === 9 ? [10, 50, 70, 77.5][(i - 9) / 10] : null));
  const smoothed = ema(sparse, 0.6).filter((v) => v !== null);
  const w10 = 0.6 ** 10;
  assert.equal(smoothed[0], 10);
  assert.ok(Math.abs(smoothed[1] - (w10 * 10 + 50) / (w10 + 1)) < 1e-9);
  assert.ok(smoothed.at(-1) > 77.4, `ended at ${smoothed.at(-1)}`);  // per value it would end at 64.2
  assert.ok(ema([10, 50, 70, 77.5], 0.6).at(-1) < 65);  // a dense series still smooths (and lags) as TensorBoard's
});

test("nulls and non-finite values stay null; weight 0 or out of range is off", () => {
  close(ema([null, 2, undefined, NaN, 4], 0.5), [null, 2, null, null, (0.5 ** 3 * 0.5 * 2 + 0.5 * 4) / (0.5 ** 3 * 0.5 + 0.5)]);
  const raw = [1, 2, 3];
  for (const w of [0, -1, 1, 2, NaN]) assert.equal(ema(raw, w), raw);
});

test("smoothingWeight: 0 to 0.99 in hundredths, anything else is off", () => {
  assert.equal(smoothingWeight("0.6"), 0.6);
  assert.equal(smoothingWeight(0.555), 0.56);
  for (const bad of ["", null, undefined, "x", "0.5x", "-0.2", "1", "NaN", "Infinity"]) {
    assert.equal(smoothingWeight(bad), 0, String(bad));
  }
});

test("chart view in the URL: read back what was written, the page's own query kept", () => {
  const view = { x: "time", smooth: 0.6, log: true, hidden: ["20261201-090000-aaaa", "b"] };
  const search = writeChartView("?ids=a,b,c", view);
  assert.equal(search, "?ids=a,b,c&x=time&smooth=0.6&log=1&hide=20261201-090000-aaaa,b");
  assert.deepEqual(readChartView(search), view);
  assert.equal(writeChartView(search, { x: "epoch", smooth: 0, log: false, hidden: [] }), "?ids=a,b,c");
  assert.equal(writeChartView("?group=lr+sweep&x=time", { x: "iteration" }), "?group=lr+sweep&x=iteration");
});

test("chart view in the URL: unknown or bad values are ignored", () => {
  assert.deepEqual(readChartView("?ids=a,b&x=furlongs&smooth=7&log=yes&hide="), { hidden: [] });
  assert.deepEqual(readChartView("?smooth=abc&x=&log=0"), { hidden: [] });
  assert.deepEqual(readChartView("?hide=,a,,b"), { hidden: ["a", "b"] });
});
