/**
 * Docker commands as shell strings. Pure: no I/O, every argument quoted by shellJoin.
 */
import { allOf, pipe, shellJoin, shellQuote, shellSplit, type CommandPolicy } from "./shell";

/** Where the cord directory is mounted inside an app container. */
export const CORD_IN_CONTAINER = "/tmp/kamal-cord";

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

export function dockerLogin(server: string, username: string): string {
  return shellJoin(["docker", "login", server, "--username", username, "--password-stdin"]);
}

export function imageId(ref: string): string {
  return shellJoin(["docker", "image", "inspect", "--format", "{{.Id}}", ref]);
}

export function pullImage(ref: string): string {
  return shellJoin(["docker", "pull", "--quiet", ref]);
}

/** Another name for an image (a digest's image tagged as its version). */
export function tagImage(source: string, target: string): string {
  return shellJoin(["docker", "image", "tag", source, target]);
}

export function imageDigest(ref: string): string {
  return shellJoin(["docker", "image", "inspect", "--format", "{{.Id}} {{range .RepoDigests}}{{.}} {{end}}", ref]);
}

/** Names of containers carrying all the labels, newest first (docker ps order). */
export function containersWithLabels(
  labels: Record<string, string>,
  opts: { all?: boolean; status?: string | string[] } = {},
): string {
  const filters = Object.keys(labels)
    .sort()
    .flatMap((k) => ["--filter", `label=${k}=${labels[k]}`]);
  // Docker ORs repeated status filters (and ANDs the label ones).
  for (const status of [opts.status ?? []].flat()) filters.push("--filter", `status=${status}`);
  return shellJoin(["docker", "ps", ...(opts.all ? ["--all"] : []), ...filters, "--format", "{{.Names}}"]);
}

/** Every container of a service (any state), newest first, one per line: name, state, and
 * its role, destination and version labels, tab-separated. A scope (service, destination,
 * role) is found from these, as Kamal finds it by label. */
export function serviceContainers(service: string): string {
  return shellJoin([
    "docker", "ps", "--all", "--filter", `label=service=${service}`,
    "--format", '{{.Names}}\t{{.State}}\t{{.Label "role"}}\t{{.Label "destination"}}\t{{.Label "version"}}',
  ]);
}

/** Every container that belongs to some service, one per line: name, state, then its
 * labels as JSON (the routes it claims). */
export function scopedContainerLabels(): string {
  return pipe(
    shellJoin(["docker", "ps", "--all", "--quiet", "--filter", "label=service"]),
    shellJoin(["xargs", "-r", "docker", "container", "inspect", "--format", "{{.Name}}\t{{.State.Status}}\t{{json .Config.Labels}}"]),
  );
}

/** One Go-template view of a container. */
function inspectContainer(name: string, format: string): string {
  return shellJoin(["docker", "container", "inspect", "--format", format, name]);
}

/** "<status> <health or -> <restart count>" of a container. */
export function containerState(name: string): string {
  return inspectContainer(name, "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.RestartCount}}");
}

/** "<id> <image id> <status> <version label>" of a container. */
export function containerSummary(name: string): string {
  return inspectContainer(name, '{{.Id}} {{.Image}} {{.State.Status}} {{index .Config.Labels "version"}}');
}

export function containerHealthLog(name: string): string {
  return inspectContainer(name, "{{json .State.Health}}");
}

export function containerLogs(name: string, lines = 30): string {
  return `${shellJoin(["docker", "logs", "--tail", String(lines), name])} 2>&1`;
}

/** Follows a container's output (both streams) until it exits. */
export function followLogs(name: string): string {
  return shellJoin(["docker", "logs", "--follow", name]);
}

/** Waits for a container to exit; prints its exit code. */
export function waitContainer(name: string): string {
  return shellJoin(["docker", "wait", name]);
}

export function containerIp(name: string): string {
  return inspectContainer(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}");
}

/** "<network>=<ip> ..." of a container (or of a container ID's short form). */
export function containerNetworks(name: string): string {
  return inspectContainer(name, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}");
}

/** Every running container as Traefik's Docker provider sees it: name, health, labels. */
export function runningContainerLabels(): string {
  return pipe(
    shellJoin(["docker", "ps", "--quiet"]),
    shellJoin(["xargs", "-r", "docker", "container", "inspect", "--format", "{{.Name}}\t{{if .State.Health}}{{.State.Health.Status}}{{end}}\t{{json .Config.Labels}}"]),
  );
}

/** The host directory mounted as the container's cord (empty if it has none). */
export function cordSource(name: string): string {
  return inspectContainer(name, `{{range .Mounts}}{{if eq .Destination "${CORD_IN_CONTAINER}"}}{{.Source}}{{end}}{{end}}`);
}

export function tieCord(hostDir: string): string {
  return allOf(shellJoin(["mkdir", "-p", hostDir]), shellJoin(["touch", `${hostDir}/cord`]));
}

export function cutCord(hostDir: string): string {
  return shellJoin(["rm", "-rf", hostDir]);
}

/** Runs a command in a running container through its shell, as Docker's CMD-SHELL
 * health checks do. */
export function execInContainer(name: string, command: string): string {
  return shellJoin(["docker", "exec", name, "sh", "-c", command]);
}

export function renameContainer(from: string, to: string): string {
  return shellJoin(["docker", "rename", from, to]);
}

export function startContainer(name: string): string {
  return shellJoin(["docker", "start", name]);
}

export function stopContainer(name: string, waitSeconds: number): string {
  return shellJoin(["docker", "stop", "--time", String(Math.ceil(waitSeconds)), name]);
}

export function removeContainers(names: readonly string[], force = false): string {
  return shellJoin(["docker", "rm", ...(force ? ["--force"] : []), ...names]);
}

export function removeImages(refs: readonly string[]): string {
  return shellJoin(["docker", "rmi", ...refs]);
}

/** Image refs ("repo:tag") present for a repository. */
export function imagesOf(repository: string): string {
  return shellJoin(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository]);
}

/** The image refs that containers (running or not) were created from. */
export function imagesInUse(): string {
  return shellJoin(["docker", "ps", "--all", "--format", "{{.Image}}"]);
}

/** Writes stdin to a file atomically (a temporary file beside it, then a rename), so a
 * watcher never reads half a file. For non-secret content: the mode is the umask's. */
export function writeFileAtomically(path: string): string {
  const tmp = `${path}.tmp-${Date.now().toString(36)}`;
  return `${shellJoin(["cat"])} > ${shellQuote(tmp)} && ${shellJoin(["mv", "-f", tmp, path])}`;
}

export function makeDirectories(dirs: readonly string[], mode?: string): string {
  return shellJoin(["mkdir", "-p", ...(mode ? ["-m", mode] : []), ...dirs]);
}

export function removePaths(paths: readonly string[]): string {
  return shellJoin(["rm", "-rf", ...paths]);
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
export function ensureNetwork(name: string): string {
  const inspect = `${shellJoin(["docker", "network", "inspect", name])} >/dev/null 2>&1`;
  const lock = shellQuote(`/tmp/.kamal-network-${name}.lock`);
  const create = `${shellJoin(["docker", "network", "create", name])} >/dev/null`;
  return `{ ${inspect} || { i=0; until mkdir ${lock} 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done; ${inspect} || ${create}; r=$?; rmdir ${lock} 2>/dev/null; [ $r -eq 0 ]; }; }`;
}

/** The user-defined network a container joins through its `network` option, if any. */
export function userNetwork(options: RunSpec["options"]): string | undefined {
  const n = options?.network ?? options?.net;
  return typeof n === "string" && !DOCKER_NETWORKS.test(n) ? n : undefined;
}

/** `docker run`/`create`; a user-defined network named by the options is created first. */
export function runContainer(spec: RunSpec): string {
  const network = userNetwork(spec.options);
  const run = dockerRun(spec);
  return network ? `${ensureNetwork(network)} && ${run}` : run;
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

export type { CommandPolicy };

/** The docker CLI could not reach dockerd: nothing happened. */
export const ENGINE_DOWN = /Cannot connect to the Docker daemon|Is the docker daemon running\?/;

const READ_COMMAND = /^(docker (container inspect|image inspect|network inspect|inspect|ps|images|logs|exec|wait)|cat|sha256sum|find|printf|stat|test|true|base64)\b/;
// `docker network create` and `connect` are only built inside an existence check.
const REPEATABLE_CHANGE = /^(docker (stop|start|rm|rmi|kill|pull|login|image tag|network create|network connect)|mkdir -p|rm|touch|mv -f|umask \d+)\b/;

/**
 * The policy of a command built here, from its leading words: reads and repeatable changes
 * survive a reconnect, `docker run`/`create`/`rename` (and anything unknown) never run twice.
 * A command line of several commands is repeatable only if each is; the longest deadline
 * applies. A write of stdin to a file (`cat > tmp && mv -f`) is repeatable: same content.
 */
export function commandPolicy(command: string): CommandPolicy {
  const c = command.trim();
  if (/^cat > \S+ && mv -f \S+ \S+$/.test(c)) return { repeatable: true, deadline: "change", extraSeconds: 0, notReached: ENGINE_DOWN };
  const parts = c
    .split(/&&|\|\||;|\|/)
    .map((p) => p.replace(/^[\s{}]+|[\s{}]+$/g, "").replace(/^xargs -r /, ""))
    .filter(Boolean)
    .map(onePolicy);
  const rank = { read: 0, change: 1, pull: 2 } as const;
  const policy: CommandPolicy = {
    repeatable: parts.every((p) => p.repeatable),
    deadline: parts.reduce<CommandPolicy["deadline"]>((d, p) => (rank[p.deadline] > rank[d] ? p.deadline : d), "read"),
    extraSeconds: parts.reduce((n, p) => n + p.extraSeconds, 0),
  };
  // One docker invocation that could not reach dockerd did nothing; nor did a repeatable line.
  const single = parts.length === 1 && /^docker /.test(c);
  return policy.repeatable || single ? { ...policy, notReached: ENGINE_DOWN } : policy;
}

function onePolicy(c: string): CommandPolicy {
  if (/^docker (pull|login)\b/.test(c)) return { repeatable: true, deadline: "pull", extraSeconds: 0 };
  const stop = /^docker stop --time (\d+)\b/.exec(c);
  if (stop) return { repeatable: true, deadline: "change", extraSeconds: Number(stop[1]) };
  if (READ_COMMAND.test(c) && !/^cat\s*>/.test(c)) return { repeatable: true, deadline: "read", extraSeconds: 0 };
  return { repeatable: REPEATABLE_CHANGE.test(c), deadline: "change", extraSeconds: 0 };
}
