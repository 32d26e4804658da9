/** What the Kamal loader's tests share: a minimal deploy.yml, its errors, an app directory of files. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { normalizeKamalConfig } from "../../../kamal/config";

export const minimal = { service: "hey", image: "acme/hey", servers: ["10.0.0.1"] };

export function errorsOf(doc: Record<string, unknown>): string {
  try {
    normalizeKamalConfig(doc);
  } catch (e) {
    return (e as Error).message;
  }
  return "(no error)";
}

/** An app directory with config/deploy.yml (and more files). */
export function app(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kamal-"));
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), content);
  }
  return dir;
}
