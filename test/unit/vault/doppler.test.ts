/**
 * Recorded CLI outputs from basecamp/kamal test/secrets/doppler_adapter_test.rb at commit eee0083b38661c3707c6b6052cc89e85038a096c (the vendor's documented JSON formats).
 *
 * The Doppler adapter, as Kamal 2.12's `doppler`: the calls it makes (argv pinned by the fake
 * CLI) and the map it returns.
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { Doppler } from "../../../kamal/vault/doppler";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const secret = (computed: string) => ({ computed, computedVisibility: "unmasked", note: "" });
const threeSecrets = JSON.stringify({ SECRET1: secret("secret1"), FSECRET1: secret("fsecret1"), FSECRET2: secret("fsecret2") });
const oneSecret = JSON.stringify({ SECRET1: secret("secret1") });

const installed: FakeCall = { argv: ["--version"], stdout: "v3.71.0\n" };
const signedIn: FakeCall = { argv: ["me", "--json"], stdout: "{}" };

/** A Doppler adapter over fake `doppler` calls, with DOPPLER_TOKEN as given (unset by default). */
function doppler(calls: FakeCall[], token?: string) {
  const f = fakeClis({ doppler: calls });
  const env = f.env(token === undefined ? {} : { DOPPLER_TOKEN: token });
  if (token === undefined) delete env.DOPPLER_TOKEN;
  return { f, vault: new Doppler(vendorCli(env)) };
}

describe("Doppler", () => {
  it("fetches with --from project/config", () => {
    const { f, vault } = doppler([installed, signedIn, { argv: ["secrets", "get", "SECRET1", "FSECRET1", "FSECRET2", "--json", "-p", "my-project", "-c", "prd"], stdout: threeSecrets }]);
    expect(vault.fetch(["SECRET1", "FSECRET1", "FSECRET2"], { from: "my-project/prd" })).toEqual({ SECRET1: "secret1", FSECRET1: "fsecret1", FSECRET2: "fsecret2" });
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json", "doppler secrets get SECRET1 FSECRET1 FSECRET2 --json -p my-project -c prd"]);
  });

  it("fetches with a service token (DOPPLER_TOKEN dp.st…) without project or config", () => {
    const { f, vault } = doppler([installed, signedIn, { argv: ["secrets", "get", "SECRET1", "FSECRET1", "FSECRET2", "--json"], stdout: threeSecrets }], "dp.st.xxxxxxxxxxxxxxxxxxxxxx");
    expect(vault.fetch(["SECRET1", "FSECRET1", "FSECRET2"])).toEqual({ SECRET1: "secret1", FSECRET1: "fsecret1", FSECRET2: "fsecret2" });
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json", "doppler secrets get SECRET1 FSECRET1 FSECRET2 --json"]);
  });

  it("takes project and config from the first name when they are in the names", () => {
    const { f, vault } = doppler([installed, signedIn, { argv: ["secrets", "get", "SECRET1", "FSECRET1", "FSECRET2", "--json", "-p", "my-project", "-c", "prd"], stdout: threeSecrets }]);
    expect(vault.fetch(["my-project/prd/SECRET1", "my-project/prd/FSECRET1", "my-project/prd/FSECRET2"])).toEqual({ SECRET1: "secret1", FSECRET1: "fsecret1", FSECRET2: "fsecret2" });
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json", "doppler secrets get SECRET1 FSECRET1 FSECRET2 --json -p my-project -c prd"]);
  });

  it("fails without --from (and no service token)", () => {
    const { f, vault } = doppler([installed, signedIn]);
    expect(() => vault.fetch(["FSECRET1", "FSECRET2"])).toThrow("Missing project or config from '--from=project/config' option");
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json"]);
  });

  it("needs project and config with a personal token too", () => {
    const { f, vault } = doppler([installed, signedIn], "dp.pt.xxxxxxxxxxxxxxxxxxxxxx");
    expect(() => vault.fetch(["FSECRET1"])).toThrow("Missing project or config from '--from=project/config' option");
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json"]);
  });

  it("signs in when not signed in", () => {
    const { f, vault } = doppler([installed, { argv: ["me", "--json"], status: 1 }, { argv: ["login", "-y"], stdout: "" }, { argv: ["secrets", "get", "SECRET1", "--json", "-p", "my-project", "-c", "prd"], stdout: oneSecret }]);
    expect(vault.fetch(["SECRET1"], { from: "my-project/prd" })).toEqual({ SECRET1: "secret1" });
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json", "doppler login -y", "doppler secrets get SECRET1 --json -p my-project -c prd"]);
  });

  it("fails when the sign-in fails", () => {
    const { f, vault } = doppler([installed, { argv: ["me", "--json"], status: 1 }, { argv: ["login", "-y"], status: 1 }]);
    expect(() => vault.fetch(["SECRET1"], { from: "my-project/prd" })).toThrow("Failed to login to Doppler");
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json", "doppler login -y"]);
  });

  it("fails naming the secrets when they cannot be read", () => {
    const { f, vault } = doppler([installed, signedIn, { argv: ["secrets", "get", "SECRET1", "FSECRET1", "--json", "-p", "my-project", "-c", "prd"], status: 1 }]);
    expect(() => vault.fetch(["SECRET1", "FSECRET1"], { from: "my-project/prd" })).toThrow('Could not read ["my-project/prd/SECRET1", "my-project/prd/FSECRET1"] from Doppler');
    expect(f.calls()).toEqual(["doppler --version", "doppler me --json", "doppler secrets get SECRET1 FSECRET1 --json -p my-project -c prd"]);
  });

  it("fails when the CLI is not installed", () => {
    const { f, vault } = doppler([{ argv: ["--version"], status: 1 }]);
    expect(() => vault.fetch(["HOST", "PORT"])).toThrow("Doppler CLI is not installed");
    expect(f.calls()).toEqual(["doppler --version"]);
  });

  it("needs no --account", () => {
    expect(doppler([]).vault.requiresAccount).toBe(false);
  });
});
