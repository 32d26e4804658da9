/**
 * Bitwarden (`--adapter bitwarden`) against a fake `bw` that answers only the command lines
 * (and BW_SESSION) Kamal's adapter runs. Recorded CLI outputs from basecamp/kamal
 * test/secrets/bitwarden_adapter_test.rb at commit eee0083b38661c3707c6b6052cc89e85038a096c
 * (the vendor's documented JSON formats).
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { secretsCommand } from "../../../kamal/vault/commands";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const status = (s: string) => JSON.stringify({ serverUrl: null, lastSync: "2024-09-04T10:11:12.433Z", userEmail: "email@example.com", userId: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", status: s });
const item = (name: string, extra: object) => JSON.stringify({ passwordHistory: null, object: "item", id: "aaaaaaaa-cccc-eeee-0000-222222222222", type: 1, name, notes: null, ...extra });
const login = (password: string | null) => ({ login: { fido2Credentials: [], uris: [], username: null, password, totp: null } });
const fields = (...f: [string, string][]) => ({ fields: f.map(([name, value]) => ({ name, value, type: 1, linkedId: null })) });
const installed: FakeCall = { argv: ["--version"], stdout: "2024.8.0\n" };
const unlocked: FakeCall = { argv: ["status"], stdout: status("unlocked") };
const sync: FakeCall = { argv: ["sync"], stdout: "" };
const fetch = (calls: FakeCall[], ...args: string[]) => {
  const f = fakeClis({ bw: calls });
  return { f, out: () => JSON.parse(secretsCommand(["fetch", "--adapter", "bitwarden", "--account", "email@example.com", ...args], vendorCli(f.env({ BW_SESSION: "" })))) as Record<string, string> };
};

describe("Bitwarden", () => {
  it("a login's password, named fields, and every field of an item without a login", () => {
    const { f, out } = fetch([
      installed, unlocked, sync,
      { argv: ["get", "item", "mypassword"], stdout: item("mypassword", login("secret123")) },
      { argv: ["get", "item", "myitem"], stdout: item("myitem", { ...fields(["field1", "secret1"], ["field2", "blam"], ["field3", "fewgrwjgk"]), ...login(null) }) },
      { argv: ["get", "item", "mynotefields"], stdout: item("mynotefields", { type: 2, ...fields(["field1", "secret1"], ["field4", "auto"]), secureNote: { type: 0 } }) },
    ], "mypassword", "myitem/field1", "myitem/field2", "mynotefields");
    expect(out()).toEqual({ mypassword: "secret123", "myitem/field1": "secret1", "myitem/field2": "blam", "mynotefields/field1": "secret1", "mynotefields/field4": "auto" });
    expect(f.calls()).toEqual(["bw --version", "bw status", "bw sync", "bw get item mypassword", "bw get item myitem", "bw get item mynotefields"]);
  });

  it("logs in, unlocks and passes the session as BW_SESSION", () => {
    const { f, out } = fetch([
      installed,
      { argv: ["status"], stdout: status("unauthenticated") },
      { argv: ["login", "email@example.com"], stdout: "1234567890" },
      { argv: ["status"], stdout: status("locked") },
      { argv: ["unlock", "--raw"], stdout: "0987654321" },
      { argv: ["status"], env: { BW_SESSION: "0987654321" }, stdout: status("unlocked") },
      { argv: ["sync"], env: { BW_SESSION: "0987654321" } },
      { argv: ["get", "item", "mypassword"], env: { BW_SESSION: "0987654321" }, stdout: item("mypassword", login("secret123")) },
    ], "mypassword");
    expect(out()).toEqual({ mypassword: "secret123" });
    expect(f.calls()).toEqual(["bw --version", "bw status", "bw login email@example.com", "bw status", "bw unlock --raw", "BW_SESSION=0987654321 bw status", "BW_SESSION=0987654321 bw sync", "BW_SESSION=0987654321 bw get item mypassword"]);
  });

  it("its errors, in Kamal's words", () => {
    expect(fetch([installed, unlocked, sync, { argv: ["get", "item", "mynote"], stdout: item("mynote", { type: 2, secureNote: { type: 0 } }) }], "mynote").out).toThrow("Item mynote is not a login type item and no fields were specified");
    expect(fetch([installed, unlocked, sync, { argv: ["get", "item", "myitem"], stdout: item("myitem", fields(["a", "1"])) }], "myitem/b").out).toThrow("Could not find field b in item myitem in Bitwarden");
    expect(fetch([installed, unlocked, sync, { argv: ["get", "item", "x"], status: 1 }], "x").out).toThrow("Could not read x from Bitwarden");
    expect(fetch([installed, { argv: ["status"], stdout: status("locked") }, { argv: ["unlock", "--raw"], status: 1 }], "x").out).toThrow("Failed to login to and unlock Bitwarden");
    expect(fetch([installed, unlocked, { argv: ["sync"], status: 1 }], "x").out).toThrow("Failed to sync Bitwarden");
    expect(fetch([{ ...installed, status: 1 }], "x").out).toThrow("Bitwarden CLI is not installed");
  });
});
