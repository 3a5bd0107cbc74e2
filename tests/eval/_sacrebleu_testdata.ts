// The README example of mjpost/sacrebleu (README.md "Using SacreBLEU from Python"), also used
// by test/test_bleu.py as _hyps and _refs.

/** Two reference streams for three segments. */
export const README_REFS = [
  ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
  ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
];

/** The system output. */
export const README_SYS = [
  "The dog bit the man.",
  "It wasn't surprising.",
  "The man had just bitten him.",
];
