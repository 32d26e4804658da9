/** The bench's build + deploy figures (see run.ts, 2a). */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { makeBuildApp } from "../test/helpers/buildApp";
import { PulumiProject, scratchProject } from "../testbed/pulumi";
import { repoRoot, sandbox } from "../testbed/sandbox";
import { timing, type Timing } from "./stats";


/** `pulumi up` of a program that builds the app (Image) and deploys it (Service), after a
 * one-line commit: `reps` times with BuildKit's cache as the last build left it, `reps` times
 * with it emptied first (the layers are still in the registry: what a CI runner sees). */
export async function buildAndDeploy(opts: {
  reps: number;
  timedUp: (p: PulumiProject) => Promise<{ ms: number }>;
  set: (p: PulumiProject, key: string, value: string, secret?: boolean) => Promise<void>;
}): Promise<{ warm: Timing; cold: Timing }> {
  const { reps, timedUp, set } = opts;
  process.env.DOCKER_HOST = sandbox().deployer.dockerHost;
  const app = makeBuildApp("bench-build", { secret: "bench-build-secret" });
  const p = new PulumiProject(
    scratchProject("bench-build", {
      "Pulumi.yaml": "name: kp-bench-build\nruntime: nodejs\n",
      "package.json": JSON.stringify({ name: "kp-bench-build", main: "index.ts" }),
      "index.ts": `export * from ${JSON.stringify(path.join(repoRoot, "test/programs/build"))};\n`,
    }),
    "bench",
  );
  await p.ensureStack();
  await set(p, "appRoot", app.dir);
  await set(p, "buildSecret", "bench-build-secret", true);
  try {
    await timedUp(p);
    const warm: number[] = [];
    const cold: number[] = [];
    for (let i = 0; i < reps; i++) {
      app.commit(`warm-${i}`);
      warm.push((await timedUp(p)).ms);
    }
    for (let i = 0; i < reps; i++) {
      execFileSync("docker", ["builder", "prune", "--all", "--force"], { stdio: "ignore" });
      app.commit(`cold-${i}`);
      cold.push((await timedUp(p)).ms);
    }
    return { warm: timing(warm), cold: timing(cold) };
  } finally {
    await p.destroy();
    delete process.env.DOCKER_HOST;
  }
}

