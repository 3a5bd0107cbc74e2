/**
 * File access behind one interface (Deno's file system under Deno, `fetch` and memory in a
 * browser), so that the rest of the library runs unchanged in both.
 *
 * @module
 */
export {
  baseName,
  type DirEntry,
  dirOf,
  type FileInfo,
  type Files,
  files,
  joinPath,
  type OpenedFile,
  setFiles,
} from "./files.ts";
export { BrowserFiles } from "./browser_files.ts";
