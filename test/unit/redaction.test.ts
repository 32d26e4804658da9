/** The one redaction point (provider/handlers/common.ts Secrets.guard): what leaves a handler
 * operation keeps its type, with no secret in it. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { Secrets, StepError } from "../../provider/handlers/common";
import { RemoteCommandError } from "../../provider/ssh/errors";

describe("the one redaction point", () => {
  it("keeps an error's class and fields, every secret replaced in its message, fields and causes", async () => {
    const secrets = new Secrets(z.object({}), {});
    secrets.add(["hunter2"]);
    const inner = new RemoteCommandError("app1", "echo hunter2", 1, undefined, "bad hunter2", "");
    const thrown = await secrets
      .guard(async () => {
        throw new StepError("app1", "writing the env file", inner);
      })
      .catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(StepError);
    const e = thrown as StepError;
    expect(e.step).toBe("writing the env file");
    expect(e.cause).toBeInstanceOf(RemoteCommandError);
    const cause = e.cause as RemoteCommandError;
    expect(e.message).toBe("app1: writing the env file: command failed with exit code 1: echo [REDACTED]\n--- stderr (tail) ---\nbad [REDACTED]");
    expect([cause.command, cause.stderrTail, cause.exitCode]).toEqual(["echo [REDACTED]", "bad [REDACTED]", 1]);
    expect(JSON.stringify([e.message, e.stack, cause.message, cause.stack, cause.command, cause.stderrTail])).not.toContain("hunter2");
  });

  it("turns a thrown non-error into an error, redacted", async () => {
    const secrets = new Secrets(z.object({}), {});
    secrets.add(["hunter2"]);
    const e = await secrets.guard(() => Promise.reject("no hunter2 here")).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toBe("no [REDACTED] here");
  });
});
