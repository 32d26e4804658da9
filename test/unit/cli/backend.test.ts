/** Backends, secrets providers, the engine's lock and backend failures as the CLI reads them;
 * Pulumi.yaml's backend rewritten; the deployer's own SSH key. */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { describe, expect, it } from "vitest";
import { backendEnv, backendFailure, backendName, leftByDeadProcess, lockedMessage, parseBackend, parseSecretsProvider, stackLocks } from "../../../cli/backend";
import { withDeployerKey } from "../../../cli/remote";
import { withBackend } from "../../../cli/stateMove";
import { summaryCounts } from "../../../cli/engine";
import { fileRoot } from "../../../cli/blobStore";
import type { SshConnectionConfig } from "../../../provider/config/values";

describe("backend URLs", () => {
  it("takes Pulumi's backends, a file backend being one machine's", () => {
    expect(parseBackend("file://./.kamal/pulumi/state")).toEqual({ url: "file://./.kamal/pulumi/state", kind: "file", shared: false });
    expect(parseBackend("s3://team-state/shop?endpoint=http://10.0.0.4:8333&region=us-east-1&s3ForcePathStyle=true")).toMatchObject({ kind: "s3", shared: true });
    expect(parseBackend("gs://team-state")).toMatchObject({ kind: "gs", shared: true });
    expect(parseBackend("azblob://state/shop")).toMatchObject({ kind: "azblob", shared: true });
    expect(parseBackend("https://api.pulumi.com")).toMatchObject({ kind: "cloud", shared: true });
    expect(backendName(parseBackend("s3://team-state/shop?endpoint=http://10.0.0.4:8333"))).toBe("s3://team-state/shop");
  });

  it("refuses what Pulumi cannot use, naming the option and never the value", () => {
    expect(() => parseBackend("ftp://secret-host/x")).toThrow(
      "--backend: expected s3://BUCKET[/PREFIX][?endpoint=…&region=…], gs://BUCKET[/PREFIX], azblob://CONTAINER[/PREFIX], file://PATH, or https://api.pulumi.com (Pulumi Cloud)",
    );
    expect(() => parseBackend("s3://?region=x", "--to")).toThrow("--to: s3:// needs a bucket: s3://BUCKET");
    expect(() => parseBackend("s3://Team_State")).toThrow("--backend: the bucket must be an S3 bucket name (3-63 lowercase letters, digits, dots and dashes)");
    expect(() => parseBackend("file://")).toThrow("--backend: file:// needs a directory, e.g. file://~/.pulumi-state or file://./.kamal/pulumi/state");
  });

  it("resolves a file backend's directory as Pulumi does", () => {
    expect(fileRoot("file://./.kamal/pulumi/state", "/srv/shop")).toBe("/srv/shop/.kamal/pulumi/state");
    expect(fileRoot("file://~/state", "/srv/shop")).toBe(`${os.homedir()}/state`);
    expect(fileRoot("file:///var/state", "/srv/shop")).toBe("/var/state");
  });

  it("chooses the secrets provider with the backend", () => {
    const s3 = parseBackend("s3://team-state");
    expect(parseSecretsProvider(undefined, s3)).toBe("passphrase");
    expect(parseSecretsProvider(undefined, parseBackend("https://api.pulumi.com"))).toBe("default");
    expect(parseSecretsProvider("awskms://alias/team?region=us-east-1", s3)).toBe("awskms://alias/team?region=us-east-1");
    expect(() => parseSecretsProvider("default", s3)).toThrow('--secrets-provider: "default" is Pulumi Cloud\'s; with a s3:// backend use passphrase or a KMS key (awskms://, gcpkms://, azurekeyvault://, hashivault://)');
    expect(() => parseSecretsProvider("vault", s3)).toThrow("--secrets-provider: expected passphrase, default (Pulumi Cloud) or a KMS key URL (awskms://…, gcpkms://…, azurekeyvault://…, hashivault://…)");
  });

  it("quiets the AWS SDK's checksum warnings only for S3-compatible servers", () => {
    const saved = process.env.AWS_RESPONSE_CHECKSUM_VALIDATION;
    delete process.env.AWS_RESPONSE_CHECKSUM_VALIDATION;
    try {
      expect(backendEnv("s3://team-state?endpoint=http://10.0.0.4:8333")).toEqual({ AWS_RESPONSE_CHECKSUM_VALIDATION: "when_required" });
      expect(backendEnv("s3://team-state?region=eu-west-1")).toEqual({});
      expect(backendEnv("file://./state")).toEqual({});
    } finally {
      if (saved !== undefined) process.env.AWS_RESPONSE_CHECKSUM_VALIDATION = saved;
    }
  });

  it("rewrites Pulumi.yaml's backend, the rest of the file as it was", () => {
    const before = "name: shop\n# where the state is\nbackend:\n  url: file://./.kamal/pulumi/state\nmain: .kamal/pulumi/index.js\n";
    expect(withBackend(before, "s3://team-state/shop?endpoint=http://10.0.0.4:8333&region=us-east-1")).toBe(
      "name: shop\n# where the state is\nbackend:\n  url: s3://team-state/shop?endpoint=http://10.0.0.4:8333&region=us-east-1\nmain: .kamal/pulumi/index.js\n",
    );
  });
});

describe("the engine's refusals, said to a deployer", () => {
  const refusal = [
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.",
    "  s3://kp-state/x/.pulumi/locks/organization/shop/production/120dddda.json?endpoint=http%3A%2F%2F10.213.0.4%3A8333: created by ci@runner-7 (pid 31188) at 2026-12-05T11:56:27Z",
  ].join("\n");

  it("reads who holds the stack's lock", () => {
    expect(stackLocks(refusal)).toEqual([{ user: "ci", host: "runner-7", pid: 31188, at: "2026-12-05T11:56:27Z" }]);
    expect(stackLocks("error: update failed")).toBeUndefined();
  });

  it("says who holds it and what to do", () => {
    expect(lockedMessage("production", stackLocks(refusal)!)).toBe(
      "stack production is being changed by ci@runner-7 (pid 31188) since 2026-12-05T11:56:27Z: its backend holds the stack's lock, so this deploy did not start (nothing changed).\n" +
        "Wait for that deploy to end and run this again. If it is gone (killed, its machine lost), clear the lock with `pulumi-kamal unlock` and deploy again: the next deploy converges.",
    );
  });

  it("clears by itself only a lock of this machine whose process is gone", () => {
    expect(leftByDeadProcess({ user: "me", host: os.hostname(), pid: process.pid, at: "" })).toBe(false);
    expect(leftByDeadProcess({ user: "me", host: `${os.hostname()}-other`, pid: 2 ** 22 + 17, at: "" })).toBe(false);
    expect(leftByDeadProcess({ user: "me", host: os.hostname(), pid: 2 ** 22 + 17, at: "" })).toBe(true);
  });

  it("names the backend when it failed, never a URL's query", () => {
    const text =
      'error: post-step event returned an error: failed to save snapshot: blob (key ".pulumi/stacks/shop/production.json") (code=Unknown): operation error S3: PutObject, exceeded maximum number of attempts, 3, request send failed, Put "http://10.213.0.4:8333/kp-state/x/.pulumi/stacks/shop/production.json?x-id=PutObject": dial tcp 10.213.0.4:8333: connect: connection refused';
    expect(backendFailure(text, "s3://kp-state/x?endpoint=http://10.213.0.4:8333")).toBe(
      "the state backend s3://kp-state/x failed (dial tcp 10.213.0.4:8333: connect: connection refused): the update stopped there.\n" +
        "The hosts run what the update had done by then (pulumi-kamal details shows it); the state keeps what it last saved.\n" +
        "Once the backend answers, deploy again: any lock this update left is cleared (from another machine: pulumi-kamal unlock first), the hosts are read, and the deploy converges.",
    );
    expect(backendFailure("error: app1: starting shop-web-v2: exit 125", "s3://kp-state/x")).toBeUndefined();
  });
});

describe("the deployer's own SSH key", () => {
  const fromState = { host: "10.0.0.5", port: 22, user: "deploy", privateKeyPath: "/home/alice/.ssh/id_ed25519", agent: true, proxy: { host: "bastion", port: 22, user: "deploy", privateKeyPath: "/home/alice/.ssh/id_ed25519" } } as unknown as SshConnectionConfig;

  it("replaces the key the state recorded (whoever deployed last) when PULUMI_KAMAL_SSH_KEY is set, for the host and its jump host", () => {
    // Only passed along, never parsed here: any text stands for the key.
    const keyText = `ci-secret-${randomBytes(6).toString("hex")}`;
    const c = withDeployerKey(fromState, { PULUMI_KAMAL_SSH_KEY: keyText });
    expect(c).toMatchObject({ host: "10.0.0.5", privateKey: keyText, privateKeyPath: undefined, agent: undefined });
    expect(c.proxy).toMatchObject({ host: "bastion", privateKey: keyText, privateKeyPath: undefined });
    expect(withDeployerKey(fromState, {})).toBe(fromState);
  });
});

describe("an update's result for scripts", () => {
  it("counts the engine's closing summary by outcome", () => {
    expect(summaryCounts(["Resources:", "    + 1 created", "    ~ 2 updated", "    - 1 deleted", "    +-1 replaced", "    6 unchanged", "Duration: 4s"])).toEqual({ created: 1, updated: 2, deleted: 1, replaced: 1, unchanged: 6 });
    expect(summaryCounts(["Resources:", "    + 1 to create", "    ~ 2 to update", "    8 unchanged"])).toEqual({ "to create": 1, "to update": 2, unchanged: 8 });
  });
});
