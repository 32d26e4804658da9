/**
 * Secrets files as Kamal 2 reads them: dotenv 3.2 (the version Kamal 2.12 locks) with Kamal's
 * inline `kamal secrets` commands. The expected values are what Ruby's dotenv 3.2.0
 * (bkeepers/dotenv lib/dotenv/parser.rb and substitutions/, commit
 * 34156bf400cd67387fa6ed9f146778f6a2f5f743) with Kamal 2.12.0's InlineCommandSubstitution
 * (basecamp/kamal lib/kamal/secrets/dotenv/inline_command_substitution.rb, commit
 * eee0083b38661c3707c6b6052cc89e85038a096c) gave for the same files, recorded.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseDotenv, substituteCommands } from "../../../kamal/dotenv";
import { SecretsFiles } from "../../../kamal/secrets";
import { shellescape, shellsplit } from "../../../kamal/vault/shellwords";
import { fakeClis } from "../../helpers/fakeCli";
import { app } from "./fixtures";

const read = (text: string, env: Record<string, string> = {}) => new SecretsFiles({ appRoot: app({ ".kamal/secrets": text }), kamal: 2, env: { PATH: process.env.PATH, HOME: "/root", ...env } });

describe("secrets files as Kamal 2 reads them (dotenv 3.2)", () => {
  it("reads quotes, comments, escapes, variables and commands as dotenv 3.2 does", () => {
    const text = [
      "export A=1",
      'B="x\\ny"',
      "C='$A raw'",
      "D=${A}-$B # trailing",
      "E=",
      'F="multi',
      'line"',
      "G=\\$(not run)",
      "H: colon",
      "I=abc#def",
      'J="dq # kept" # c',
      "K=$A}",
      "L=${A",
      "M=$(printf '%s' 'a$Ab')",
      "N=$(printf '%s' \"\\$HOME\")",
      "O=a\\tb\\\\c",
      'P="q\\"uote"',
      "Q=$-$ $",
      "R=$(echo hi) $(echo there)",
      "S=\\$A",
      "T=$(printf '%s' \"(paren)\")",
      " U = spaced",
      "V=${A}${A}",
      "A=2",
      "W=$A",
      "not a line",
      "X='open",
      'Y="open',
      "Z=$(kamal secrets fetch --adapter test --account a dollar$A)",
      "export A",
    ].join("\n");
    const files = read(text);
    expect(files.all()).toEqual({
      A: "2",
      B: "x\\ny",
      C: "$A raw",
      D: "1-x\\ny",
      E: "",
      F: "multi\nline",
      G: "$(not run)",
      H: "colon",
      I: "abc",
      J: "dq # kept",
      K: "1",
      L: "1",
      M: "a",
      N: "/root",
      O: "atb\\c",
      P: 'q"uote',
      Q: "$-$ $",
      R: "hi there",
      S: "$A",
      T: "(paren)",
      U: "spaced",
      V: "11",
      W: "2",
      X: "'open",
      Y: '"open',
      Z: '\\{\\"dollar2\\":\\"2rallod\\"\\}',
    });
    expect(parseDotenv(text, ".kamal/secrets").find((e) => e.key === "W")?.line).toBe(25);
    expect(() => read("export NEVER_SET").get("X")).toThrow(".kamal/secrets:1: export NEVER_SET has no value set before it");
  });

  it("passes a vault's fetch on to extract as Kamal does: --inline, shell-escaped JSON, shellsplit", () => {
    const files = read([
      'SECRETS=$(kamal secrets fetch --adapter test --account my --from Vault/Item KEY1 KEY_LPAREN2RPAREN "WITH SPACE")',
      "KEY1=$(kamal secrets extract KEY1 $SECRETS)",
      "KEY2=$(kamal secrets extract KEY_LPAREN2RPAREN ${SECRETS})",
      'K3=$(kamal secrets extract "WITH SPACE" $SECRETS)',
    ].join("\n"));
    expect(files.all()).toEqual({
      SECRETS: '\\{\\"Vault/Item/KEY1\\":\\"1YEK/metI/tluaV\\",\\"Vault/Item/KEY_LPAREN2RPAREN\\":\\"\\)2\\(_YEK/metI/tluaV\\",\\"Vault/Item/WITH\\ SPACE\\":\\"ECAPS\\ HTIW/metI/tluaV\\"\\}',
      KEY1: "1YEK/metI/tluaV",
      KEY2: ")2(_YEK/metI/tluaV",
      K3: "ECAPS HTIW/metI/tluaV",
    });
  });

  it("a Rails 8 app's generated file, and its 1Password and Bitwarden variants, resolve as in Kamal", () => {
    const rails8 = readFileSync(path.join(__dirname, "../../fixtures/secrets/rails8.secrets"), "utf8");
    const dir = app({ ".kamal/secrets": rails8, "config/master.key": "0123abcd\n" });
    expect(new SecretsFiles({ appRoot: dir, kamal: 2, env: { PATH: process.env.PATH, KAMAL_REGISTRY_PASSWORD: "from-env" } }).all()).toEqual({ KAMAL_REGISTRY_PASSWORD: "from-env", RAILS_MASTER_KEY: "0123abcd" });
    // The template's 1Password lines, uncommented, as a Rails 8 app switching to a vault does.
    const onePassword = rails8.split("\n").map((l) => (/^# (SECRETS|KAMAL_REGISTRY_PASSWORD=\$\(kamal|RAILS_MASTER_KEY=\$\(kamal)/.test(l) ? l.slice(2) : l)).filter((l) => !/^(KAMAL_REGISTRY_PASSWORD=\$KAMAL|RAILS_MASTER_KEY=\$\(cat)/.test(l)).join("\n");
    const field = (label: string, value: string) => ({ id: label, type: "CONCEALED", label, value, reference: `op://Vault/Item/${label}` });
    const op = fakeClis({ op: [
      { argv: ["--version"] },
      { argv: ["account", "get", "--account", "your-account"] },
      { argv: ["item", "get", "Item", "--vault", "Vault", "--format", "json", "--account", "your-account", "--fields", "label=KAMAL_REGISTRY_PASSWORD,label=RAILS_MASTER_KEY"], stdout: JSON.stringify([field("KAMAL_REGISTRY_PASSWORD", "r3g'istry pass"), field("RAILS_MASTER_KEY", "m4ster\"key")]) },
    ] });
    const viaOp = new SecretsFiles({ appRoot: app({ ".kamal/secrets": onePassword }), kamal: 2, env: op.env() });
    expect([viaOp.get("KAMAL_REGISTRY_PASSWORD"), viaOp.get("RAILS_MASTER_KEY")]).toEqual(["r3g'istry pass", 'm4ster"key']);
    expect(op.calls()).toHaveLength(3);
    // Bitwarden, as Kamal's docs write it: one item's fields.
    const bw = fakeClis({ bw: [
      { argv: ["--version"] },
      { argv: ["status"], stdout: JSON.stringify({ status: "unlocked" }) },
      { argv: ["sync"] },
      { argv: ["get", "item", "MyItem"], stdout: JSON.stringify({ name: "MyItem", fields: [{ name: "REGISTRY_PASSWORD", value: "bw-pass" }, { name: "DB_PASSWORD", value: "bw db" }] }) },
    ] });
    const bitwarden = "SECRETS=$(kamal secrets fetch --adapter bitwarden --account email@example.com --from MyItem REGISTRY_PASSWORD DB_PASSWORD)\nKAMAL_REGISTRY_PASSWORD=$(kamal secrets extract REGISTRY_PASSWORD $SECRETS)\nDB_PASSWORD=$(kamal secrets extract DB_PASSWORD $SECRETS)";
    const viaBw = new SecretsFiles({ appRoot: app({ ".kamal/secrets": bitwarden }), kamal: 2, env: bw.env({ BW_SESSION: "" }) });
    expect([viaBw.get("KAMAL_REGISTRY_PASSWORD"), viaBw.get("DB_PASSWORD")]).toEqual(["bw-pass", "bw db"]);
  });

  it("evaluates only the secrets used (and what they refer to), each command once", () => {
    const dir = app({ ".kamal/secrets": "COUNTED=$(echo x >> ran; echo counted)\nUNUSED=$(touch unused-ran)\nUSES=$COUNTED-$COUNTED" });
    const files = new SecretsFiles({ appRoot: dir, kamal: 2 });
    expect(files.get("USES")).toBe("counted-counted");
    expect(files.get("COUNTED")).toBe("counted");
    expect(readFileSync(`${dir}/ran`, "utf8")).toBe("x\n");
    expect(readdirSync(dir)).not.toContain("unused-ran");
  });

  it("names the file, line, key and command of a failing kamal secrets command, never a value", () => {
    const files = read("A=$(kamal secrets fetch --adapter nope --account x A)\nB=$(kamal secrets extract MISSING '{\"a/OTHER\":\"s3cret\"}')\nC=$(kamal secrets fetch --adapter 1password A)");
    expect(() => files.get("A")).toThrow(".kamal/secrets:1: A: kamal secrets fetch: Unknown secrets adapter: nope");
    expect(() => files.get("B")).toThrow(/^\.kamal\/secrets:2: B: kamal secrets extract: Could not find secret MISSING$/);
    expect(() => files.get("C")).toThrow(".kamal/secrets:3: C: kamal secrets fetch: No value provided for required options '--account'");
  });

  it("substitutes nested commands and escapes as Kamal's pattern reads them", () => {
    const seen: string[] = [];
    expect(substituteCommands("a$(x (y) z)b\\$(literal)c$(open$()d$(e \\) f)", (c) => (seen.push(c), "R"))).toBe("aRb$(literal)c$(open$()dR");
    expect(seen).toEqual(["x (y) z", "e \\) f"]);
  });

  it("escapes and splits words as Ruby's Shellwords", () => {
    expect(shellescape('{"K":"v a$l\'u"}')).toBe('\\{\\"K\\":\\"v\\ a\\$l\\\'u\\"\\}');
    expect(shellescape("")).toBe("''");
    expect(shellescape("a\nb")).toBe("a'\n'b");
    expect(shellsplit(`kamal secrets extract K \\{\\"K\\":\\"v\\"\\} 'a b' "c\\"d" e\\ f`)).toEqual(["kamal", "secrets", "extract", "K", '{"K":"v"}', "a b", 'c"d', "e f"]);
    expect(shellsplit('"a\\$b\\nc"')).toEqual(["a$b\\nc"]);
    expect(() => shellsplit("x 'open")).toThrow("Unmatched quote: \"x 'open\"");
  });
});
