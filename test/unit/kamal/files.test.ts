/** The files around deploy.yml: ERB, secrets files, SSH config files. */
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SecretsFiles } from "../../../kamal/secrets";
import { renderErb } from "../../../kamal/erb";
import { deepMerge, loadKamalConfig } from "../../../kamal/config";
import { app } from "./fixtures";

describe("ERB and secrets files", () => {
  const ctx = { env: { A: "1" } as Record<string, string | undefined>, root: "/nonexistent", file: "deploy.yml", renderer: "builtin" as const };
  it("renders the supported expressions and refuses the rest", () => {
    expect(renderErb(`a: <%= ENV["A"] %>\nb: <%= ENV.fetch('B', 'x') %>\nc: <%= ENV["C"] || "d" %>`, { ...ctx })).toBe("a: 1\nb: x\nc: d");
    expect(() => renderErb("a: <%= ENV.fetch(\"MISSING\") %>", { ...ctx })).toThrow('deploy.yml:1: ENV.fetch("MISSING"): MISSING is not set');
    expect(() => renderErb("a: <%= 1 + 1 %>", { ...ctx })).toThrow(
      'deploy.yml:1: ERB expression not supported without Ruby: only ENV["X"], ENV.fetch("X"[, "default"]), ENV["X"] || "default" and File.read("path"); install Ruby (apt install ruby) to render it as Kamal does',
    );
    expect(() => renderErb("<% puts 'hi' %>", { ...ctx })).toThrow(
      "deploy.yml:1: ERB control code is not supported without Ruby (only Dotenv.load of a secrets file); install Ruby (apt install ruby) to render it as Kamal does",
    );
    expect(() => renderErb("a: <%= File.read('.nope') %>", { ...ctx })).toThrow("deploy.yml:1: File.read: .nope does not exist");
    expect(renderErb("a: <%= `echo hi`.strip %>", { ...ctx, shell: (c) => `${c}\n` })).toBe("a: echo hi");
  });

  it("reads secrets files as Kamal does: syntax, substitution, and errors naming file, line and key", () => {
    const read = (text: string, key: string) => new SecretsFiles({ appRoot: app({ ".kamal/secrets": text }), kamal: 2 }).get(key);
    const text = '# c\nexport A=1\nB="x\\ny" \nC=\'$A raw\'\nD=${A}-$B # trailing\n\nE=\nF="multi\nline"\nG=\\$(not run)\nH: colon';
    expect(Object.fromEntries(["A", "B", "C", "D", "E", "F", "G", "H"].map((k) => [k, read(text, k)]))).toEqual({
      A: "1",
      // dotenv 3.2 keeps "\n" in double quotes as a backslash and an n.
      B: "x\\ny",
      C: "$A raw",
      D: "1-x\\ny",
      E: "",
      F: "multi\nline",
      G: "$(not run)",
      H: "colon",
    });
    // As dotenv: a line that is no assignment is skipped, an unclosed quote is part of the value.
    expect(() => read("not a line", "A")).toThrow(/^secret A is not in \.kamal\/secrets$/);
    expect(read("A='open", "A")).toBe("'open");
    expect(read('B="open', "B")).toBe('"open');
    expect(() => read("A=1", "B")).toThrow(/^secret B is not in \.kamal\/secrets$/);
  });

  it("runs $(…) as Kamal does, in the app root, only for the secrets used, once", () => {
    const dir = app({
      "config/master.key": "m4ster\n",
      ".kamal/secrets": [
        "RAILS_MASTER_KEY=$(cat config/master.key)",
        "NESTED=$(echo $(echo in)side)",
        "VIA_VAR=$(printf %s $RAILS_MASTER_KEY)",
        "UNUSED=$(touch unused-ran)",
        "FAILS=$(false)",
        "MISSING=$(no-such-tool read x)",
        "SECRETS=$(kamal secrets fetch --adapter 1password --account acme a/b)",
      ].join("\n"),
    });
    const files = new SecretsFiles({ appRoot: dir, kamal: 2 });
    expect(files.get("RAILS_MASTER_KEY")).toBe("m4ster");
    expect(files.get("NESTED")).toBe("inside");
    expect(files.get("VIA_VAR")).toBe("m4ster");
    expect(readdirSync(dir)).not.toContain("unused-ran");
    expect(() => files.get("FAILS")).toThrow(
      ".kamal/secrets:5: FAILS: the command $(false …) exited 1 with no output; set FAILS with `pulumi config set --secret FAILS …` instead, or fix the command",
    );
    expect(() => files.get("MISSING")).toThrow(".kamal/secrets:6: MISSING: the command $(no-such-tool …) no-such-tool is not installed here;");
    expect(() => files.get("SECRETS")).toThrow(".kamal/secrets:7: SECRETS: kamal secrets fetch: 1Password CLI is not installed");
  });

  it("picks the files Kamal reads: secrets-common then secrets or secrets.<destination>, secrets_path; Kamal 1's .env.<destination> over .env", () => {
    const dir = app({
      ".kamal/secrets-common": "A=common\nB=common",
      ".kamal/secrets": "B=default",
      ".kamal/secrets.staging": "B=staging",
      "config/secrets-common": "A=moved",
      ".env": "A=env\nB=env",
      ".env.staging": "B=env-staging",
    });
    const get = (o: Partial<ConstructorParameters<typeof SecretsFiles>[0]>, k: string) => new SecretsFiles({ appRoot: dir, kamal: 2, ...o }).get(k);
    expect([get({}, "A"), get({}, "B"), get({ destination: "staging" }, "B")]).toEqual(["common", "default", "staging"]);
    expect(new SecretsFiles({ appRoot: dir, kamal: 2, destination: "staging" }).files).toEqual([".kamal/secrets-common", ".kamal/secrets.staging"]);
    expect(get({ secretsPath: "config/secrets" }, "A")).toBe("moved");
    expect([get({ kamal: 1 }, "B"), get({ kamal: 1, destination: "staging" }, "B"), get({ kamal: 1, destination: "staging" }, "A")]).toEqual(["env", "env-staging", "env"]);
    expect(() => new SecretsFiles({ appRoot: dir, kamal: 2, files: ["nope"] })).toThrow("secrets file nope does not exist");
  });

  it("tells Kamal 1 from 2 as the project does when deploy.yml does not: Gemfile.lock's kamal, then the secrets files", () => {
    const yml = "service: hey\nimage: acme/hey\nservers: [10.0.0.1]\n";
    const load = (files: Record<string, string>) => {
      const root = app({ "config/deploy.yml": yml, ...files });
      return loadKamalConfig({ file: path.join(root, "config/deploy.yml") });
    };
    const lock = (v: string) => `GEM\n  remote: https://rubygems.org/\n  specs:\n    kamal (${v})\n      activesupport (>= 7.0)\n`;
    expect(load({ "Gemfile.lock": lock("1.9.3"), ".kamal/secrets": "A=1" })).toMatchObject({ kamal: 1, roles: [{ appPort: 3000 }] });
    expect(load({ "Gemfile.lock": lock("2.12.0"), ".env": "A=1" })).toMatchObject({ kamal: 2, roles: [{ appPort: 80 }] });
    expect(load({ ".kamal/secrets-common": "A=1" }).kamal).toBe(2);
    expect(load({ ".env": "A=1" }).kamal).toBe(1);
    const unknown = load({});
    expect(unknown.kamal).toBe(2);
    expect(unknown.warnings).toContain("deploy.yml uses no key only one Kamal version has, and neither a Gemfile.lock with kamal nor a secrets file says which: read as Kamal 2 (app port 80, /up on it, the kamal network); for Kamal 1, set KamalApp's kamalVersion: 1");
    // A key only one version has decides, whatever the files say.
    expect(loadKamalConfig({ file: path.join(app({ "config/deploy.yml": `${yml}proxy: {}\n`, ".env": "A=1" }), "config/deploy.yml") }).kamal).toBe(2);
  });

  it("merges objects and replaces lists", () => {
    expect(deepMerge({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2], e: 3 } })).toEqual({ a: { b: 1, c: [2], e: 3 }, d: 1 });
  });
});

describe("SSH config files (ssh.config), as net-ssh applies them under Kamal", () => {
  const home = () =>
    app({
      ".ssh/config": [
        "# aliases",
        "Host web-?",
        "  HostName 10.1.0.%h",
        "Host web-1",
        "  HostName 10.0.0.1",
        "  User ignored-kamal-passes-its-own",
        "  Port 2200",
        "Host web-* !web-9",
        "  IdentityFile ~/.ssh/deploy_ed25519",
        "  ProxyJump bastion",
        "Host bastion",
        "  HostName 203.0.113.7",
        "  User jump",
        "  Port 2222",
        "Include conf.d/*.conf",
        "",
      ].join("\n"),
      ".ssh/conf.d/db.conf": "Host db\n  HostName=10.0.0.9\n  IdentityFile \"~/.ssh/db key\"\n  ProxyCommand ssh -W %h:%p bastion\n",
    });

  it("parses Host patterns (wildcards, negation), first value wins, IdentityFile accumulates, Include", async () => {
    const { readSshConfig, sshConfigFiles, sshHostConfig } = await import("../../../kamal/sshConfig");
    const dir = home();
    const blocks = readSshConfig(sshConfigFiles(true, dir), dir);
    expect(sshHostConfig(blocks, "web-1", dir)).toEqual({
      hostName: "10.1.0.web-1", user: "ignored-kamal-passes-its-own", port: 2200,
      identityFiles: [`${dir}/.ssh/deploy_ed25519`], proxyJump: "bastion", proxyCommand: undefined,
    });
    expect(sshHostConfig(blocks, "web-9", dir)).toMatchObject({ hostName: "10.1.0.web-9", identityFiles: [], proxyJump: undefined });
    expect(sshHostConfig(blocks, "db", dir)).toMatchObject({ hostName: "10.0.0.9", identityFiles: [`${dir}/.ssh/db key`], proxyCommand: "ssh -W %h:%p bastion" });
    expect(sshHostConfig(blocks, "10.0.0.5", dir)).toEqual({ identityFiles: [], hostName: undefined, user: undefined, port: undefined, proxyJump: undefined, proxyCommand: undefined });
    expect(sshConfigFiles(false, dir)).toEqual([]);
    expect(sshConfigFiles(["~/.ssh/myconfig"], dir)).toEqual([{ file: `${dir}/.ssh/myconfig`, base: `${dir}/.ssh` }]);
  });

  it("connects an alias to its HostName, with the file's key and jump host (its own user and port)", () => {
    const dir = home();
    const root = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers:\n  - web-2\n  - web-3\n" });
    const c = loadKamalConfig({ file: path.join(root, "config/deploy.yml"), home: dir });
    expect(c.ssh.hostNames).toEqual({ "web-2": "10.1.0.web-2", "web-3": "10.1.0.web-3" });
    expect(c.ssh.keyPaths).toEqual([`${dir}/.ssh/deploy_ed25519`]);
    expect(c.ssh.proxy).toEqual({ host: "203.0.113.7", user: "jump", port: 2222 });
    // The roles keep the names deploy.yml gives (resource names, KAMAL_HOST).
    expect(c.roles[0].hosts.map((h) => h.address)).toEqual(["web-2", "web-3"]);
    // deploy.yml's own settings win; `config: false` reads no file.
    const own = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers:\n  - web-2\nssh:\n  keys: [~/.ssh/mine]\n  proxy: gw.example.com\n" });
    expect(loadKamalConfig({ file: path.join(own, "config/deploy.yml"), home: dir }).ssh).toMatchObject({ keyPaths: ["~/.ssh/mine"], proxy: { host: "gw.example.com", user: "root" } });
    const off = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers:\n  - web-2\nssh:\n  config: false\n" });
    expect(loadKamalConfig({ file: path.join(off, "config/deploy.yml"), home: dir }).ssh.hostNames).toEqual({});
  });

  it("refuses what one SSH setting for every host cannot express, naming the hosts", () => {
    const dir = home();
    const mixed = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers:\n  - web-2\n  - web-9\n" });
    expect(() => loadKamalConfig({ file: path.join(mixed, "config/deploy.yml"), home: dir })).toThrow(
      "ssh.config: hosts web-2 and web-9 have different IdentityFile in the SSH config; one setting serves every host here: set it in deploy.yml\n" +
        "ssh.config: hosts web-2 and web-9 have different ProxyJump in the SSH config; one setting serves every host here: set it in deploy.yml",
    );
    // A host's ProxyCommand serves as ssh.proxy_command does.
    const cmd = app({ "config/deploy.yml": "service: hey\nimage: acme/hey\nservers:\n  - db\n" });
    expect(loadKamalConfig({ file: path.join(cmd, "config/deploy.yml"), home: dir }).ssh).toMatchObject({ hostNames: { db: "10.0.0.9" }, proxyCommand: "ssh -W %h:%p bastion", proxy: undefined });
  });
});

describe("error_pages_path", () => {
  it("takes 503.html as the maintenance page and the other 4xx/5xx pages as error pages", () => {
    const yml = "service: hey\nimage: acme/hey\nservers: [10.0.0.1]\nproxy: { host: hey.example.com }\nerror_pages_path: public\n";
    const dir = app({ "config/deploy.yml": yml, "public/503.html": "<p>{{ .Message }}</p>", "public/502.html": "<h1>down</h1>", "public/504.html": "<h1>slow</h1>", "public/404.html": "<h1>gone</h1>", "public/robots.txt": "x", "public/5xx.html": "no" });
    const cfg = loadKamalConfig({ file: path.join(dir, "config/deploy.yml"), erb: "builtin" });
    expect(cfg.maintenancePage).toBe("<p>{{ .Message }}</p>");
    expect(cfg.errorPages).toEqual({ "404": "<h1>gone</h1>", "502": "<h1>down</h1>", "504": "<h1>slow</h1>" });
    const bare = loadKamalConfig({ file: path.join(app({ "config/deploy.yml": yml, "public/.keep": "" }), "config/deploy.yml"), erb: "builtin" });
    expect([bare.errorPages, bare.warnings]).toEqual([undefined, ["error_pages_path: public/503.html does not exist: maintenance uses the default page"]]);
  });
});
