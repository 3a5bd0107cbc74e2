// The Porter stemmer as NLTK 3.8 runs it by default: `PorterStemmer()`, whose
// mode is NLTK_EXTENSIONS (nltk/stem/porter.py). rouge_score stems with exactly
// this, so ROUGE with stemming only matches if every NLTK departure from the
// 1980 paper is reproduced:
// - a pool of irregular forms ("skies" -> "sky", "dying" -> "die", ...) that
//   bypasses the algorithm;
// - words of one or two characters are returned unchanged;
// - step 1a: a four-letter word ending "ies" keeps "ie" ("dies" -> "die");
// - step 1b: "ied" becomes "ie" in four-letter words and "i" otherwise, before
//   the paper's rules run ("died" -> "die", "spied" -> "spi");
// - condition *o also holds for a two-letter stem vowel+consonant;
// - step 1c: y -> i only after a consonant that is not the first letter
//   ("happy" -> "happi", "enjoy" -> "enjoy", "cry" -> "cri", "by" -> "by");
// - step 2: "alli" -> "al" is tried first and then step 2 runs again; "bli" ->
//   "ble" replaces the paper's "abli" -> "able"; "fulli" -> "ful" is added; and
//   "logi" -> "log" checks the measure of the word minus "ogi";
// - step 5b: "ll" -> "l" checks the measure of the word minus its last letter.
// A rule list applies the first rule whose suffix matches; if that rule's
// condition fails, no later rule is tried (as NLTK's _apply_rule_list does).

type Condition = ((stem: string) => boolean) | null;
type Rule = readonly [suffix: string, replacement: string, condition: Condition];

const IRREGULAR_FORMS: Readonly<Record<string, string>> = {
  sky: "sky",
  skies: "sky",
  dying: "die",
  lying: "lie",
  tying: "tie",
  news: "news",
  innings: "inning",
  inning: "inning",
  outings: "outing",
  outing: "outing",
  cannings: "canning",
  canning: "canning",
  howe: "howe",
  proceed: "proceed",
  exceed: "exceed",
  succeed: "succeed",
};

const VOWELS = new Set(["a", "e", "i", "o", "u"]);

/**
 * Stems one English word with the Porter algorithm exactly as NLTK 3.8's
 * `PorterStemmer().stem(word)` does (mode NLTK_EXTENSIONS), including NLTK's
 * irregular forms and its departures from the published algorithm. The word
 * is lowercased first.
 *
 * @example
 * ```ts
 * import { porterStem } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(porterStem("meetings"), "meet");
 * assert.equal(porterStem("dying"), "die");
 * assert.equal(porterStem("generalization"), "gener");
 * ```
 */
export function porterStem(word: string): string {
  // The pool is looked up with the word as given and its keys are lowercase.
  if (Object.hasOwn(IRREGULAR_FORMS, word)) return IRREGULAR_FORMS[word];
  const lower = word.toLowerCase();
  // NLTK measures length in code points, before lowercasing.
  if ([...word].length <= 2) return lower;
  let stem = step1a(lower);
  stem = step1b(stem);
  stem = step1c(stem);
  stem = step2(stem);
  stem = step3(stem);
  stem = step4(stem);
  stem = step5a(stem);
  return step5b(stem);
}

// Porter's definition: a, e, i, o, u are vowels; y is a vowel after a
// consonant and a consonant at the start or after a vowel.
function isConsonant(word: string, i: number): boolean {
  const ch = word[i];
  if (VOWELS.has(ch)) return false;
  if (ch === "y") return i === 0 ? true : !isConsonant(word, i - 1);
  return true;
}

// m in [C](VC)^m[V]: the number of vowel-to-consonant transitions.
function measure(stem: string): number {
  let m = 0;
  for (let i = 1; i < stem.length; i++) {
    if (!isConsonant(stem, i - 1) && isConsonant(stem, i)) m++;
  }
  return m;
}

function hasPositiveMeasure(stem: string): boolean {
  return measure(stem) > 0;
}

function containsVowel(stem: string): boolean {
  for (let i = 0; i < stem.length; i++) {
    if (!isConsonant(stem, i)) return true;
  }
  return false;
}

// Condition *d.
function endsDoubleConsonant(word: string): boolean {
  const n = word.length;
  return n >= 2 && word[n - 1] === word[n - 2] && isConsonant(word, n - 1);
}

// Condition *o, with NLTK's extra case of a two-letter vowel+consonant stem.
function endsCvc(word: string): boolean {
  const n = word.length;
  if (n === 2) return !isConsonant(word, 0) && isConsonant(word, 1);
  return n >= 3 && isConsonant(word, n - 3) && !isConsonant(word, n - 2) &&
    isConsonant(word, n - 1) && !"wxy".includes(word[n - 1]);
}

function applyRuleList(word: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (!word.endsWith(suffix)) continue;
    const stem = word.slice(0, word.length - suffix.length);
    return condition === null || condition(stem) ? stem + replacement : word;
  }
  return word;
}

function step1a(word: string): string {
  if (word.endsWith("ies") && word.length === 4) return word.slice(0, -3) + "ie";
  return applyRuleList(word, [
    ["sses", "ss", null],
    ["ies", "i", null],
    ["ss", "ss", null],
    ["s", "", null],
  ]);
}

function step1b(word: string): string {
  if (word.endsWith("ied")) return word.slice(0, -3) + (word.length === 4 ? "ie" : "i");
  if (word.endsWith("eed")) {
    const stem = word.slice(0, -3);
    return measure(stem) > 0 ? stem + "ee" : word;
  }
  let stem: string | undefined;
  for (const suffix of ["ed", "ing"]) {
    if (word.endsWith(suffix) && containsVowel(word.slice(0, -suffix.length))) {
      stem = word.slice(0, -suffix.length);
      break;
    }
  }
  if (stem === undefined) return word;
  if (stem.endsWith("at") || stem.endsWith("bl") || stem.endsWith("iz")) return stem + "e";
  // NLTK's rule list stops at the double-consonant rule whenever *d holds,
  // even when it keeps the pair (l, s, z), so "-e" is never added after one.
  if (endsDoubleConsonant(stem)) {
    return "lsz".includes(stem[stem.length - 1]) ? stem : stem.slice(0, -1);
  }
  return measure(stem) === 1 && endsCvc(stem) ? stem + "e" : stem;
}

function step1c(word: string): string {
  return applyRuleList(word, [
    ["y", "i", (stem) => stem.length > 1 && isConsonant(stem, stem.length - 1)],
  ]);
}

function step2(word: string): string {
  if (word.endsWith("alli") && hasPositiveMeasure(word.slice(0, -4))) {
    return step2(word.slice(0, -4) + "al");
  }
  const m0 = hasPositiveMeasure;
  return applyRuleList(word, [
    ["ational", "ate", m0],
    ["tional", "tion", m0],
    ["enci", "ence", m0],
    ["anci", "ance", m0],
    ["izer", "ize", m0],
    ["bli", "ble", m0],
    ["alli", "al", m0],
    ["entli", "ent", m0],
    ["eli", "e", m0],
    ["ousli", "ous", m0],
    ["ization", "ize", m0],
    ["ation", "ate", m0],
    ["ator", "ate", m0],
    ["alism", "al", m0],
    ["iveness", "ive", m0],
    ["fulness", "ful", m0],
    ["ousness", "ous", m0],
    ["aliti", "al", m0],
    ["iviti", "ive", m0],
    ["biliti", "ble", m0],
    ["fulli", "ful", m0],
    // The "l" of "logi" stays with the stem for the measure.
    ["logi", "log", () => hasPositiveMeasure(word.slice(0, -3))],
  ]);
}

function step3(word: string): string {
  const m0 = hasPositiveMeasure;
  return applyRuleList(word, [
    ["icate", "ic", m0],
    ["ative", "", m0],
    ["alize", "al", m0],
    ["iciti", "ic", m0],
    ["ical", "ic", m0],
    ["ful", "", m0],
    ["ness", "", m0],
  ]);
}

function step4(word: string): string {
  const m1 = (stem: string) => measure(stem) > 1;
  return applyRuleList(word, [
    ["al", "", m1],
    ["ance", "", m1],
    ["ence", "", m1],
    ["er", "", m1],
    ["ic", "", m1],
    ["able", "", m1],
    ["ible", "", m1],
    ["ant", "", m1],
    ["ement", "", m1],
    ["ment", "", m1],
    ["ent", "", m1],
    ["ion", "", (stem) => measure(stem) > 1 && "st".includes(stem[stem.length - 1])],
    ["ou", "", m1],
    ["ism", "", m1],
    ["ate", "", m1],
    ["iti", "", m1],
    ["ous", "", m1],
    ["ive", "", m1],
    ["ize", "", m1],
  ]);
}

// Both (m>1) E -> and (m=1 and not *o) E -> are tried, unlike a rule list.
function step5a(word: string): string {
  if (!word.endsWith("e")) return word;
  const stem = word.slice(0, -1);
  const m = measure(stem);
  return m > 1 || (m === 1 && !endsCvc(stem)) ? stem : word;
}

function step5b(word: string): string {
  return applyRuleList(word, [["ll", "l", () => measure(word.slice(0, -1)) > 1]]);
}
