/**
 * Kamal's day-two commands on the hosts: accessory, app, proxy, server, registry, secrets.
 */
import { SECRETS_USAGE, secrets } from "../secrets";
import { UsageError } from "../usage";
import { type Command, engine, engineOf, hostCommands, intOption, load, logsOptions, out, reportErrors, str } from "./common";
import { inspectCommands } from "./inspect";

export const kamalCommands: Record<string, Command> = {
  accessory: {
    summary: "kamal accessory: boot|reboot (apply deploy.yml's changes: a deploy leaves running accessories as they are), start|stop|restart|details|exec|logs",
    usage: `pulumi-kamal accessory boot|reboot|start|stop|restart|details NAME|all [--host H] | exec NAME -- CMD | logs NAME [logs options]
  boot NAME     boot it if it is not deployed, or apply its pending changes
  reboot NAME   apply its changes and run its container again (stopped, removed, run; its data kept)
  start|stop|restart|details NAME   its container on each host; exec NAME -- CMD   a command inside it`,
    options: logsOptions,
    async run(v, pos) {
      const [sub, name, ...rest] = pos;
      if (!sub || !name) throw new UsageError("accessory needs a command and a name (or all): pulumi-kamal accessory reboot db");
      if (sub === "logs") return inspectCommands.logs.run(v, [name]);
      if (sub === "boot" || sub === "reboot") {
        const [o, d] = await Promise.all([engineOf(v), load(v)]);
        await (await engine()).accessory(o, d, sub, [name, ...rest]);
        return 0;
      }
      return reportErrors(await (await hostCommands()).accessory(sub, await load(v), name, str(v.host), rest, out));
    },
  },
  app: {
    summary: "kamal app: stop|start the app's containers, containers|images on the hosts, version running",
    usage: "pulumi-kamal app stop|start|containers|images|version [--role R] [--host H]",
    options: { role: { type: "string" }, host: { type: "string" } },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError("app needs one of: stop, start, containers, images, version");
      return reportErrors(await (await hostCommands()).app(pos[0], await load(v), { service: str(v.service), role: str(v.role), host: str(v.host) }, out));
    },
  },
  proxy: {
    summary: "kamal proxy (Traefik here): reboot (restart with the port handed over, the proxy-reboot hooks around it), start|stop|restart|details, logs",
    usage: `pulumi-kamal proxy reboot [--rolling] [--host H] | start|stop|restart|details|logs [--host H] [logs options]
  reboot       each host's Traefik restarted by an update, its port handed over (no connection
               refused); pre-proxy-reboot and post-proxy-reboot hooks before and after
  --rolling    one host after another, the hooks around each`,
    options: { ...logsOptions, rolling: { type: "boolean" }, confirmed: { type: "boolean", short: "y" } },
    async run(v, pos) {
      if (pos[0] === "logs") return inspectCommands.logs.run(v, ["traefik"]);
      if (pos[0] === "reboot" && pos.length === 1) return proxyReboot(v);
      if (v.rolling) throw new UsageError("--rolling is proxy reboot's");
      if (pos.length !== 1) throw new UsageError("proxy needs one of: reboot, start, stop, restart, details, logs");
      return reportErrors(await (await hostCommands()).proxy(pos[0], await load(v), str(v.host), out));
    },
  },
  server: {
    summary: "kamal server exec: a command on every host of the stack (or one), output prefixed with the host",
    usage: "pulumi-kamal server exec [--host H] [--raw] -- CMD [ARG...]\n  --raw   each host's output as it is, not prefixed with the host",
    options: { host: { type: "string" }, raw: { type: "boolean" } },
    async run(v, pos) {
      const [sub, ...cmd] = pos;
      if (sub !== "exec") throw new UsageError('server needs exec: pulumi-kamal server exec -- "df -h /"');
      return reportErrors(await (await hostCommands()).serverExec(await load(v), str(v.host), cmd, out, !!v.raw));
    },
  },
  registry: {
    summary: "kamal registry login|logout on every app host (the password on stdin)",
    usage: "pulumi-kamal registry login|logout [--host H]",
    options: { host: { type: "string" } },
    async run(v, pos) {
      return reportErrors(await (await hostCommands()).registry(pos[0] ?? "", await load(v), str(v.host), out));
    },
  },
  prune: {
    summary: "kamal prune: stopped containers beyond the last N versions (containers), unused images (images), or both (all), under the deploy lock",
    usage: `pulumi-kamal prune containers|images|all [--retain N] [--role R] [--host H]
  --retain N   earlier versions kept, stopped, for rollbacks (default: the role's retainContainers)`,
    options: { retain: { type: "string" }, role: { type: "string" }, host: { type: "string" } },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError("prune needs one of: containers, images, all");
      const { prune } = await import("../prune");
      return reportErrors(await prune(pos[0], await load(v), { service: str(v.service), role: str(v.role), host: str(v.host) }, intOption(v.retain, "retain"), out));
    },
  },
  secrets: {
    summary: "kamal secrets: fetch from a vault (1Password, Bitwarden, AWS…), extract one, print the project's",
    usage: SECRETS_USAGE,
    options: {},
    raw: true,
    async run(v, pos) {
      return secrets(pos, str(v.cwd) ?? process.cwd(), out);
    },
  },
};

/** `proxy reboot`: the hooks from the project's deploy.yml (as `bootstrap` runs docker-setup). */
async function proxyReboot(v: Record<string, unknown>): Promise<number> {
  const [o, d, { proxyReboot: reboot }, { runProjectHook }, { projectOf, stackConfig }, { STACK_CONFIG }] = await Promise.all([
    engineOf(v), load(v), import("../engine"), import("../projectHook"), import("../pulumi"), import("../programConfig"),
  ]);
  const project = projectOf(o.dir);
  const destination = project ? stackConfig(o.dir, project, o.stack)[STACK_CONFIG.destination] : undefined;
  const hook = (name: string) => (hosts: string[]) => runProjectHook({ dir: o.dir, destination, hook: name, hosts, command: "proxy", subcommand: "reboot", write: o.write });
  await reboot(o, d, { rolling: !!v.rolling, host: str(v.host), before: hook("pre-proxy-reboot"), after: hook("post-proxy-reboot") });
  return 0;
}
