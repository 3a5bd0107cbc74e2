// Small pieces of CPython behaviour that the reference metrics rely on and
// that JavaScript does differently. Internal to eval/ (not exported by mod.ts).

// Characters for which CPython's str.isspace() is true, i.e. what str.split()
// with no argument splits on. JavaScript's \s differs: it lacks U+001C..U+001F
// and U+0085 and adds U+FEFF.
const PY_WHITESPACE_CLASS =
  "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE_CLASS}]+`);
const PY_TRAILING_WHITESPACE = new RegExp(`[${PY_WHITESPACE_CLASS}]+$`);

/** Python's `s.split()`: split on runs of whitespace, dropping empty pieces. */
export function pySplit(s: string): string[] {
  return s.split(PY_WHITESPACE_RUN).filter((piece) => piece.length > 0);
}

/** Python's `s.rstrip()`. */
export function pyRstrip(s: string): string {
  return s.replace(PY_TRAILING_WHITESPACE, "");
}

/**
 * Python's `f"{x:.{digits}f}"`.
 *
 * Both Python and `Number.prototype.toFixed` round the exact binary value of
 * `x`, but at an exact tie (x = 12.25 to one digit) Python rounds half to even
 * ("12.2") and toFixed rounds up ("12.3"). This does the exact arithmetic with
 * BigInt so that score lines match sacreBLEU character for character.
 */
export function pyFormatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const negative = x < 0 || Object.is(x, -0);
  const { mantissa, exponent } = decompose(Math.abs(x));
  const scale = 10n ** BigInt(digits);
  let rounded: bigint;
  if (exponent >= 0) {
    rounded = mantissa * (1n << BigInt(exponent)) * scale;
  } else {
    const numerator = mantissa * scale;
    const denominator = 1n << BigInt(-exponent);
    const quotient = numerator / denominator;
    const twiceRemainder = 2n * (numerator % denominator);
    if (twiceRemainder > denominator) rounded = quotient + 1n;
    else if (twiceRemainder < denominator) rounded = quotient;
    else rounded = quotient % 2n === 0n ? quotient : quotient + 1n;
  }
  let text = rounded.toString();
  if (digits > 0) {
    text = text.padStart(digits + 1, "0");
    text = `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  }
  return negative ? `-${text}` : text;
}

// |x| = mantissa * 2^exponent exactly, for finite x >= 0.
function decompose(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (biasedExponent === 0) return { mantissa: fraction, exponent: -1074 };
  return { mantissa: fraction | (1n << 52n), exponent: biasedExponent - 1075 };
}

/** Splits a string into Unicode code points, as Python indexes strings. */
export function codePoints(s: string): string[] {
  return Array.from(s);
}
