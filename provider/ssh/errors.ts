/**
 * What can go wrong talking to a host, as typed errors: each names the host (and the
 * command, already redacted by the executor) so a caller can tell a refused connection from
 * a host key that does not match, a failed command, a deadline, an engine that does not
 * answer and a connection that dropped.
 */

export class SshConnectError extends Error {
  constructor(readonly host: string, readonly attempts: number, readonly cause: Error) {
    super(`ssh ${host}: could not connect after ${attempts} attempt(s): ${cause.message}`);
    this.name = "SshConnectError";
  }
}

export class HostKeyError extends Error {
  constructor(
    readonly host: string,
    readonly reason: "unknown" | "mismatch" | "revoked",
    readonly fingerprint: string,
    /** The key the host presented, and the port it was dialled on (what `init` shows the
     * user to confirm; a public key, never secret). */
    readonly presented?: { key: Buffer; port: number },
  ) {
    const what = {
      unknown: "is not in known_hosts",
      mismatch: "does NOT match the key recorded in known_hosts (possible man-in-the-middle)",
      revoked: "is marked @revoked in known_hosts",
    }[reason];
    super(
      `ssh ${host}: host key ${fingerprint} ${what}; connection refused. ` +
        `Add the host's key to known_hosts (ssh-keyscan, verified out of band) or pin it with hostKey.`,
    );
    this.name = "HostKeyError";
  }
}

/** What a failure says about a host that is not ready for deploys, and what fixes it. */
const NOT_READY: [RegExp, string][] = [
  [/\bdocker: (command )?not found/, "Docker is not installed on this host (or not on the SSH user's PATH): pulumi-kamal bootstrap installs it"],
  [/permission denied while trying to connect to the Docker daemon socket/, "the SSH user may not use the Docker engine: pulumi-kamal bootstrap adds it to the docker group"],
];

export class RemoteCommandError extends Error {
  constructor(
    readonly host: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly signal: string | undefined,
    readonly stderrTail: string,
    readonly stdoutTail: string,
  ) {
    const status = exitCode === null ? `signal ${signal ?? "unknown"}` : `exit code ${exitCode}`;
    const hint = NOT_READY.find(([re]) => re.test(stderrTail))?.[1];
    super(
      `ssh ${host}: command failed with ${status}: ${command}` +
        (stderrTail ? `\n--- stderr (tail) ---\n${stderrTail}` : "") +
        (hint ? `\n(${hint})` : ""),
    );
    this.name = "RemoteCommandError";
  }
}

/** A command did not finish within its deadline while the connection stayed up (a wedged
 * dockerd, a stuck pull). */
export class DeadlineError extends Error {
  constructor(readonly host: string, readonly command: string, readonly ms: number) {
    super(`ssh ${host}: no answer within ${Math.round(ms / 1000)}s (the connection is up; is the Docker engine answering?): ${command}`);
    this.name = "DeadlineError";
  }
}

/** The service a command needs (dockerd) did not answer within the reconnect window: the
 * command did nothing. Not an answer such as "no such container": a caller reading the host
 * must not take it for one. */
export class EngineDownError extends Error {
  constructor(readonly host: string, readonly command: string, detail: string, ms: number) {
    super(`ssh ${host}: the Docker engine did not answer for ${Math.round(ms / 1000)}s (${detail}): is it running? (pulumi-kamal bootstrap starts it): ${command}`);
    this.name = "EngineDownError";
  }
}

/** The connection dropped and did not come back within the reconnect window, or dropped
 * while a command that must not run twice was in flight (`mayHaveRun`: the caller re-reads
 * the host to learn whether it did). */
export class ConnectionLostError extends Error {
  constructor(readonly host: string, readonly command: string, readonly mayHaveRun: boolean, detail: string) {
    super(`ssh ${host}: connection lost ${detail}: ${command}`);
    this.name = "ConnectionLostError";
  }
}

/** Internal to the executor: the channel ended because the connection went away. */
export class Dropped extends Error {
  constructor(readonly started: boolean, cause: string) {
    super(cause);
  }
}
