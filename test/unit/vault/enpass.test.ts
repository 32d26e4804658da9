/**
 * Recorded CLI outputs from basecamp/kamal test/secrets/enpass_adapter_test.rb at commit eee0083b38661c3707c6b6052cc89e85038a096c (the vendor's documented JSON formats).
 *
 * The Enpass adapter, as Kamal 2.12's `enpass`: the calls it makes (argv pinned by the fake
 * CLI) and the map it returns.
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { Enpass } from "../../../kamal/vault/enpass";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const installed: FakeCall = { argv: ["version"], stdout: "6.0.0\n" };
const field = (title: string, label: string, password: string) => ({ category: "computer", label, login: "", password, title, type: "password" });
const show = (titles: string[], fields: object[]): FakeCall => ({ argv: ["-json", "-vault", "vault-path", "show", ...titles], stdout: `${JSON.stringify(fields)}\n` });

function enpass(calls: FakeCall[]) {
  const f = fakeClis({ "enpass-cli": calls });
  return { f, vault: new Enpass(vendorCli(f.env())) };
}
const call = (c: FakeCall) => ["enpass-cli", ...c.argv].join(" ");

describe("Enpass", () => {
  it("fails when the CLI is not installed", () => {
    const { f, vault } = enpass([{ argv: ["version"], status: 1 }]);
    expect(() => vault.fetch(["mynote"], { from: "vault-path" })).toThrow("Enpass CLI is not installed");
    expect(f.calls()).toEqual(["enpass-cli version"]);
  });

  it("fetches one field of an item", () => {
    const s = show(["FooBar"], [field("FooBar", "SECRET_1", "my-password-1")]);
    const { f, vault } = enpass([installed, s]);
    expect(vault.fetch(["FooBar/SECRET_1"], { from: "vault-path" })).toEqual({ "FooBar/SECRET_1": "my-password-1" });
    expect(f.calls()).toEqual(["enpass-cli version", call(s)]);
  });

  it("fetches several fields, showing each item once and leaving out fields not asked for", () => {
    const s = show(["FooBar"], [field("FooBar", "SECRET_1", "my-password-1"), field("FooBar", "SECRET_2", "my-password-2"), field("Hello", "SECRET_3", "my-password-1")]);
    const { f, vault } = enpass([installed, s]);
    expect(vault.fetch(["FooBar/SECRET_1", "FooBar/SECRET_2"], { from: "vault-path" })).toEqual({ "FooBar/SECRET_1": "my-password-1", "FooBar/SECRET_2": "my-password-2" });
    expect(f.calls()).toEqual(["enpass-cli version", call(s)]);
  });

  it("fetches every password of an item by its title, an unlabelled one keyed by the title", () => {
    const s = show(["FooBar"], [
      field("FooBar", "SECRET_1", "my-password-1"),
      field("FooBar", "SECRET_2", "my-password-2"),
      field("Hello", "SECRET_3", "my-password-1"),
      field("FooBar", "", "my-password-3"),
    ]);
    const { f, vault } = enpass([installed, s]);
    expect(vault.fetch(["FooBar"], { from: "vault-path" })).toEqual({ "FooBar/SECRET_1": "my-password-1", "FooBar/SECRET_2": "my-password-2", FooBar: "my-password-3" });
    expect(f.calls()).toEqual(["enpass-cli version", call(s)]);
  });

  it("leaves out fields with a blank password", () => {
    const s = show(["FooBar"], [field("FooBar", "SECRET_1", " "), field("FooBar", "SECRET_2", "my-password-2")]);
    const { vault } = enpass([installed, s]);
    expect(vault.fetch(["FooBar"], { from: "vault-path" })).toEqual({ "FooBar/SECRET_2": "my-password-2" });
  });

  it("fails when a field is there twice", () => {
    const s = show(["FooBar"], [field("FooBar", "SECRET_1", "my-password-1"), field("FooBar", "SECRET_1", "my-password-2")]);
    const { vault } = enpass([installed, s]);
    expect(() => vault.fetch(["FooBar/SECRET_1"], { from: "vault-path" })).toThrow("FooBar/SECRET_1 is present more than once");
  });

  it("needs --from (the vault) but no --account", () => {
    const { f, vault } = enpass([installed]);
    expect(vault.requiresAccount).toBe(false);
    expect(() => vault.fetch(["FooBar"])).toThrow("Missing required option '--from'");
    expect(f.calls()).toEqual(["enpass-cli version"]);
  });
});
