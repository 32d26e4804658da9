/**
 * The objects of a DIY backend (Pulumi's file and S3 backends lay a stack's checkpoint, its
 * history and its backups out as files under `.pulumi/`), read and written as they are:
 * what `state move` copies so that a stack keeps its history in its new backend.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Backend } from "./backend";
import { UsageError } from "./usage";

export interface BlobStore {
  /** Where it is, for messages (no query: nothing secret). */
  readonly name: string;
  /** Every key under the prefix (keys are "/"-separated, relative to the backend's root). */
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<Buffer>;
  put(key: string, body: Buffer): Promise<void>;
}

/** The store of a backend this command can copy objects of, or undefined (gs://, azblob://,
 * Pulumi Cloud: their stacks move by export and import, without their history). */
export async function blobStore(b: Backend, projectDir: string): Promise<BlobStore | undefined> {
  if (b.kind === "file") return new FileStore(fileRoot(b.url, projectDir), b.url);
  if (b.kind === "s3") return S3Store.of(b.url);
  return undefined;
}

/** A file backend's directory: file://./rel (the project's), file://~/rel, file:///abs. */
export function fileRoot(url: string, projectDir: string): string {
  const p = decodeURIComponent(url.slice("file://".length).split("?")[0]);
  return path.resolve(projectDir, p.replace(/^~(?=\/|$)/, os.homedir()));
}

class FileStore implements BlobStore {
  constructor(
    private readonly root: string,
    readonly name: string,
  ) {}

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = (rel: string) => {
      const abs = path.join(this.root, rel);
      if (!existsSync(abs)) return;
      if (!statSync(abs).isDirectory()) {
        if (rel.startsWith(prefix)) out.push(rel);
        return;
      }
      for (const f of readdirSync(abs)) walk(rel ? `${rel}/${f}` : f);
    };
    // Only the directories the prefix can be in are walked.
    walk(prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "");
    return out.sort();
  }

  async get(key: string): Promise<Buffer> {
    return readFileSync(path.join(this.root, key));
  }

  async put(key: string, body: Buffer): Promise<void> {
    const f = path.join(this.root, key);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, body);
  }
}

/** An S3 bucket (or an S3-compatible server's), with the settings Pulumi reads from the URL:
 * `s3://bucket/prefix?endpoint=…&region=…&s3ForcePathStyle=true&disableSSL=true`; the
 * credentials from AWS's own chain (environment, profile, SSO, instance role). */
class S3Store implements BlobStore {
  private constructor(
    private readonly client: import("@aws-sdk/client-s3").S3Client,
    private readonly sdk: typeof import("@aws-sdk/client-s3"),
    private readonly bucket: string,
    private readonly prefix: string,
    readonly name: string,
  ) {}

  static async of(url: string): Promise<S3Store> {
    const u = new URL(url);
    const q = u.searchParams;
    const insecure = q.get("disableSSL") === "true" || q.get("disable_https") === "true";
    const endpoint = q.get("endpoint") ?? undefined;
    const sdk = await import("@aws-sdk/client-s3");
    const client = new sdk.S3Client({
      region: q.get("region") ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
      endpoint: endpoint && !/^https?:\/\//.test(endpoint) ? `${insecure ? "http" : "https"}://${endpoint}` : endpoint,
      forcePathStyle: q.get("s3ForcePathStyle") === "true" || q.get("use_path_style") === "true",
      // S3-compatible servers answer without the checksums AWS adds (as Pulumi's own client).
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      ...(q.get("profile") ? { profile: q.get("profile")! } : {}),
    });
    const prefix = decodeURIComponent(u.pathname.replace(/^\/+/, ""));
    return new S3Store(client, sdk, u.hostname, prefix ? `${prefix.replace(/\/+$/, "")}/` : "", url.split("?")[0]);
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.guard(this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token })));
      for (const o of r.Contents ?? []) if (o.Key) out.push(o.Key.slice(this.prefix.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async get(key: string): Promise<Buffer> {
    const r = await this.guard(this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })));
    return Buffer.from(await r.Body!.transformToByteArray());
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.guard(this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: body })));
  }

  /** The SDK's failure said with the store's name (never the URL's query). */
  private async guard<T>(request: Promise<T>): Promise<T> {
    try {
      return await request;
    } catch (e) {
      const err = e as Error & { name?: string };
      throw new UsageError(`${this.name}: ${err.name && err.name !== "Error" ? `${err.name}: ` : ""}${err.message}`);
    }
  }
}
