/** Runs `fn` with a temporary `run.yaml` holding `text`, removed afterwards. */
export async function withFile(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/run.yaml`, text);
    await fn(`${dir}/run.yaml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
