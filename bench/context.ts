/** What every part of `npm run bench` shares: the run's mode and repetitions, the hosts, the SSH pool, logging. */
import path from "node:path";
import { SshPool } from "../provider/ssh/pool";
import { repoRoot, onHost, target } from "../testbed/sandbox";


export const quick = process.argv.includes("--quick");
export const fleetMode = process.argv.includes("--fleet");
export const faultsMode = process.argv.includes("--faults");
export const REPS = quick ? 2 : 5;
export const RATE = 200; // requests/s per web host, for each of keep-alive and new connections
export const WEB = ["app1", "app2"];
export const ALL = ["app1", "app2", "db1"];
export const pool = new SshPool();
export const statsFile = path.join(repoRoot, "test/.work/bench-ssh-stats.jsonl");

export const log = (m: string) => console.error(`[bench] ${m}`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function cleanHosts() {
  for (const h of ALL) {
    const conn = await pool.connect(target(h));
    await conn.exec(onHost("docker ps -aq | xargs -r docker rm -f >/dev/null; rm -rf /root/.kamal"));
  }
}
