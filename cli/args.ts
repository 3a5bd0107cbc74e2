/**
 * Command-line parsing for `train` and `compare`: a config file, flags, and any number of
 * `--section.key=value` overrides (checked later against the config's typed defaults).
 *
 * @module
 */

/** What {@linkcode parseRunArgs} found. */
export interface RunArgs {
  /** A YAML config file, or undefined for the defaults. */
  config?: string;
  /** `--resume`. */
  resume: boolean;
  /** `--help` / `-h`. */
  help: boolean;
  /** `--key=value` overrides, in order. */
  overrides: string[];
  /** Extra flags a command declared (name → value). */
  flags: Record<string, string>;
}

/**
 * Parses `[config.yaml] [--config FILE] [--resume] [--key=value …]`, plus `extra` flags of the
 * form `--name=value`. Anything else is an error naming the argument.
 */
export function parseRunArgs(args: readonly string[], extra: readonly string[] = []): RunArgs {
  const out: RunArgs = { resume: false, help: false, overrides: [], flags: {} };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") out.help = true;
    else if (a === "--resume") out.resume = true;
    else if (a === "--config") {
      if (i + 1 >= args.length) throw new Error("Cannot parse arguments: --config needs a file");
      out.config = args[++i];
    } else if (a.startsWith("--config=")) out.config = a.slice(9);
    else if (!a.startsWith("-") && /\.ya?ml$/.test(a) && out.config === undefined) out.config = a;
    else if (/^--[A-Za-z0-9_.-]+=/.test(a)) {
      const name = a.slice(2, a.indexOf("="));
      if (extra.includes(name)) out.flags[name] = a.slice(a.indexOf("=") + 1);
      else out.overrides.push(a);
    } else if (
      /^--[A-Za-z0-9_.-]+$/.test(a) && i + 1 < args.length && !args[i + 1].startsWith("--")
    ) {
      // `--model dir` is accepted as `--model=dir`.
      const name = a.slice(2);
      if (extra.includes(name)) out.flags[name] = args[++i];
      else out.overrides.push(`${a}=${args[++i]}`);
    } else {
      throw new Error(
        `Cannot parse argument "${a}": expected a .yaml config, --resume, or --key=value (see --help)`,
      );
    }
  }
  return out;
}
