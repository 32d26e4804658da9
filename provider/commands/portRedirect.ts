/**
 * Handing a published port from one proxy container to another without refusing a
 * connection. Docker cannot publish one host port for two containers, and the gap between
 * stopping one and starting the next refuses new connections. Instead, for the length of
 * the change, the kernel sends new connections for the port to a bridge proxy (a container
 * with no published port) by a DNAT rule placed before Docker's own; connections already
 * open stay where they are (connection tracking), so the old proxy drains them while the
 * new one takes the port; then the rule goes and new connections reach the new proxy.
 *
 * Every rule carries the comment `kamal-handover-<id>`, so an interrupted change leaves
 * rules that the next change finds and removes. Pure: command values only.
 */
import { Command } from "./command";
import { allOf, pipe, shellJoin } from "./shell";

export const HANDOVER_TAG = "kamal-handover";

export interface Redirect {
  /** The host port (and optional host address) that Docker publishes: 80, "10.0.0.5:80". */
  hostPort: number | string;
  /** Where new connections go meanwhile: the bridge proxy's address and port. */
  to: string;
  toPort: number;
  /** Names this change's rules. */
  id: string;
}

/** `iptables` as the SSH user may run it: as root, or through passwordless sudo. */
export function iptables(sudo: boolean, args: string[]): string {
  return shellJoin([...(sudo ? ["sudo", "-n"] : []), "iptables", "-w", "5", ...args]);
}

function matchOf(hostPort: number | string): string[] {
  const text = String(hostPort);
  const colon = text.lastIndexOf(":");
  const address = colon > 0 ? text.slice(0, colon) : undefined;
  const port = colon > 0 ? text.slice(colon + 1) : text;
  return [...(address && address !== "0.0.0.0" ? ["-d", address] : []), "-p", "tcp", "--dport", port, "-m", "addrtype", "--dst-type", "LOCAL"];
}

function comment(id: string): string[] {
  return ["-m", "comment", "--comment", `${HANDOVER_TAG}-${id}`];
}

/** The rules of a redirect, each as `[table, chain, ...rule]`. Connections from outside
 * (PREROUTING) and from the host itself to its own addresses (OUTPUT, as Docker's own
 * rules) are redirected; Docker's FORWARD policy admits only published containers, so the
 * bridge proxy is admitted in DOCKER-USER, the chain Docker leaves to its users. */
function rules(r: Redirect): string[][] {
  const dnat = ["-j", "DNAT", "--to-destination", `${r.to}:${r.toPort}`];
  return [
    ["nat", "PREROUTING", ...matchOf(r.hostPort), ...comment(r.id), ...dnat],
    ["nat", "OUTPUT", "!", "-d", "127.0.0.0/8", ...matchOf(r.hostPort), ...comment(r.id), ...dnat],
    ["filter", "DOCKER-USER", "-d", r.to, "-p", "tcp", "--dport", String(r.toPort), ...comment(r.id), "-j", "ACCEPT"],
  ];
}

/** Inserts the redirect ahead of Docker's rules: new connections go to `to` from now on. */
export function addRedirect(r: Redirect, sudo: boolean): Command {
  // Never twice: a second insert would leave a second copy of each rule.
  return Command.change(allOf(...rules(r).map(([table, chain, ...rule]) => iptables(sudo, ["-t", table, "-I", chain, "1", ...rule]))), { repeatable: false, engine: false });
}

/** Removes the redirect's NAT rules (new connections reach Docker's own rules again), or
 * with `all`, the admission rule too (once the bridge proxy has drained). Missing rules
 * are fine. */
export function removeRedirect(r: Redirect, sudo: boolean, all = false): Command {
  const chosen = rules(r).filter(([table]) => all || table === "nat");
  return Command.change(chosen.map(([table, chain, ...rule]) => `${iptables(sudo, ["-t", table, "-D", chain, ...rule])} 2>/dev/null; `).join("") + "true", { repeatable: true, engine: false });
}

/** Lists the handover rules left on the host (by any change): `-A ...` lines of iptables -S. */
export function listRedirects(sudo: boolean): Command {
  const text = ["nat PREROUTING", "nat OUTPUT", "filter DOCKER-USER"]
    .map((tc) => {
      const [table, chain] = tc.split(" ");
      return pipe(`${iptables(sudo, ["-t", table, "-S", chain])} 2>/dev/null`, shellJoin(["sed", "-n", `s/^/${table} /; /${HANDOVER_TAG}-/p`]));
    })
    .join("; ");
  return Command.read(text, { engine: false });
}

/** Whether iptables can be changed here: lists a chain Docker made (needs root or sudo). */
export function probeIptables(sudo: boolean): Command {
  return Command.read(iptables(sudo, ["-t", "nat", "-S", "DOCKER"]), { engine: false });
}

/** One left-over rule (a line of listRedirects) as the command that deletes it. Its words
 * come from iptables itself; each is quoted again. */
export function deleteListedRule(line: string, sudo: boolean): Command | undefined {
  const words = line.trim().split(/\s+/);
  const [table, op, ...rest] = words;
  if (!["nat", "filter"].includes(table) || op !== "-A" || !rest.length) return undefined;
  return Command.change(`${iptables(sudo, ["-t", table, "-D", ...rest.map((w) => w.replace(/^"(.*)"$/, "$1"))])} 2>/dev/null; true`, { repeatable: true, engine: false });
}
