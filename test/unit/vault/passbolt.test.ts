/**
 * Recorded CLI outputs from basecamp/kamal test/secrets/passbolt_adapter_test.rb at commit eee0083b38661c3707c6b6052cc89e85038a096c (the vendor's documented JSON formats).
 *
 * The Passbolt adapter, as Kamal 2.12's `passbolt`: the calls it makes (argv pinned by the fake
 * CLI, each filter expression one argument) and the map it returns.
 */
import { describe, expect, it } from "vitest";
import { vendorCli } from "../../../kamal/vault/adapter";
import { Passbolt } from "../../../kamal/vault/passbolt";
import { fakeClis, type FakeCall } from "../../helpers/fakeCli";

const MY_PROJECT = "dcbe0e39-42d8-42db-9637-8256b9f2f8e3";
const OTHER_PROJECT = "14e11dd8-b279-4689-8bd9-fa33ebb527da";
const SUBFOLDER = "6a3f21fc-aa40-4ba9-852c-7477fdd0310d";

const folder = (id: string, name: string, parent = "", created = "2025-02-21T19:52:50Z") => ({ id, folder_parent_id: parent, name, created_timestamp: created, modified_timestamp: created });
const resource = (id: string, parent: string, name: string, password: string, created: string) => ({ id, folder_parent_id: parent, name, username: "", uri: "", password, description: "", created_timestamp: created, modified_timestamp: created });
/** FSECRET1, FSECRET2 and SECRET1 in the folders given (root: ""). */
const threeResources = (f1: string, f2: string, s1: string) =>
  JSON.stringify([
    resource("4c116996-f6d0-4342-9572-0d676f75b3ac", f1, "FSECRET1", "fsecret1", "2025-02-21T06:04:29Z"),
    resource("62949b26-4957-43fe-9523-294d66861499", f2, "FSECRET2", "fsecret2", "2025-02-21T06:04:34Z"),
    resource("dd32963c-0db5-4303-a6fc-22c5229dabef", s1, "SECRET1", "secret1", "2025-02-21T06:04:23Z"),
  ]);
const threeSecrets = { SECRET1: "secret1", FSECRET1: "fsecret1", FSECRET2: "fsecret2" };

const installed: FakeCall = { argv: ["--version"], stdout: "passbolt version 0.3.2\n" };
const verified: FakeCall = { argv: ["verify"], stdout: "Verification successful\n" };
const folders = (filter: string, stdout: string): FakeCall => ({ argv: ["list", "folders", "--filter", filter, "--json"], stdout });
const resources = (filter: string, folderIds: string[], stdout: string, status = 0): FakeCall => ({
  argv: ["list", "resources", "--filter", filter, ...folderIds.flatMap((id) => ["--folder", id]), "--column", "name", "--column", "password", "--json"],
  stdout,
  status,
});
const inFolder = (names: string[], id: string) => names.map((n) => `(Name == "${n}" && FolderParentID == "${id}")`).join(" || ");
const myProject = folders('Name == "my-project"', JSON.stringify([folder(MY_PROJECT, "my-project")]));
const subfolder = folders(`Name == "subfolder" && FolderParentID == "${MY_PROJECT}"`, JSON.stringify([folder(SUBFOLDER, "subfolder", MY_PROJECT)]));

function passbolt(calls: FakeCall[]) {
  const f = fakeClis({ passbolt: calls });
  return { f, vault: new Passbolt(vendorCli(f.env())) };
}
const call = (c: FakeCall) => ["passbolt", ...c.argv].join(" ");
const signIn = ["passbolt --version", "passbolt verify"];

describe("Passbolt", () => {
  it("fetches resources at the root", () => {
    const list = resources('Name == "SECRET1" || Name == "FSECRET1" || Name == "FSECRET2"', [], threeResources("", "", ""));
    const { f, vault } = passbolt([installed, verified, list]);
    expect(vault.fetch(["SECRET1", "FSECRET1", "FSECRET2"])).toEqual(threeSecrets);
    expect(f.calls()).toEqual([...signIn, call(list)]);
  });

  it("fetches from the folder --from names", () => {
    const list = resources(inFolder(["SECRET1", "FSECRET1", "FSECRET2"], MY_PROJECT), [MY_PROJECT], threeResources(MY_PROJECT, MY_PROJECT, MY_PROJECT));
    const { f, vault } = passbolt([installed, verified, myProject, list]);
    expect(vault.fetch(["SECRET1", "FSECRET1", "FSECRET2"], { from: "my-project" })).toEqual(threeSecrets);
    expect(f.calls()).toEqual([...signIn, call(myProject), call(list)]);
  });

  it("fetches from a folder in the names", () => {
    const list = resources(inFolder(["SECRET1", "FSECRET1", "FSECRET2"], MY_PROJECT), [MY_PROJECT], threeResources(MY_PROJECT, MY_PROJECT, MY_PROJECT));
    const { f, vault } = passbolt([installed, verified, myProject, list]);
    expect(vault.fetch(["my-project/SECRET1", "my-project/FSECRET1", "my-project/FSECRET2"])).toEqual(threeSecrets);
    expect(f.calls()).toEqual([...signIn, call(myProject), call(list)]);
  });

  it("fetches from several folders", () => {
    const both = folders('Name == "my-project" || Name == "other-project"', JSON.stringify([folder(MY_PROJECT, "my-project"), folder(OTHER_PROJECT, "other-project", "", "2025-02-21T20:00:29Z")]));
    const filter = `${inFolder(["SECRET1", "FSECRET1"], MY_PROJECT)} || ${inFolder(["FSECRET2"], OTHER_PROJECT)}`;
    const list = resources(filter, [MY_PROJECT, OTHER_PROJECT], threeResources(MY_PROJECT, OTHER_PROJECT, MY_PROJECT));
    const { f, vault } = passbolt([installed, verified, both, list]);
    expect(vault.fetch(["my-project/SECRET1", "my-project/FSECRET1", "other-project/FSECRET2"])).toEqual(threeSecrets);
    expect(f.calls()).toEqual([...signIn, call(both), call(list)]);
  });

  it("fetches from a nested folder --from names", () => {
    const list = resources(inFolder(["SECRET1", "FSECRET1", "FSECRET2"], SUBFOLDER), [MY_PROJECT, SUBFOLDER], threeResources(SUBFOLDER, SUBFOLDER, SUBFOLDER));
    const { f, vault } = passbolt([installed, verified, myProject, subfolder, list]);
    expect(vault.fetch(["SECRET1", "FSECRET1", "FSECRET2"], { from: "my-project/subfolder" })).toEqual(threeSecrets);
    expect(f.calls()).toEqual([...signIn, call(myProject), call(subfolder), call(list)]);
  });

  it("fetches from a nested folder in the names", () => {
    const list = resources(inFolder(["SECRET1", "FSECRET1", "FSECRET2"], SUBFOLDER), [MY_PROJECT, SUBFOLDER], threeResources(SUBFOLDER, SUBFOLDER, SUBFOLDER));
    const { f, vault } = passbolt([installed, verified, myProject, subfolder, list]);
    expect(vault.fetch(["my-project/subfolder/SECRET1", "my-project/subfolder/FSECRET1", "my-project/subfolder/FSECRET2"])).toEqual(threeSecrets);
    expect(f.calls()).toEqual([...signIn, call(myProject), call(subfolder), call(list)]);
  });

  it("shell-escapes then quotes a folder id in the filter, and passes it as is to --folder", () => {
    const spaced = folders('Name == "my-project"', JSON.stringify([folder("abc def-123", "my-project")]));
    const list = resources('(Name == "SECRET1" && FolderParentID == "abc\\\\ def-123")', ["abc def-123"], JSON.stringify([resource("dd32963c", "abc def-123", "SECRET1", "secret1", "2025-02-21T06:04:23Z")]));
    const { f, vault } = passbolt([installed, verified, spaced, list]);
    expect(vault.fetch(["my-project/SECRET1"])).toEqual({ SECRET1: "secret1" });
    expect(f.calls()).toEqual([...signIn, call(spaced), call(list)]);
  });

  it("fails when the CLI is not installed", () => {
    const { f, vault } = passbolt([{ argv: ["--version"], status: 1 }]);
    expect(() => vault.fetch(["HOST", "PORT"])).toThrow("Passbolt CLI is not installed");
    expect(f.calls()).toEqual(["passbolt --version"]);
  });

  it("fails when the sign-in cannot be verified", () => {
    const { f, vault } = passbolt([installed, { argv: ["verify"], status: 1 }]);
    expect(() => vault.fetch(["SECRET1"])).toThrow("Failed to login to Passbolt");
    expect(f.calls()).toEqual(signIn);
  });

  it("fails naming the resources not found", () => {
    const list = resources('Name == "SECRET1" || Name == "MISSING1" || Name == "MISSING2"', [], JSON.stringify([resource("dd32963c", "", "SECRET1", "secret1", "2025-02-21T06:04:23Z")]));
    const { f, vault } = passbolt([installed, verified, list]);
    expect(() => vault.fetch(["SECRET1", "MISSING1", "MISSING2"])).toThrow("Could not find the following secrets in Passbolt: MISSING1, MISSING2");
    expect(f.calls()).toEqual([...signIn, call(list)]);
  });

  it("fails naming the folders not found", () => {
    const none = folders(`Name == "subfolder" && FolderParentID == "${MY_PROJECT}"`, "[]");
    const { f, vault } = passbolt([installed, verified, myProject, none]);
    expect(() => vault.fetch(["my-project/subfolder/SECRET1", "my-project/SECRET2"])).toThrow("Could not find the following folders in Passbolt: my-project/subfolder");
    expect(f.calls()).toEqual([...signIn, call(myProject), call(none)]);
  });

  it("fails when the folders or the resources cannot be listed", () => {
    const failedFolders = { ...myProject, stdout: "", status: 1 };
    const one = passbolt([installed, verified, failedFolders]);
    expect(() => one.vault.fetch(["my-project/SECRET1"])).toThrow("Could not read folders from Passbolt");
    expect(one.f.calls()).toEqual([...signIn, call(myProject)]);

    const list = resources(inFolder(["SECRET1"], MY_PROJECT), [MY_PROJECT], "", 1);
    const two = passbolt([installed, verified, myProject, list]);
    expect(() => two.vault.fetch(["SECRET1"], { from: "my-project" })).toThrow('Could not read ["my-project/SECRET1"] from Passbolt');
    expect(two.f.calls()).toEqual([...signIn, call(myProject), call(list)]);
  });

  it("fails without calling when a quote leaves the filter unbalanced (as the shell would)", () => {
    const { f, vault } = passbolt([installed, verified]);
    expect(() => vault.fetch(["it's"])).toThrow(`Could not read ["it's"] from Passbolt`);
    expect(f.calls()).toEqual(signIn);
  });

  it("fails with no names", () => {
    const { f, vault } = passbolt([installed, verified]);
    expect(() => vault.fetch([])).toThrow("No secrets given to fetch");
    expect(f.calls()).toEqual(signIn);
  });

  it("needs no --account", () => {
    expect(passbolt([]).vault.requiresAccount).toBe(false);
  });
});
