// Comparing two engines' logits.

/** ||a − ref|| / ||ref|| */
export function relativeL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (a[i]! - ref[i]!) ** 2;
    n += ref[i]! ** 2;
  }
  return Math.sqrt(d / n);
}

/** The root-mean-square difference of two logit vectors. */
export function rmsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(d / a.length);
}
