/**
 * A service's hosts deployed as one rollout (`onFailure: "revert"`): the engine updates every
 * host's resource at once, and the hosts take turns here, in the provider process that serves
 * them all. Each phase (a boot batch; the canaries first) starts once every earlier host has
 * switched and passed its watch; no host's update returns until every host has. When any host
 * fails, every host that switched goes back to the container it kept running, and every update
 * fails: the state of each host keeps the version it serves, and the fleet is never mixed.
 *
 * Which hosts take part is learned from the engine's own calls: a new resource (check) or a
 * resource whose diff has changes takes part; one without changes, or whose update only
 * records or reroutes, does not. A host the engine never gets to (a dependency failed) fails
 * the rollout after JOIN_TIMEOUT_MS.
 */
import { sleep } from "./common";

/** A host resource of a rollout: its role and host. */
export interface RolloutPlace {
  role: string;
  host: string;
}

export interface RolloutInput {
  /** The service and destination. */
  group: string;
  /** Every host resource of the rollout, with its phase (its turn). */
  members: (RolloutPlace & { phase: number })[];
}

/** A member's key in the rollout's own maps. */
const keyOf = (p: RolloutPlace) => `${p.role}/${p.host}`;

type State = "changing" | "unchanged" | "joined" | "passed";

/** How long a host that will change may take to begin its update, once the rollout began. */
const JOIN_TIMEOUT_MS = 90_000;
const TICK_MS = 150;

export class RolloutFailed extends Error {
  constructor(readonly failedMember: RolloutPlace, readonly reason: string) {
    super(`${failedMember.host} failed (${reason.split("\n")[0]})`);
    this.name = "RolloutFailed";
  }
}

class Rollout {
  readonly phases = new Map<string, number>();
  readonly places = new Map<string, RolloutPlace>();
  readonly states = new Map<string, State>();
  failure?: RolloutFailed;
  began?: number;

  constructor(members: RolloutInput["members"]) {
    for (const m of members) {
      this.phases.set(keyOf(m), m.phase);
      this.places.set(keyOf(m), { role: m.role, host: m.host });
    }
  }

  private done(key: string): boolean {
    const s = this.states.get(key);
    return s === "unchanged" || s === "passed";
  }

  /** Waits until every member `which` selects is done (or without changes); throws the
   * rollout's failure as soon as there is one. */
  async until(self: string, which: (phase: number) => boolean): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      const pending = [...this.phases].filter(([k, p]) => k !== self && which(p) && !this.done(k)).map(([k]) => k);
      if (pending.length === 0) return;
      const late = pending.filter((k) => this.states.get(k) === undefined || this.states.get(k) === "changing");
      if (this.began !== undefined && late.length && Date.now() - this.began > JOIN_TIMEOUT_MS) {
        this.fail(late[0], `its update did not begin within ${JOIN_TIMEOUT_MS / 1000}s of the rollout's (a dependency failed, or the run was targeted)`);
      }
      await sleep(TICK_MS);
    }
  }

  fail(key: string, reason: string): void {
    this.failure ??= new RolloutFailed(this.places.get(key) ?? { role: "", host: key }, reason);
  }
}

const rollouts = new Map<string, Rollout>();

function rolloutOf(input: RolloutInput): Rollout {
  const id = `${input.group} ${input.members.map((m) => `${keyOf(m)}@${m.phase}`).sort().join(" ")}`;
  let r = rollouts.get(id);
  if (!r) {
    r = new Rollout(input.members);
    rollouts.set(id, r);
  }
  return r;
}

/** One host resource's part in its rollout. */
export class RolloutMember {
  private readonly rollout: Rollout;
  private readonly key: string;

  constructor(input: RolloutInput, place: RolloutPlace) {
    this.rollout = rolloutOf(input);
    this.key = keyOf(place);
  }

  get phase(): number {
    return this.rollout.phases.get(this.key) ?? 0;
  }

  /** From check and diff: whether the engine will update this host. */
  expect(changing: boolean): void {
    const s = this.rollout.states.get(this.key);
    if (s === undefined || s === "changing" || s === "unchanged") this.rollout.states.set(this.key, changing ? "changing" : "unchanged");
  }

  /** This update takes no part (it only records or reroutes). */
  skip(): void {
    this.rollout.states.set(this.key, "unchanged");
  }

  join(): void {
    this.rollout.states.set(this.key, "joined");
    this.rollout.began ??= Date.now();
  }

  /** Resolves when every host of an earlier phase has switched and passed. */
  turn(): Promise<void> {
    return this.rollout.until(this.key, (p) => p < this.phase);
  }

  passed(): void {
    this.rollout.states.set(this.key, "passed");
  }

  /** Resolves when every host of the rollout has passed; throws RolloutFailed if one failed. */
  settled(): Promise<void> {
    return this.rollout.until(this.key, () => true);
  }

  fail(reason: string): void {
    this.rollout.fail(this.key, reason);
  }

  /** The failure that stops this member, if another member failed. */
  get failure(): RolloutFailed | undefined {
    return this.rollout.failure;
  }
}
