/** The one module that imports `yaml`: reads inventories and plans (YAML, or JSON, which is YAML too). */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

export class DocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentError';
  }
}

export async function readDocument(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DocumentError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return parse(text, { strict: true, uniqueKeys: true });
  } catch (err) {
    throw new DocumentError(`${path}: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
}
