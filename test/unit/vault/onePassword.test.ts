/**
 * 1Password (`--adapter 1password`) against a fake `op` that answers only the command lines
 * Kamal's adapter runs. Recorded CLI outputs from basecamp/kamal
 * test/secrets/one_password_adapter_test.rb at commit eee0083b38661c3707c6b6052cc89e85038a096c
 * (the vendor's documented JSON formats).
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { secretsCommand } from "../../../kamal/vault/commands";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const field = (item: string, section: string, label: string, value: string) => ({ id: "a", section: { id: "c", label: section }, type: "CONCEALED", label, value, reference: `op://myvault/${item}/${section}/${label}` });
const installed: FakeCall = { argv: ["--version"], stdout: "2.30.0\n" };
const signedIn: FakeCall = { argv: ["account", "get", "--account", "myaccount"] };
const get = (item: string, fields?: string, extra: string[] = []): string[] => ["item", "get", item, "--vault", "myvault", "--format", "json", "--account", "myaccount", ...extra, ...(fields ? ["--fields", fields] : [])];
const fetch = (calls: FakeCall[], ...args: string[]) => {
  const f = fakeClis({ op: calls });
  const out = () => JSON.parse(secretsCommand(["fetch", "--adapter", "1password", "--account", "myaccount", ...args], vendorCli(f.env()))) as Record<string, string>;
  return { f, out };
};

describe("1Password", () => {
  it("reads each item once for all its fields, keyed by reference", () => {
    const { f, out } = fetch([installed, signedIn, { argv: get("myitem", "label=section.SECRET1,label=section.SECRET2,label=section2.SECRET3"), stdout: JSON.stringify([field("myitem", "section", "SECRET1", "VALUE1"), field("myitem", "section", "SECRET2", "VALUE2"), field("myitem", "section2", "SECRET3", "VALUE3")]) }], "--from", "op://myvault/myitem", "section/SECRET1", "section/SECRET2", "section2/SECRET3");
    expect(out()).toEqual({ "myvault/myitem/section/SECRET1": "VALUE1", "myvault/myitem/section/SECRET2": "VALUE2", "myvault/myitem/section2/SECRET3": "VALUE3" });
    expect(f.calls()).toEqual(["op --version", "op account get --account myaccount", `op ${get("myitem", "label=section.SECRET1,label=section.SECRET2,label=section2.SECRET3").join(" ")}`]);
  });

  it("several items of a vault; one field comes back as an object", () => {
    const { out } = fetch([
      installed,
      signedIn,
      { argv: get("myitem", "label=section.SECRET1,label=section.SECRET2"), stdout: JSON.stringify([field("myitem", "section", "SECRET1", "VALUE1"), field("myitem", "section", "SECRET2", "VALUE2")]) },
      { argv: get("myitem2", "label=section2.SECRET3"), stdout: JSON.stringify(field("myitem2", "section", "SECRET3", "VALUE3")) },
    ], "--from", "op://myvault", "myitem/section/SECRET1", "myitem/section/SECRET2", "myitem2/section2/SECRET3");
    expect(out()).toEqual({ "myvault/myitem/section/SECRET1": "VALUE1", "myvault/myitem/section/SECRET2": "VALUE2", "myvault/myitem2/section/SECRET3": "VALUE3" });
  });

  it("every field of --from vault/item when no name is given; a password field loses /password", () => {
    const { out } = fetch([installed, signedIn, { argv: get("myitem"), stdout: JSON.stringify({ id: "u", title: "A title", fields: [field("myitem", "section", "SECRET1", "VALUE1"), { ...field("myitem", "x", "password", "PW"), reference: "op://myvault/myitem/password" }] }) }], "--from", "op://myvault/myitem");
    expect(out()).toEqual({ "myvault/myitem/section/SECRET1": "VALUE1", "myvault/myitem": "PW" });
  });

  it("signs in when not signed in, and passes the session it gets", () => {
    const one = field("myitem", "section", "SECRET1", "VALUE1");
    const none = fetch([installed, { ...signedIn, status: 1 }, { argv: ["signin", "--account", "myaccount", "--force", "--raw"], stdout: "" }, { argv: get("myitem", "label=section.SECRET1"), stdout: JSON.stringify(one) }], "--from", "op://myvault/myitem", "section/SECRET1");
    expect(none.out()).toEqual({ "myvault/myitem/section/SECRET1": "VALUE1" });
    const session = fetch([installed, { ...signedIn, status: 1 }, { argv: ["signin", "--account", "myaccount", "--force", "--raw"], stdout: "1234567890\n" }, { argv: get("myitem", "label=section.SECRET1", ["--session", "1234567890"]), stdout: JSON.stringify(one) }], "--from", "op://myvault/myitem", "section/SECRET1");
    expect(session.out()).toEqual({ "myvault/myitem/section/SECRET1": "VALUE1" });
    const refused = fetch([installed, { ...signedIn, status: 1 }, { argv: ["signin", "--account", "myaccount", "--force", "--raw"], status: 1 }], "x");
    expect(refused.out).toThrow("Failed to login to 1Password");
  });

  it("says what it could not read, and when the CLI is missing; the account is required", () => {
    expect(fetch([installed, signedIn, { argv: get("myitem", "label=password"), status: 1 }], "--from", "myvault", "myitem").out).toThrow("Could not read password from myitem in the myvault 1Password vault");
    expect(fetch([{ ...installed, status: 1 }], "x").out).toThrow("1Password CLI is not installed");
    const f = fakeClis({ op: [installed] });
    expect(secretsCommand(["fetch", "--adapter", "1password", "x"], vendorCli(f.env()))).toBe("No value provided for required options '--account'");
  });
});
