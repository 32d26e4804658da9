/**
 * The commands that change what runs through the Pulumi engine: init, bootstrap, setup,
 * deploy, redeploy, build, rollback, preview, maintenance, live.
 */
import { UsageError } from "../usage";
import { type Command, deployOptions, engine, engineOf, load, out, reportErrors, runBootstrap, servicesOf, str, updateResult, VERSION_HELP, versionOptions } from "./common";

export const deployCommands: Record<string, Command> = {
  init: {
    summary: "make this Kamal project (config/deploy.yml, destinations, .kamal/secrets) a Pulumi project: Pulumi.yaml, a KamalApp program, a stack per destination",
    usage: `pulumi-kamal init [--known-hosts FILE | --yes] [--ssh-key PATH] [--backend URL] [--secrets-provider P]
      --known-hosts FILE    take the hosts' keys from this file (verified out of band)
      --yes                 trust the keys the hosts present (printed) without asking
      --ssh-key PATH        the private key to log in with (default: the ssh-agent, else ~/.ssh/id_ed25519)
      --backend URL         where the state is kept (default: file://./.kamal/pulumi/state, this machine's);
                            a team's: s3://BUCKET[/PREFIX][?endpoint=…&region=…], gs://BUCKET, azblob://CONTAINER,
                            https://api.pulumi.com (Pulumi Cloud)
      --secrets-provider P  how the stacks' secrets are encrypted: passphrase (default: PULUMI_CONFIG_PASSPHRASE),
                            awskms://…, gcpkms://…, azurekeyvault://…, hashivault://…, default (Pulumi Cloud's)
  In a checkout of a project init made (a teammate's clone, CI): links the program's packages, lists the stacks.`,
    options: { "known-hosts": { type: "string" }, yes: { type: "boolean", short: "y" }, "ssh-key": { type: "string" }, backend: { type: "string" }, "secrets-provider": { type: "string" } },
    async run(v) {
      const { init, terminalAsk } = await import("../init");
      await init({ dir: str(v.cwd) ?? process.cwd(), knownHosts: str(v["known-hosts"]), yes: !!v.yes, sshKey: str(v["ssh-key"]), backend: str(v.backend), secretsProvider: str(v["secrets-provider"]), write: out, ask: terminalAsk() });
      return 0;
    },
  },
  bootstrap: {
    summary: "make new servers ready: Docker installed (the distribution's package) and running, the SSH user in the docker group, the networks, ~/.kamal",
    usage: `pulumi-kamal bootstrap [--host H] [--json]
  --host H   one host (default: every host of the stack: deploy.yml's, else the deployed ones)
  --json     the report for scripts`,
    options: { host: { type: "string" }, json: { type: "boolean" } },
    run: (v) => runBootstrap(v, { host: str(v.host), json: !!v.json }),
  },
  setup: {
    summary: "kamal setup: bootstrap the hosts, then deploy (accessories, Traefik and the apps)",
    usage: `pulumi-kamal setup [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      // With --json, bootstrap's report goes to stderr with the progress: stdout is the result.
      const boot = await runBootstrap(v, v.json ? { write: (t) => process.stderr.write(`${t}\n`) } : {});
      if (boot) return boot;
      return updateResult(v, "setup", async (o) => (await engine()).deploy(o, deployOptions(v)));
    },
  },
  deploy: {
    summary: "kamal deploy: the image built from the current commit and pushed, then on every host, health-gated, zero downtime",
    usage: `pulumi-kamal deploy [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      return updateResult(v, "deploy", async (o) => (await engine()).deploy(o, deployOptions(v)));
    },
  },
  redeploy: {
    summary: "deploy the apps only (the image built and pushed, containers, env files, release, hooks): not accessories or Traefik",
    usage: `pulumi-kamal redeploy [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      return updateResult(v, "redeploy", async (o) => (await engine()).redeploy(o, deployOptions(v)));
    },
  },
  build: {
    summary: "kamal build: push (build the current commit's image and push it), pull (onto every app host, by digest), details, create|remove (the builder), dev (the working directory, tagged -dirty)",
    usage: `pulumi-kamal build push [--version V] | pull | details | create | remove | dev [--output TYPE] [--no-cache]
  push       the stack's image built from the commit (or --version) and pushed; nothing deployed
  pull       the built image pulled onto every app host, by its digest
  details    which builder builds it; Docker's contexts and buildx builders
  create     the buildx builder the builds use (none for the docker driver)
  remove     that builder removed (the next build creates it again)
  dev        the working directory built as it is (uncommitted and untracked files included),
             tagged <version>-dirty, into the local engine (--output: buildx's export type,
             default docker); nothing pushed or deployed`,
    options: { version: { type: "string" }, "version-key": { type: "string" }, output: { type: "string" }, "no-cache": { type: "boolean" } },
    async run(v, pos) {
      const [sub, ...rest] = pos;
      const subs = ["push", "pull", "details", "create", "remove", "dev"];
      if (!sub || rest.length || !subs.includes(sub)) throw new UsageError(`build needs one of: ${subs.join(", ")}`);
      if ((v.output !== undefined || v["no-cache"]) && sub !== "dev") throw new UsageError(`build ${sub}: --output and --no-cache are build dev's`);
      if (sub === "push") {
        const [o, d, { buildPush }] = await Promise.all([engineOf(v), load(v), import("../build")]);
        await buildPush(o, d, { version: str(v.version), versionKey: str(v["version-key"]), service: str(v.service) });
        return 0;
      }
      const [d, b] = await Promise.all([load(v), import("../build")]);
      if (sub === "pull") return reportErrors((await b.buildPull(d, out)).errors);
      if (sub === "create") await b.buildCreate(d, out);
      else if (sub === "remove") await b.buildRemove(d, out);
      else if (sub === "dev") await b.buildDev(d, { output: str(v.output) ?? "docker", noCache: v["no-cache"] === true }, out);
      else await b.buildDetails(d, out);
      return 0;
    },
  },
  rollback: {
    summary: "back to VERSION, whose stopped containers the hosts kept (no pull)",
    usage: "pulumi-kamal rollback VERSION [--version-key K] [--json]",
    options: { "version-key": { type: "string" }, json: { type: "boolean" } },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError("rollback needs the version to go back to: pulumi-kamal rollback VERSION (pulumi-kamal details shows what runs)");
      const d = await load(v);
      return updateResult(v, "rollback", async (o) => (await engine()).rollback(o, d, pos[0], { versionKey: str(v["version-key"]) }));
    },
  },
  preview: {
    summary: "pulumi preview --diff: what a deploy would change, on which host",
    usage: `pulumi-kamal preview [--version V] [--skip-push]\n${VERSION_HELP}`,
    options: versionOptions,
    async run(v) {
      return updateResult(v, "preview", async (o) => (await engine()).preview(o, deployOptions(v)));
    },
  },
  maintenance: {
    summary: "Traefik answers 503 with the maintenance page; the containers keep running (live undoes it)",
    usage: "pulumi-kamal maintenance [--message M] [--service S]\n  -m, --message M   shown on the page",
    options: { message: { type: "string", short: "m" } },
    async run(v) {
      const [o, d] = await Promise.all([engineOf(v), load(v)]);
      await (await engine()).maintenance(o, d, await servicesOf(d, v), { message: str(v.message) });
      return 0;
    },
  },
  live: {
    summary: "out of maintenance mode: Traefik routes to the containers again",
    usage: "pulumi-kamal live [--service S]",
    options: {},
    async run(v) {
      const [o, d] = await Promise.all([engineOf(v), load(v)]);
      await (await engine()).maintenance(o, d, await servicesOf(d, v), false);
      return 0;
    },
  },
};
