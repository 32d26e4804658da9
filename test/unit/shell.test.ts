import { describe, expect, it } from "vitest";
import { allOf, anyOf, pipe, shellJoin, shellQuote } from "../../provider/commands/shell";

describe("shellQuote", () => {
  it("leaves plain words alone and single-quotes everything else", () => {
    expect(shellQuote("registry.local:5000/app@sha256:abc")).toBe("registry.local:5000/app@sha256:abc");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("$(rm -rf /)")).toBe("'$(rm -rf /)'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote("Host(`x`)")).toBe("'Host(`x`)'");
    expect(shellQuote("a\nb")).toBe("'a\nb'");
  });
});

describe("combinators", () => {
  it("joins argv and groups compound commands", () => {
    const a = shellJoin(["docker", "ps", "--filter", "label=service=web app"]);
    expect(a).toBe("docker ps --filter 'label=service=web app'");
    expect(allOf("true", anyOf("a", "b"))).toBe("true && (a || b)");
    expect(anyOf(allOf("a", "b"), "c")).toBe("(a && b) || c");
    expect(pipe("docker ps -q", "head -1")).toBe("docker ps -q | head -1");
    // An operator inside quotes is data, not syntax.
    expect(allOf(shellJoin(["echo", "a|b"]), "true")).toBe("echo 'a|b' && true");
    expect(allOf(shellJoin(["echo", "it's|x"]), "true")).toBe("echo 'it'\\''s|x' && true");
  });
});
