/**
 * Vault secrets against a real AWS Secrets Manager API: the real AWS CLI (`aws
 * secretsmanager batch-get-secret-value`, as Kamal's aws_secrets_manager adapter calls it)
 * talking to moto_server, both installed by the toolchain (scripts/toolchain/aws.sh). A
 * Kamal 2 secrets file fetches once and extracts each secret, as Kamal's docs show; the CLI's
 * `secrets fetch|extract|print` give Kamal's output.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretsFiles } from "../../kamal/secrets";
import { runCli } from "../helpers/cli";
import { app } from "../unit/kamal/fixtures";

const bin = process.env.KP_AWS_BIN;
let server: ChildProcess | undefined;
let env: Record<string, string | undefined>;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function aws(...args: string[]): string {
  const r = spawnSync(path.join(bin!, "aws"), args, { env: env as NodeJS.ProcessEnv, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`aws ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  if (!bin) throw new Error("KP_AWS_BIN is not set: run the tests through npm test (scripts/setup.sh installs the AWS CLI and moto)");
  const port = await freePort();
  server = spawn(path.join(bin, "moto_server"), ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  // The user's AWS settings, as a profile: region, credentials and the endpoint.
  const home = mkdtempSync(path.join(os.tmpdir(), "aws-"));
  writeFileSync(path.join(home, "config"), `[default]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:${port}\n`);
  writeFileSync(path.join(home, "credentials"), "[default]\naws_access_key_id = test\naws_secret_access_key = test\n");
  env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, AWS_CONFIG_FILE: path.join(home, "config"), AWS_SHARED_CREDENTIALS_FILE: path.join(home, "credentials") };
  for (let i = 0; ; i++) {
    try {
      aws("secretsmanager", "list-secrets");
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  aws("secretsmanager", "create-secret", "--name", "myapp/KAMAL_REGISTRY_PASSWORD", "--secret-string", "r3gistry-pass");
  aws("secretsmanager", "create-secret", "--name", "myapp/RAILS_MASTER_KEY", "--secret-string", "0123456789abcdef");
  aws("secretsmanager", "create-secret", "--name", "myapp/config", "--secret-string", JSON.stringify({ DATABASE_PASSWORD: "db p4ss", PORT: 5432, DOLLAR: "pa$word" }));
});

afterAll(() => server?.kill());

describe("vault secrets through the AWS CLI and a running Secrets Manager API", () => {
  const secretsFile = [
    "SECRETS=$(kamal secrets fetch --adapter aws_secrets_manager --account default --from myapp KAMAL_REGISTRY_PASSWORD RAILS_MASTER_KEY)",
    "KAMAL_REGISTRY_PASSWORD=$(kamal secrets extract KAMAL_REGISTRY_PASSWORD $SECRETS)",
    "RAILS_MASTER_KEY=$(kamal secrets extract RAILS_MASTER_KEY ${SECRETS})",
    "CONFIG=$(kamal secrets fetch --adapter aws_secrets_manager myapp/config)",
    "DATABASE_PASSWORD=$(kamal secrets extract DATABASE_PASSWORD $CONFIG)",
    "PORT=$(kamal secrets extract PORT $CONFIG)",
    "DOLLAR=$(kamal secrets extract DOLLAR $CONFIG)",
    "MISSING=$(kamal secrets fetch --adapter aws_secrets_manager --from myapp NOPE)",
  ].join("\n");

  it("resolves a Kamal 2 secrets file as Kamal does: one fetch per line, each secret extracted", () => {
    const files = new SecretsFiles({ appRoot: app({ ".kamal/secrets": secretsFile }), kamal: 2, env });
    expect(files.get("KAMAL_REGISTRY_PASSWORD")).toBe("r3gistry-pass");
    expect(files.get("RAILS_MASTER_KEY")).toBe("0123456789abcdef");
    expect(files.get("DATABASE_PASSWORD")).toBe("db p4ss");
    expect(files.get("PORT")).toBe("5432");
    // As in Kamal: a fetched value passes through dotenv's variable substitution, so "$word"
    // (unset) is dropped; a value with "$" needs its own line, e.g. `DOLLAR='…'`.
    expect(files.get("DOLLAR")).toBe("pa");
    expect(() => files.get("MISSING")).toThrow(".kamal/secrets:8: MISSING: kamal secrets fetch: myapp/NOPE: Secrets Manager can't find the specified secret.");
  });

  it("pulumi-kamal secrets fetch, extract and print: Kamal's arguments and output", async () => {
    const dir = app({ ".kamal/secrets": secretsFile.split("\n").slice(0, 3).join("\n"), "config/deploy.yml": "service: vaulted\nimage: acme/vaulted\nservers: [10.0.0.1]\nproxy: {}\nregistry:\n  server: ghcr.io\n  username: acme\n  password: [KAMAL_REGISTRY_PASSWORD]\n" });
    const fetched = await runCli(["secrets", "fetch", "--adapter", "aws_secrets_manager", "--from", "myapp", "KAMAL_REGISTRY_PASSWORD", "RAILS_MASTER_KEY"], { dir, env });
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(fetched.stdout).toBe('{"myapp/KAMAL_REGISTRY_PASSWORD":"r3gistry-pass","myapp/RAILS_MASTER_KEY":"0123456789abcdef"}\n');
    const extracted = await runCli(["secrets", "extract", "RAILS_MASTER_KEY", fetched.stdout.trim()], { dir, env });
    expect(extracted.stdout).toBe("0123456789abcdef\n");
    const printed = await runCli(["secrets", "print"], { dir, env });
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout.split("\n")[0]).toMatch(/^SECRETS=\\\{\\"myapp\/KAMAL_REGISTRY_PASSWORD\\":/);
    expect(printed.stdout.split("\n").slice(1)).toEqual(["KAMAL_REGISTRY_PASSWORD=r3gistry-pass", "RAILS_MASTER_KEY=0123456789abcdef", ""]);
    const noCli = await runCli(["secrets", "fetch", "-a", "aws_secrets_manager", "X"], { dir, env: { ...env, PATH: "/usr/bin:/bin" } });
    expect([noCli.code, noCli.stderr]).toEqual([1, "pulumi-kamal secrets: AWS CLI is not installed\n"]);
  });
});
