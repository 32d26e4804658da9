/**
 * Test lanes: test files run on other sandbox hosts and another registry port than the rest,
 * so that slow files (the fault scenarios, mostly waiting out network cuts; the proxy tests)
 * run beside the others instead of after them. `KP_LANE=two` maps the hosts the files name
 * (app1, app2) to app3 and app4, and the registry to its second port, whose faults (stopped,
 * started) touch nothing the other lane uses; `KP_LANE=three` (release safety, the CLI,
 * the takeovers, KamalApp over HTTPS) maps app1-app3 to app5-app7 and the registry to its third port;
 * `KP_LANE=four` (image builds, the HTTPS takeover) app1 and app2 to app8 and app9, and the registry's fourth port. The
 * hosts keep the names the files use: their expected messages name app1 and app2. Read by
 * the tests and by the programs they run.
 */
export interface Lane {
  /** The host a test names → the sandbox host it runs on. */
  hosts: Record<string, string>;
  /** The registry port of this lane (the sandbox serves the same images on both). */
  registryPort: number;
}

export const LANES: Record<string, Lane> = {
  two: { hosts: { app1: "app3", app2: "app4" }, registryPort: 5001 },
  three: { hosts: { app1: "app5", app2: "app6", app3: "app7" }, registryPort: 5002 },
  four: { hosts: { app1: "app8", app2: "app9" }, registryPort: 5003 },
};

export function currentLane(): Lane | undefined {
  const name = process.env.KP_LANE;
  if (!name) return undefined;
  const lane = LANES[name];
  if (!lane) throw new Error(`KP_LANE=${name}: no such test lane (lanes: ${Object.keys(LANES).join(", ")})`);
  return lane;
}

/** The sandbox host behind a name a test uses. */
export function physicalHost(name: string): string {
  return currentLane()?.hosts[name] ?? name;
}

interface State {
  hosts: { name: string }[];
  registry: { address: string };
  images: Record<string, unknown>;
}

/** The sandbox as a lane sees it: its hosts under the names the tests use (and no other app
 * host), images and registry on the lane's port. */
export function inLane<S extends State>(state: S, lane = currentLane()): S {
  if (!lane) return state;
  const byName = new Map(state.hosts.map((h) => [h.name, h]));
  const hosts = [
    ...Object.entries(lane.hosts).map(([name, physical]) => {
      const h = byName.get(physical);
      if (!h) throw new Error(`test lane: the sandbox has no host ${physical} (npm run sandbox -- up --hosts 4)`);
      return { ...h, name };
    }),
    // The other hosts (db1) are shared: no lane's files fault them.
    ...state.hosts.filter((h) => !h.name.startsWith("app")),
  ];
  const from = state.registry.address;
  const to = `${from.split(":")[0]}:${lane.registryPort}`;
  const images = JSON.parse(JSON.stringify(state.images).split(`${from}/`).join(`${to}/`)) as S["images"];
  return { ...state, hosts, registry: { ...state.registry, address: to }, images };
}
