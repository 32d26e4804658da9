/**
 * LastPass (`--adapter lastpass`) against a fake `lpass` that answers only the command lines
 * Kamal's adapter runs. Recorded CLI outputs from basecamp/kamal
 * test/secrets/last_pass_adapter_test.rb at commit eee0083b38661c3707c6b6052cc89e85038a096c
 * (the vendor's documented JSON formats).
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { secretsCommand } from "../../../kamal/vault/commands";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const item = (fullname: string, password: string) => ({ id: "1", name: fullname.split("/").pop(), fullname, username: "", password, last_modified_gmt: "1724926054", last_touch: "1724926639", group: "", url: "", note: "" });
const installed: FakeCall = { argv: ["--version"], stdout: "LastPass CLI v1.6.1\n" };
const loggedIn: FakeCall = { argv: ["status", "--color", "never"], stdout: "Logged in as email@example.com.\n" };
const fetch = (calls: FakeCall[], ...args: string[]) => {
  const f = fakeClis({ lpass: calls });
  return { f, out: () => JSON.parse(secretsCommand(["fetch", "--adapter", "lastpass", "--account", "email@example.com", ...args], vendorCli(f.env()))) as Record<string, string> };
};

describe("LastPass", () => {
  it("reads every name with one lpass show, keyed by full name", () => {
    const { f, out } = fetch([installed, loggedIn, { argv: ["show", "SECRET1", "FOLDER1/FSECRET1", "FOLDER1/FSECRET2", "--json"], stdout: JSON.stringify([item("SECRET1", "secret1"), item("FOLDER1/FSECRET1", "fsecret1"), item("FOLDER1/FSECRET2", "fsecret2")]) }], "SECRET1", "FOLDER1/FSECRET1", "FOLDER1/FSECRET2");
    expect(out()).toEqual({ SECRET1: "secret1", "FOLDER1/FSECRET1": "fsecret1", "FOLDER1/FSECRET2": "fsecret2" });
    expect(f.calls()).toEqual(["lpass --version", "lpass status --color never", "lpass show SECRET1 FOLDER1/FSECRET1 FOLDER1/FSECRET2 --json"]);
  });

  it("--from prefixes the names; a name not returned is an error", () => {
    expect(fetch([installed, loggedIn, { argv: ["show", "FOLDER1/FSECRET1", "--json"], stdout: JSON.stringify([item("FOLDER1/FSECRET1", "fsecret1")]) }], "--from", "FOLDER1", "FSECRET1").out()).toEqual({ "FOLDER1/FSECRET1": "fsecret1" });
    expect(fetch([installed, loggedIn, { argv: ["show", "SECRET1", "SECRET2", "--json"], stdout: JSON.stringify([item("SECRET1", "secret1")]) }], "SECRET1", "SECRET2").out).toThrow("Could not find SECRET2 in LastPass");
    expect(fetch([installed, loggedIn, { argv: ["show", "SECRET1", "--json"], status: 1 }], "SECRET1").out).toThrow('Could not read ["SECRET1"] from LastPass');
  });

  it("logs in when another account, or none, is logged in", () => {
    const { f, out } = fetch([installed, { argv: ["status", "--color", "never"], stdout: "Not logged in.\n", status: 1 }, { argv: ["login", "email@example.com"] }, { argv: ["show", "SECRET1", "--json"], stdout: JSON.stringify([item("SECRET1", "secret1")]) }], "SECRET1");
    expect(out()).toEqual({ SECRET1: "secret1" });
    expect(f.calls()).toContain("lpass login email@example.com");
    expect(fetch([installed, { argv: ["status", "--color", "never"], stdout: "Logged in as other@example.com.\n" }, { argv: ["login", "email@example.com"], status: 1 }], "SECRET1").out).toThrow("Failed to login to LastPass");
    expect(fetch([{ ...installed, status: 1 }], "SECRET1").out).toThrow("LastPass CLI is not installed");
  });
});
