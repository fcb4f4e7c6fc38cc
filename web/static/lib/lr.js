// DIGITS's seven learning-rate policies, in percent of training (digits-features §2.2).
// Pure functions, no DOM: the new-model form's preview and `node --test` both use them.

/** TrainSpec's defaults (proto/models.py): a field left blank in the form takes these. */
export const DEFAULTS = Object.freeze({
  learning_rate: 0.01,
  lr_policy: "step",
  lr_step_size: 33,
  lr_step_gamma: 0.1,
  lr_multistep_values: "50,85",
  lr_multistep_gamma: 0.5,
  lr_exp_gamma: 0.95,
  lr_inv_gamma: 0.1,
  lr_inv_power: 0.5,
  lr_poly_power: 3,
  lr_sigmoid_step: 50,
  lr_sigmoid_gamma: 0.1,
});

export const POLICIES = ["fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid"];

/** Which parameters each policy reads (the form shows only these). */
export const POLICY_FIELDS = Object.freeze({
  fixed: [],
  step: ["lr_step_size", "lr_step_gamma"],
  multistep: ["lr_multistep_values", "lr_multistep_gamma"],
  exp: ["lr_exp_gamma"],
  inv: ["lr_inv_gamma", "lr_inv_power"],
  poly: ["lr_poly_power"],
  sigmoid: ["lr_sigmoid_step", "lr_sigmoid_gamma"],
});

/** A strict number: "" / junk → NaN (parseFloat would read "5x" as 5). */
export function toNumber(value) {
  if (typeof value === "number") return value;
  const text = String(value ?? "").trim();
  return text === "" ? NaN : Number(text);
}

/** `lr_multistep_values` ("50,85", "[10, 20]") as numbers; NaN marks a bad item. */
export function multistepValues(text) {
  return String(text ?? "").replace(/[[\]]/g, "").split(",")
    .filter((part) => part.trim() !== "").map(toNumber);
}

/** Comma list of base learning rates (a sweep), as the form's `learning_rate` allows. */
export function learningRates(text) {
  return String(text ?? "").replace(/[[\]]/g, "").split(",")
    .filter((part) => part.trim() !== "").map(toNumber);
}

/** Params over DEFAULTS, blank values falling back to the default. */
export function withDefaults(params = {}) {
  const out = { ...DEFAULTS };
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && String(value).trim() !== "") out[key] = value;
  }
  return out;
}

/** The learning rate at `p` percent (0..100) of training; NaN when a parameter is invalid. */
export function lrAt(p, params = {}) {
  const s = withDefaults(params);
  const base = toNumber(s.learning_rate);
  const num = (key) => toNumber(s[key]);
  switch (s.lr_policy) {
    case "fixed":
      return base;
    case "step": {
      const size = num("lr_step_size");
      return size > 0 ? base * num("lr_step_gamma") ** Math.floor(p / size) : NaN;
    }
    case "multistep": {
      const values = multistepValues(s.lr_multistep_values);
      if (values.some(Number.isNaN)) return NaN;
      return base * num("lr_multistep_gamma") ** values.filter((v) => p >= v).length;
    }
    case "exp":
      return base * num("lr_exp_gamma") ** p;
    case "inv":
      return base * (1 + num("lr_inv_gamma") * p) ** -num("lr_inv_power");
    case "poly":
      return base * Math.max(0, 1 - p / 100) ** num("lr_poly_power");
    case "sigmoid": {
      const x = num("lr_sigmoid_gamma") * (p - num("lr_sigmoid_step"));
      return x > 700 ? 0 : base / (1 + Math.exp(x));  // same cut-off as the trainer
    }
    default:
      return NaN;
  }
}

/** DIGITS's preview: for each base rate, lr at 0,1,…,100 % (visualize-lr's columns). */
export function schedule(params = {}) {
  const rates = learningRates(params.learning_rate ?? "");
  const bases = rates.length ? rates : [DEFAULTS.learning_rate];
  const xs = Array.from({ length: 101 }, (_, i) => i);
  return {
    xs,
    series: bases.map((rate) => xs.map((p) => lrAt(p, { ...params, learning_rate: rate }))),
    rates: bases,
  };
}
