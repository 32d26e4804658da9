/**
 * Recorded CLI outputs from basecamp/kamal test/secrets/gcp_secret_manager_adapter_test.rb at commit eee0083b38661c3707c6b6052cc89e85038a096c (the vendor's documented JSON formats).
 *
 * The GCP Secret Manager adapter, as Kamal 2.12's `gcp_secret_manager`: the calls it makes
 * (argv pinned by the fake CLI) and the map it returns.
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { GcpSecretManager } from "../../../kamal/vault/gcpSecretManager";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const installed: FakeCall = { argv: ["--version"], stdout: "Google Cloud SDK 500.0.0\n" };
const authenticated: FakeCall = { argv: ["auth", "list", "--format=json"], stdout: JSON.stringify([{ account: "email@example.com", status: "ACTIVE" }], null, 2) };

const version = (data: string, dataCrc32c: string, name = "projects/000000001/secrets/item1/versions/1") => JSON.stringify({ name, payload: { data, dataCrc32c } }, null, 2);
const mypassword: FakeCall = {
  argv: ["secrets", "versions", "access", "latest", "--secret=mypassword", "--format=json"],
  stdout: version("c2VjcmV0MTIz", "2522602764", "projects/000000000/secrets/mypassword/versions/1"),
};
const payloads = [
  { data: "c2VjcmV0MQ==", checksum: "1846998209" },
  { data: "c2VjcmV0Mg==", checksum: "2101741365" },
  { data: "c2VjcmV0Mw==", checksum: "2402124854" },
];

/** The access call for item n+1 (secret1, secret2, secret3), with Kamal's option order. */
function item(n: number, o: { project?: string; version?: string; account?: string; impersonate?: string } = {}): FakeCall {
  const argv = ["secrets", "versions", "access", o.version ?? "latest", `--secret=item${n + 1}`];
  if (o.project) argv.push(`--project=${o.project}`);
  if (o.account) argv.push(`--account=${o.account}`);
  if (o.impersonate) argv.push(`--impersonate-service-account=${o.impersonate}`);
  argv.push("--format=json");
  return { argv, stdout: version(payloads[n].data, payloads[n].checksum) };
}

function gcloud(calls: FakeCall[]) {
  const f = fakeClis({ gcloud: calls });
  return { f, vault: new GcpSecretManager(vendorCli(f.env())) };
}

const call = (c: FakeCall) => ["gcloud", ...c.argv].join(" ");

describe("GcpSecretManager", () => {
  it("fetches from the default project, latest version", () => {
    const { f, vault } = gcloud([installed, authenticated, mypassword]);
    expect(vault.fetch(["mypassword"], { account: "default" })).toEqual({ "default/mypassword": "secret123" });
    expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", call(mypassword)]);
  });

  it("signs in when no account is credentialed, and fails when still none is", () => {
    const { f, vault } = gcloud([installed, mypassword, { argv: ["auth", "list", "--format=json"], stdout: "[]" }, { argv: ["auth", "login"], stdout: JSON.stringify({ expired: false, valid: true }) }]);
    expect(() => vault.fetch(["mypassword"], { account: "default" })).toThrow("could not login to gcloud");
    expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", "gcloud auth login", "gcloud auth list --format=json"]);
  });

  it("takes the project from --from", () => {
    const calls = [0, 1, 2].map((n) => item(n, { project: "other-project" }));
    const { f, vault } = gcloud([installed, authenticated, ...calls]);
    expect(vault.fetch(["item1", "item2", "item3"], { account: "default", from: "other-project" })).toEqual({
      "other-project/item1": "secret1",
      "other-project/item2": "secret2",
      "other-project/item3": "secret3",
    });
    expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", ...calls.map(call)]);
  });

  it("fetches from several projects", () => {
    const calls = [item(0, { project: "some-project" }), item(1, { project: "project-confidence" }), item(2, { project: "manhattan-project" })];
    const { f, vault } = gcloud([installed, authenticated, ...calls]);
    expect(vault.fetch(["some-project/item1", "project-confidence/item2", "manhattan-project/item3"], { account: "default" })).toEqual({
      "some-project/item1": "secret1",
      "project-confidence/item2": "secret2",
      "manhattan-project/item3": "secret3",
    });
    expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", ...calls.map(call)]);
  });

  it("fetches a specific version, keyed without it", () => {
    const access = item(0, { project: "some-project", version: "123" });
    const { f, vault } = gcloud([installed, authenticated, access]);
    expect(vault.fetch(["some-project/item1/123"], { account: "default" })).toEqual({ "some-project/item1": "secret1" });
    expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", call(access)]);
  });

  it("reads a version relative to --from, and the default project by name", () => {
    const calls = [item(0, { project: "some-project", version: "123" }), item(1)];
    const { f, vault } = gcloud([installed, authenticated, ...calls]);
    expect(vault.fetch(["item1/123"], { account: "default", from: "some-project" })).toEqual({ "some-project/item1": "secret1" });
    expect(vault.fetch(["default/item2/latest"], { account: "default" })).toEqual({ "default/item2": "secret2" });
    expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", call(calls[0]), "gcloud --version", "gcloud auth list --format=json", call(calls[1])]);
  });

  const accounts: [string, string, { account?: string; impersonate?: string }][] = [
    ["a non-default account", "email@example.com", { account: "email@example.com" }],
    ["service account impersonation", "default|service-user@example.com", { impersonate: "service-user@example.com" }],
    ["a delegation chain and a specific user", "user@example.com|service-user@example.com,service-user2@example.com", { account: "user@example.com", impersonate: "service-user@example.com,service-user2@example.com" }],
    ["a non-default account and service account impersonation", "email@example.com|service-user@example.com", { account: "email@example.com", impersonate: "service-user@example.com" }],
  ];
  for (const [what, account, options] of accounts) {
    it(`fetches with ${what}`, () => {
      const access = item(0, { project: "some-project", version: "123", ...options });
      const { f, vault } = gcloud([installed, authenticated, access]);
      expect(vault.fetch(["some-project/item1/123"], { account })).toEqual({ "some-project/item1": "secret1" });
      expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", call(access)]);
    });
  }

  it("fails naming the secret when it cannot be read", () => {
    const { f, vault } = gcloud([installed, authenticated, { argv: ["secrets", "versions", "access", "latest", "--secret=item1", "--project=some-project", "--format=json"], status: 1 }]);
    expect(() => vault.fetch(["some-project/item1"], { account: "default" })).toThrow("Could not read some-project/item1 from Google Secret Manager");
    expect(f.calls()).toEqual(["gcloud --version", "gcloud auth list --format=json", "gcloud secrets versions access latest --secret=item1 --project=some-project --format=json"]);
  });

  it("decodes gcloud's URL-safe base64 payloads", () => {
    const access: FakeCall = { argv: ["secrets", "versions", "access", "latest", "--secret=item1", "--format=json"], stdout: version("Pz8-Pz8_", "0") };
    const { vault } = gcloud([installed, authenticated, access]);
    expect(vault.fetch(["item1"], { account: "default" })).toEqual({ "default/item1": "??>???" });
  });

  it("fails when the CLI is not installed", () => {
    const { f, vault } = gcloud([{ argv: ["--version"], status: 1 }]);
    expect(() => vault.fetch(["item1"], { account: "default" })).toThrow("gcloud CLI is not installed");
    expect(f.calls()).toEqual(["gcloud --version"]);
  });

  it("requires --account", () => {
    const { f, vault } = gcloud([installed, authenticated]);
    expect(vault.requiresAccount).toBe(true);
    expect(() => vault.fetch(["item1"])).toThrow("Missing required option '--account'");
    expect(f.calls()).toEqual([]);
  });
});
