/**
 * A remote command as a value: its shell text and what the executor may do with it when the
 * connection drops or a deadline passes. The builder that knows what a command does declares
 * that, once, where it builds the command; the executor takes it as it is (nothing reads the
 * text back to guess).
 */
import { allOf as allOfText, anyOf as anyOfText, pipe as pipeText, shellJoin } from "./shell";

export interface CommandPolicy {
  /** Safe to run again after a dropped connection: it only reads, or running it twice
   * leaves the host as running it once does. Otherwise the caller re-reads the host. */
  repeatable: boolean;
  /** Which deadline applies (the connection's `deadlines`). */
  deadline: "read" | "change" | "pull";
  /** Seconds on top of the deadline: a stop's wait. */
  extraSeconds: number;
  /** Output (stderr) meaning the command never reached the service it talks to (a
   * restarting dockerd): run again once it answers, within the reconnect window. */
  notReached?: RegExp;
}

/** The docker CLI could not reach dockerd: nothing happened. */
export const ENGINE_DOWN = /Cannot connect to the Docker daemon|Is the docker daemon running\?/;

type Text = string | readonly string[];
const textOf = (t: Text) => (typeof t === "string" ? t : shellJoin(t));
const RANK = { read: 0, change: 1, pull: 2 } as const;

export class Command {
  private constructor(
    /** What the host's shell runs; every word quoted by shellJoin. */
    readonly text: string,
    readonly policy: CommandPolicy,
  ) {}

  toString(): string {
    return this.text;
  }

  /** Only reads the host: run again after a reconnect; the read deadline. `engine`: it talks
   * to dockerd, and waits for one that is restarting. */
  static read(text: Text, opts: { engine?: boolean } = {}): Command {
    return new Command(textOf(text), { repeatable: true, deadline: "read", extraSeconds: 0, ...notReached(opts.engine ?? true) });
  }

  /** Changes the host. `repeatable`: running it twice leaves the host as running it once
   * does; else a drop mid-command fails it and the caller re-reads the host. `waitSeconds`:
   * time the command itself waits (a stop's grace period), added to the deadline. */
  static change(text: Text, opts: { repeatable: boolean; engine?: boolean; waitSeconds?: number }): Command {
    return new Command(textOf(text), { repeatable: opts.repeatable, deadline: "change", extraSeconds: opts.waitSeconds ?? 0, ...notReached(opts.engine ?? true) });
  }

  /** Talks to a registry (a pull, a login): repeatable, the pull deadline. */
  static pull(text: Text): Command {
    return new Command(textOf(text), { repeatable: true, deadline: "pull", extraSeconds: 0, ...notReached(true) });
  }

  /** Text whose effect no builder declared (an operator's command line, a test's): never
   * run twice, the change deadline, no wait for a restarting engine. */
  static adHoc(text: string): Command {
    return new Command(text, { repeatable: false, deadline: "change", extraSeconds: 0 });
  }

  /** Each command once the previous one succeeded. */
  static allOf(...parts: Command[]): Command {
    return Command.combine(allOfText(...parts.map((p) => p.text)), parts);
  }

  /** Commands until one succeeds. */
  static anyOf(...parts: Command[]): Command {
    return Command.combine(anyOfText(...parts.map((p) => p.text)), parts);
  }

  /** Each command's stdout into the next one's stdin. */
  static pipe(...parts: Command[]): Command {
    return Command.combine(pipeText(...parts.map((p) => p.text)), parts);
  }

  /** A line the builder wrote itself around these commands' texts (a group, a redirect, a
   * loop): the policy of running them all in sequence. */
  static composed(text: string, parts: Command[]): Command {
    return Command.combine(text, parts);
  }

  /** The same command with its text adjusted (a redirect, a wrapper that changes nothing of
   * what it does), its policy kept. */
  map(fn: (text: string) => string): Command {
    return new Command(fn(this.text), this.policy);
  }

  /** A line of several commands: repeatable only if each is, the longest deadline, every
   * wait added; an engine not reached is waited for only when running it again is safe. */
  private static combine(text: string, parts: Command[]): Command {
    const repeatable = parts.every((p) => p.policy.repeatable);
    const deadline = parts.reduce<CommandPolicy["deadline"]>((d, p) => (RANK[p.policy.deadline] > RANK[d] ? p.policy.deadline : d), "read");
    const extraSeconds = parts.reduce((n, p) => n + p.policy.extraSeconds, 0);
    const engine = parts.some((p) => p.policy.notReached);
    return new Command(text, { repeatable, deadline, extraSeconds, ...notReached(engine && (repeatable || parts.length === 1)) });
  }
}

function notReached(engine: boolean): Pick<CommandPolicy, "notReached"> {
  return engine ? { notReached: ENGINE_DOWN } : {};
}
