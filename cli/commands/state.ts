/**
 * The commands about where the stacks' state is and who holds it: `state move` (to a
 * backend a team shares) and `unlock` (a stack's lock left by a deploy that was killed).
 */
import { UsageError } from "../usage";
import { type Command, engineOf, out, str } from "./common";

export const stateCommands: Record<string, Command> = {
  state: {
    summary: "state move --to URL: the project's stacks moved to another backend (s3://, gs://, azblob://, Pulumi Cloud) with their history, nothing redeployed",
    usage: `pulumi-kamal state move --to URL [--stack S]
  --to URL     the backend: s3://BUCKET[/PREFIX][?endpoint=…&region=…], gs://BUCKET, azblob://CONTAINER, file://PATH, https://api.pulumi.com
  --stack S    one stack (default: every stack of the project)
  Between file:// and s3:// backends each stack's checkpoint, history and backups are copied as
  they are; to other backends a stack moves by export and import (without its history).`,
    options: { to: { type: "string" } },
    async run(v, pos) {
      if (pos[0] !== "move" || pos.length !== 1) throw new UsageError("state needs move: pulumi-kamal state move --to s3://BUCKET");
      const to = str(v.to);
      if (!to) throw new UsageError("state move needs --to URL (the backend to move the stacks to)");
      const { moveState } = await import("../stateMove");
      await moveState({ dir: str(v.cwd) ?? process.cwd(), to, stack: str(v.stack), write: out });
      return 0;
    },
  },
  unlock: {
    summary: "after a deploy was killed: clear the stack's lock in its backend (pulumi cancel) and read what the hosts run (pulumi refresh); the hosts' deploy locks are `lock release`",
    usage: "pulumi-kamal unlock",
    options: {},
    async run(v) {
      const o = await engineOf(v);
      await (await import("../engine")).unlockStack(o.dir, o.stack, out);
      out("The next deploy converges: what the killed deploy left half done is done again");
      return 0;
    },
  },
};
