/**
 * Docker commands as values (provider/commands/command.ts): each builder declares what the
 * command does (reads, a repeatable change, a pull). Pure: no I/O, every argument quoted by
 * shellJoin.
 */
import { Command } from "./command";
import { shellJoin, shellQuote, shellSplit } from "./shell";

/** Where the cord directory is mounted inside an app container. */
export { KAMAL_CORD as CORD_IN_CONTAINER } from "../config/values";

export type DockerOptionValue = string | number | boolean | (string | number)[];

/** `{ cpus: 2, "add-host": ["a:1.2.3.4"], init: true }` as docker flags, in key order. */
export function optionArgs(options: Record<string, DockerOptionValue> = {}): string[] {
  const args: string[] = [];
  for (const key of Object.keys(options).sort()) {
    const value = options[key];
    if (value === false) continue;
    if (value === true) args.push(`--${key}`);
    else if (Array.isArray(value)) for (const v of value) args.push(`--${key}`, String(v));
    else args.push(`--${key}`, String(value));
  }
  return args;
}

export function envArgs(env: Record<string, string> = {}): string[] {
  return Object.keys(env)
    .sort()
    .flatMap((k) => ["--env", `${k}=${env[k]}`]);
}

export function labelArgs(labels: Record<string, string> = {}): string[] {
  return Object.keys(labels)
    .sort()
    .flatMap((k) => ["--label", `${k}=${labels[k]}`]);
}

export function volumeArgs(volumes: readonly string[] = []): string[] {
  return volumes.flatMap((v) => ["--volume", v]);
}

export function loggingArgs(logging?: { driver?: string; options?: Record<string, string> }): string[] {
  if (!logging) return ["--log-opt", "max-size=10m"];
  const args = logging.driver ? ["--log-driver", logging.driver] : [];
  for (const k of Object.keys(logging.options ?? {}).sort()) args.push("--log-opt", `${k}=${logging.options![k]}`);
  return args;
}

/** Docker (Go) duration syntax. */
export function goDuration(seconds: number): string {
  return Number.isInteger(seconds) ? `${seconds}s` : `${Math.round(seconds * 1000)}ms`;
}

export function dockerLogin(server: string, username: string): Command {
  return Command.pull(shellJoin(["docker", "login", server, "--username", username, "--password-stdin"]));
}

export function imageId(ref: string): Command {
  return Command.read(shellJoin(["docker", "image", "inspect", "--format", "{{.Id}}", ref]));
}

export function pullImage(ref: string): Command {
  return Command.pull(shellJoin(["docker", "pull", "--quiet", ref]));
}

/** Another name for an image (a digest's image tagged as its version). */
export function tagImage(source: string, target: string): Command {
  return Command.change(shellJoin(["docker", "image", "tag", source, target]), { repeatable: true });
}

export function imageDigest(ref: string): Command {
  return Command.read(shellJoin(["docker", "image", "inspect", "--format", "{{.Id}} {{range .RepoDigests}}{{.}} {{end}}", ref]));
}

/** Names of containers carrying all the labels, newest first (docker ps order). */
export function containersWithLabels(
  labels: Record<string, string>,
  opts: { all?: boolean; status?: string | string[] } = {},
): Command {
  const filters = Object.keys(labels)
    .sort()
    .flatMap((k) => ["--filter", `label=${k}=${labels[k]}`]);
  // Docker ORs repeated status filters (and ANDs the label ones).
  for (const status of [opts.status ?? []].flat()) filters.push("--filter", `status=${status}`);
  return Command.read(shellJoin(["docker", "ps", ...(opts.all ? ["--all"] : []), ...filters, "--format", "{{.Names}}"]));
}

/** Every container of a service (any state), newest first, one per line: name, state, and
 * its role, destination and version labels, tab-separated. A scope (service, destination,
 * role) is found from these, as Kamal finds it by label. */
export function serviceContainers(service: string): Command {
  return Command.read(shellJoin([
    "docker", "ps", "--all", "--filter", `label=service=${service}`,
    "--format", '{{.Names}}\t{{.State}}\t{{.Label "role"}}\t{{.Label "destination"}}\t{{.Label "version"}}',
  ]));
}

/** Every container that belongs to some service, one per line: name, state, then its
 * labels as JSON (the routes it claims). */
export function scopedContainerLabels(): Command {
  return Command.pipe(
    Command.read(["docker", "ps", "--all", "--quiet", "--filter", "label=service"]),
    Command.read(["xargs", "-r", "docker", "container", "inspect", "--format", "{{.Name}}\t{{.State.Status}}\t{{json .Config.Labels}}"]),
  );
}

/** One Go-template view of a container (exit 1 when there is none). */
export function inspectContainer(name: string, format: string): Command {
  return Command.read(["docker", "container", "inspect", "--format", format, name]);
}

/** The names of containers (any state), optionally those whose name matches Docker's
 * `name=` filter (a regular expression). */
export function containerNames(matching?: string): Command {
  return Command.read(["docker", "ps", "--all", "--format", "{{.Names}}", ...(matching ? ["--filter", `name=${matching}`] : [])]);
}

/** "<status> <health or -> <restart count>" of a container. */
export function containerState(name: string): Command {
  return inspectContainer(name, "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.RestartCount}}");
}

/** "<id> <image id> <status> <version label>" of a container. */
export function containerSummary(name: string): Command {
  return inspectContainer(name, '{{.Id}} {{.Image}} {{.State.Status}} {{index .Config.Labels "version"}}');
}

export function containerHealthLog(name: string): Command {
  return inspectContainer(name, "{{json .State.Health}}");
}

export function containerLogs(name: string, lines = 30): Command {
  return Command.read(`${shellJoin(["docker", "logs", "--tail", String(lines), name])} 2>&1`);
}

/** Follows a container's output (both streams) until it exits. */
export function followLogs(name: string): Command {
  return Command.read(shellJoin(["docker", "logs", "--follow", name]));
}

/** Waits for a container to exit; prints its exit code. */
export function waitContainer(name: string): Command {
  return Command.read(shellJoin(["docker", "wait", name]));
}

/** A container's addresses, the one on Kamal 2's `kamal` network first when it has one (the
 * network the proxy shares with the apps), then one per network. */
export function containerIp(name: string): Command {
  return inspectContainer(name, '{{with index .NetworkSettings.Networks "kamal"}}{{.IPAddress}} {{end}}{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}');
}

/** "<network>=<ip> ..." of a container (or of a container ID's short form). */
export function containerNetworks(name: string): Command {
  return inspectContainer(name, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}");
}

/** Every running container as Traefik's Docker provider sees it: name, health, labels. */
export function runningContainerLabels(): Command {
  return Command.pipe(
    Command.read(["docker", "ps", "--quiet"]),
    Command.read(["xargs", "-r", "docker", "container", "inspect", "--format", "{{.Name}}\t{{if .State.Health}}{{.State.Health.Status}}{{end}}\t{{json .Config.Labels}}"]),
  );
}

/** The host directory mounted as the container's cord (empty if it has none): a mount from
 * a run directory's `cords/<container>-<id>`, Kamal 1's layout and ours, wherever the
 * container sees it (`healthcheck.cord`). */
export function cordSource(name: string): Command {
  return Command.pipe(
    inspectContainer(name, "{{range .Mounts}}{{println .Source}}{{end}}"),
    Command.read(["grep", "-E", "/cords/[^/]+$"], { engine: false }),
    Command.read(["head", "-n", "1"], { engine: false }),
  );
}

export function tieCord(hostDir: string): Command {
  return Command.allOf(Command.change(["mkdir", "-p", hostDir], { repeatable: true, engine: false }), Command.change(["touch", `${hostDir}/cord`], { repeatable: true, engine: false }));
}

export function cutCord(hostDir: string): Command {
  return Command.change(shellJoin(["rm", "-rf", hostDir]), { repeatable: true, engine: false });
}

/** Runs a command in a running container through its shell, as Docker's CMD-SHELL
 * health checks do. */
export function execInContainer(name: string, command: string): Command {
  return Command.read(shellJoin(["docker", "exec", name, "sh", "-c", command]));
}

export function renameContainer(from: string, to: string): Command {
  return Command.change(shellJoin(["docker", "rename", from, to]), { repeatable: false });
}

export function startContainer(name: string): Command {
  return Command.change(shellJoin(["docker", "start", name]), { repeatable: true });
}

export function stopContainer(name: string, waitSeconds: number): Command {
  const seconds = Math.ceil(waitSeconds);
  return Command.change(["docker", "stop", "--time", String(seconds), name], { repeatable: true, waitSeconds: seconds });
}

export function removeContainers(names: readonly string[], force = false): Command {
  return Command.change(shellJoin(["docker", "rm", ...(force ? ["--force"] : []), ...names]), { repeatable: true });
}

export function removeImages(refs: readonly string[]): Command {
  return Command.change(shellJoin(["docker", "rmi", ...refs]), { repeatable: true });
}

/** Image refs ("repo:tag") present for a repository. */
export function imagesOf(repository: string): Command {
  return Command.read(shellJoin(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository]));
}

/** The image refs that containers (running or not) were created from. */
export function imagesInUse(): Command {
  return Command.read(shellJoin(["docker", "ps", "--all", "--format", "{{.Image}}"]));
}

/** Writes `content`, given on stdin, to a file atomically (a temporary file beside it, then a
 * rename), so a watcher never reads half a file; the rename happens only when every byte
 * arrived: a client that dies mid-write (kill -9, a lost link) ends stdin early, and `cat`
 * takes that for the end of the file. For non-secret content: the mode is the umask's. */
export function writeFileAtomically(path: string, content: string): Command {
  const tmp = `${path}.tmp-${Date.now().toString(36)}`;
  const bytes = Buffer.byteLength(content);
  return Command.change(
    `{ cat > ${shellQuote(tmp)} && [ "$(wc -c < ${shellQuote(tmp)})" -eq ${bytes} ] && ${shellJoin(["mv", "-f", tmp, path])}; } || { ${shellJoin(["rm", "-f", tmp])}; exit 1; }`,
    { repeatable: true, engine: false },
  );
}

export function makeDirectories(dirs: readonly string[], mode?: string): Command {
  return Command.change(shellJoin(["mkdir", "-p", ...(mode ? ["-m", mode] : []), ...dirs]), { repeatable: true, engine: false });
}

export function removePaths(paths: readonly string[]): Command {
  return Command.change(shellJoin(["rm", "-rf", ...paths]), { repeatable: true, engine: false });
}

export interface RunSpec {
  name: string;
  /** `docker create` instead of `docker run`: ready to start later. */
  createOnly?: boolean;
  image: string;
  detach?: boolean;
  restart?: string;
  publish?: readonly string[];
  env?: Record<string, string>;
  envFile?: string;
  labels?: Record<string, string>;
  volumes?: readonly string[];
  health?: { cmd: string; interval: number; retries: number };
  logging?: { driver?: string; options?: Record<string, string> };
  options?: Record<string, DockerOptionValue>;
  cmd?: string | readonly string[];
}

/** `docker run` with Kamal's argument order: identity, wiring, health, options, image, cmd. */
/** Networks Docker provides itself: never created. */
const DOCKER_NETWORKS = /^(bridge|host|none|default|container:.*)$/;

/** Creates a user-defined network (Kamal 2's `kamal`) unless it exists: idempotent. dockerd's
 * own duplicate-name check is not atomic (two concurrent creates make two networks of one
 * name, and every later use of the name is "ambiguous"), so creators on a host take turns by
 * a mkdir lock; one left by a killed command is waited out for 10 s, then ignored. */
export function ensureNetwork(name: string): Command {
  const inspect = `${shellJoin(["docker", "network", "inspect", name])} >/dev/null 2>&1`;
  const lock = shellQuote(`/tmp/.kamal-network-${name}.lock`);
  const create = `${shellJoin(["docker", "network", "create", name])} >/dev/null`;
  return Command.change(`{ ${inspect} || { i=0; until mkdir ${lock} 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done; ${inspect} || ${create}; r=$?; rmdir ${lock} 2>/dev/null; [ $r -eq 0 ]; }; }`, { repeatable: true });
}

/** The networks a container's options name (`network`/`net`, one or several), in order. */
export function networksOf(options: RunSpec["options"]): string[] {
  return [options?.network, options?.net].flat().filter((n): n is string => typeof n === "string");
}

/** The user-defined networks a container joins through its options (Docker's own excluded). */
export function userNetworks(options: RunSpec["options"]): string[] {
  return networksOf(options).filter((n) => !DOCKER_NETWORKS.test(n));
}

/** `docker run`/`create`; the user-defined networks the options name are created first. A
 * container on several networks (Kamal 2's `kamal` and one of the app's own) is created on
 * the first, connected to the others, then started: engines before Docker 25 take only one
 * network at creation, and the app never runs half-connected. */
export function runContainer(spec: RunSpec): Command {
  const networks = networksOf(spec.options);
  const ensure = userNetworks(spec.options).map(ensureNetwork);
  const steps: Command[] = [...ensure];
  if (networks.length <= 1) steps.push(Command.change(dockerRun(spec), { repeatable: false }));
  else {
    const { network: _n, net: _m, ...rest } = spec.options ?? {};
    steps.push(Command.change(dockerRun({ ...spec, createOnly: true, options: { ...rest, network: networks[0] } }), { repeatable: false }));
    for (const n of networks.slice(1)) steps.push(Command.change(shellJoin(["docker", "network", "connect", n, spec.name]), { repeatable: false }));
    if (!spec.createOnly) steps.push(Command.change(`${shellJoin(["docker", "start", spec.name])} >/dev/null`, { repeatable: false }));
  }
  return steps.length === 1 ? steps[0] : Command.composed(steps.map((c) => c.text).join(" && "), steps);
}

function dockerRun(spec: RunSpec): string {
  const argv = ["docker", spec.createOnly ? "create" : "run"];
  if (!spec.createOnly && spec.detach !== false) argv.push("--detach");
  if (spec.restart) argv.push("--restart", spec.restart);
  argv.push("--name", spec.name);
  for (const p of spec.publish ?? []) argv.push("--publish", p);
  argv.push(...envArgs(spec.env));
  if (spec.envFile) argv.push("--env-file", spec.envFile);
  argv.push(...volumeArgs(spec.volumes));
  argv.push(...labelArgs(spec.labels));
  if (spec.health) {
    argv.push(
      "--health-cmd", spec.health.cmd,
      "--health-interval", goDuration(spec.health.interval),
      "--health-retries", String(spec.health.retries),
    );
  }
  argv.push(...loggingArgs(spec.logging));
  argv.push(...optionArgs(spec.options));
  argv.push(spec.image);
  if (spec.cmd !== undefined) argv.push(...(typeof spec.cmd === "string" ? shellSplit(spec.cmd) : spec.cmd));
  return shellJoin(argv);
}
