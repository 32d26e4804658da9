/**
 * Bitwarden Secrets Manager (`--adapter bitwarden-sm`) against a fake `bws` that answers only
 * the command lines Kamal's adapter runs. Recorded CLI outputs from basecamp/kamal
 * test/secrets/bitwarden_secrets_manager_adapter_test.rb at commit
 * eee0083b38661c3707c6b6052cc89e85038a096c (the vendor's documented JSON formats).
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { secretsCommand } from "../../../kamal/vault/commands";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const secret = (key: string, value: string) => ({ object: "secret", id: `uuid-${key}`, organizationId: "org", projectId: "project", key, value, note: "", creationDate: "2024-12-17T14:25:14.193000Z", revisionDate: "2024-12-17T14:25:14.193000Z" });
const installed: FakeCall = { argv: ["--version"], stdout: "bws 1.0.0\n" };
const authed: FakeCall = { argv: ["project", "list"], stdout: "[]" };
const fetch = (calls: FakeCall[], ...args: string[]) => {
  const f = fakeClis({ bws: calls });
  return { f, out: () => JSON.parse(secretsCommand(["fetch", "--adapter", "bitwarden-sm", ...args], vendorCli(f.env()))) as Record<string, string> };
};

describe("Bitwarden Secrets Manager", () => {
  it("all, a project's all, or secrets by id, keyed by each secret's key; no account needed", () => {
    const all = fetch([installed, authed, { argv: ["secret", "list"], stdout: JSON.stringify([secret("KAMAL_REGISTRY_PASSWORD", "some_password"), secret("MY_OTHER_SECRET", "my=wierd\"secret")]) }], "all");
    expect(all.out()).toEqual({ KAMAL_REGISTRY_PASSWORD: "some_password", MY_OTHER_SECRET: 'my=wierd"secret' });
    expect(all.f.calls()).toEqual(["bws --version", "bws project list", "bws secret list"]);
    expect(fetch([installed, authed, { argv: ["secret", "list", "82aeb5bd-6958-4a89-8197-eacab758acce"], stdout: JSON.stringify([secret("A", "a")]) }], "82aeb5bd-6958-4a89-8197-eacab758acce/all").out()).toEqual({ A: "a" });
    const byId = fetch([installed, authed, { argv: ["secret", "get", "uuid-1"], stdout: JSON.stringify(secret("A", "a")) }, { argv: ["secret", "get", "uuid-2"], stdout: JSON.stringify(secret("B", "b")) }], "uuid-1", "uuid-2");
    expect(byId.out()).toEqual({ A: "a", B: "b" });
  });

  it("its errors, in Kamal's words", () => {
    expect(fetch([installed, authed]).out).toThrow("You must specify what to retrieve from Bitwarden Secrets Manager");
    expect(fetch([installed, { ...authed, status: 1 }], "all").out).toThrow("Could not authenticate to Bitwarden Secrets Manager. Did you set a valid access token?");
    expect(fetch([installed, authed, { argv: ["secret", "list"], status: 1 }], "all").out).toThrow("Could not read secrets from Bitwarden Secrets Manager");
    expect(fetch([installed, authed, { argv: ["secret", "get", "uuid-1"], status: 1 }], "uuid-1").out).toThrow("Could not read uuid-1 from Bitwarden Secrets Manager");
    expect(fetch([{ ...installed, status: 1 }], "all").out).toThrow("Bitwarden Secrets Manager CLI is not installed");
  });
});
