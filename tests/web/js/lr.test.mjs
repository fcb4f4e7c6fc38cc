// node --test: lr.js against the table the trainer's Python tests use (tests/fixtures/lr_table.json).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { lrAt, multistepValues, schedule } from "../../../web/static/lib/lr.js";

const table = JSON.parse(readFileSync(
  process.env.LR_TABLE ?? new URL("../../fixtures/lr_table.json", import.meta.url), "utf8"));

for (const { params, progress, expected } of table.cases) {
  test(`${JSON.stringify(params)} at ${progress} % gives ${expected}`, () => {
    const got = lrAt(progress, params);
    const tol = Math.max(table.rel_tol * Math.abs(expected), table.abs_tol);
    assert.ok(Math.abs(got - expected) <= tol, `got ${got}, expected ${expected}`);
  });
}

test("blank parameters take the defaults", () => {
  assert.equal(lrAt(40, { lr_policy: "step", lr_step_size: "", learning_rate: " " }), 0.01 * 0.1);
});

test("invalid parameters give NaN instead of a curve", () => {
  assert.ok(Number.isNaN(lrAt(10, { lr_policy: "step", lr_step_size: 0 })));
  assert.ok(Number.isNaN(lrAt(10, { lr_policy: "multistep", lr_multistep_values: "10,x" })));
  assert.ok(Number.isNaN(lrAt(10, { lr_policy: "nope" })));
  assert.deepEqual(multistepValues("[10, 20,30]"), [10, 20, 30]);
});

test("a sweep gives one series of 101 points per base rate", () => {
  const { xs, series, rates } = schedule({ lr_policy: "fixed", learning_rate: "0.1, 0.2" });
  assert.equal(xs.length, 101);
  assert.deepEqual(rates, [0.1, 0.2]);
  assert.equal(series[1][100], 0.2);
});
