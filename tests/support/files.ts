/**
 * Test support: files on disk as the tests look at them.
 *
 * @module
 */

/** The sorted names in `dir`. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** The bytes of `path`, or no bytes when there is no such file. */
export async function readOrEmpty(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Uint8Array();
    throw e;
  }
}
