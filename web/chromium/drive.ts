/**
 * Drives the demo page in headless Chromium through the DevTools protocol (puppeteer-core) for
 * tests/web/browser_test.ts, which runs it as a child process: it has its own config and lockfile
 * (web/chromium/deno.json, deno.lock) so that deno.lock keeps only the library's packages and a
 * fresh `deno task train` downloads nothing of the browser's.
 *
 * `deno run --config web/chromium/deno.json -A web/chromium/drive.ts URL CHROMIUM DOWNLOADS
 * SCREENSHOT SETTINGS_JSON`: opens URL, waits for the page to start, fills the form with
 * SETTINGS_JSON (`{"steps": 6, …}`: input id → value; held-out tasks unchecked), trains, generates,
 * clicks every download link (files land in DOWNLOADS), writes a full-page PNG to SCREENSHOT and
 * prints one JSON line: the page's `window.whet`. Failures exit 1 with the reason on stderr. With
 * SETTINGS_JSON `no-webgpu` it opens the page in a Chromium without WebGPU and prints the state and
 * the message the page shows instead.
 *
 * Chromium's flags: `--enable-unsafe-webgpu` (WebGPU is off on Linux by default; without a GPU it
 * runs on SwiftShader, the only adapter offered: `--enable-features=Vulkan`,
 * `--use-angle=swiftshader` and `--use-webgpu-adapter=swiftshader` give the same one) and
 * `--no-sandbox` (CI runs as root, where Chromium's sandbox refuses to start).
 *
 * @module
 */

// deno-lint-ignore no-import-prefix
import puppeteer from "npm:puppeteer-core@25.19.0";

const [url, executable, downloads, screenshot, settingsJson] = Deno.args;
if (!settingsJson) {
  console.error("usage: drive.ts URL CHROMIUM DOWNLOADS SCREENSHOT SETTINGS_JSON");
  Deno.exit(2);
}
/** "no-webgpu": only open the page in a Chromium without WebGPU and report what it shows. */
const noWebGpu = settingsJson === "no-webgpu";
const settings: Record<string, string | number> = noWebGpu ? {} : JSON.parse(settingsJson);

interface PageState {
  state: string;
  error?: string;
  files: string[];
  generation?: string;
}

const browser = await puppeteer.launch({
  executablePath: executable,
  headless: true,
  args: noWebGpu ? ["--no-sandbox"] : ["--enable-unsafe-webgpu", "--no-sandbox"],
  // SwiftShader compiles whet's kernels for a minute or more on a loaded 2-core machine.
  protocolTimeout: 900_000,
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 900 });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String((e as Error).message ?? e)));
  const cdp = await page.createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
  await page.goto(url);
  const whet = (): Promise<PageState> =>
    page.evaluate(() => (globalThis as unknown as { whet: PageState }).whet);
  const waitFor = async (states: string[], seconds: number): Promise<PageState> => {
    await page.waitForFunction(
      (s: string[]) =>
        s.includes((globalThis as unknown as { whet?: PageState }).whet?.state ?? ""),
      { timeout: seconds * 1000, polling: 500 },
      states,
    );
    return await whet();
  };
  const fail = (why: string): never => {
    throw new Error(`${why}${errors.length ? ` (page errors: ${errors.join("; ")})` : ""}`);
  };

  let state = await waitFor(["ready", "error", "no-webgpu"], 600);
  if (noWebGpu) {
    const shown = await page.$eval("#error", (e) => ({
      text: e.textContent,
      hidden: (e as unknown as { hidden: boolean }).hidden,
    }));
    await page.screenshot({ path: screenshot });
    console.log(JSON.stringify({ ...state, shownError: shown }));
  } else {
    if (state.state !== "ready") fail(`the page did not start: ${state.error}`);
    for (const [id, value] of Object.entries(settings)) {
      await page.$eval(
        `#${id}`,
        (e, v) => (e as unknown as { value: string }).value = String(v),
        value,
      );
    }
    await page.$$eval(
      "input[name=heldout]",
      (es) => es.forEach((e) => (e as unknown as { checked: boolean }).checked = false),
    );
    await page.click("#train");
    state = await waitFor(["done", "error"], 900);
    if (state.state !== "done") fail(`training failed in the page: ${state.error}`);

    await page.click("#generate");
    await page.waitForFunction(
      () => typeof (globalThis as unknown as { whet: PageState }).whet.generation === "string",
      { timeout: 300_000, polling: 500 },
    );
    const shown = await page.$eval("#generation", (e) => e.textContent);
    for (const link of await page.$$("#downloads a")) await link.click();
    const names = state.files.map((f) => f.slice(f.lastIndexOf("/") + 1));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const got: string[] = [];
      for await (const e of Deno.readDir(downloads)) got.push(e.name);
      if (names.every((n) => got.includes(n))) break;
      if (Date.now() > deadline) fail(`downloads did not arrive: want ${names}, got ${got}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await Deno.mkdir(screenshot.slice(0, screenshot.lastIndexOf("/")) || ".", { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    state = await whet();
    if (errors.length > 0) fail("the page threw");
    console.log(JSON.stringify({ ...state, shownGeneration: shown }));
  }
} catch (e) {
  console.error(`drive.ts: ${(e as Error).message}`);
  Deno.exitCode = 1;
} finally {
  await browser.close();
}
